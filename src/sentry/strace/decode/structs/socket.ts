/**
 * Printers for the socket structs: socket addresses (unix, inet, inet6,
 * netlink) and `struct msghdr`.
 *
 * Each printer takes the struct's address and prints `NULL` for a null
 * pointer, the address in hex when the memory cannot be read.
 *
 * @module
 */

import type { DecodeContext } from '../context.js';
import { ptr } from '../scalars.js';
import { quoteBytes } from '../strings.js';
import { formatIovec } from './io.js';
import type { MemoryReader } from '../umove.js';
import { readBytes, u64, withStruct } from '../umove.js';
import { lookup } from '../xlat.js';
import { AF } from '../xlat/net.js';

/** An IPv4 address in dotted quad. */
const IPV4 = (b: Uint8Array): string => `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;

/**
 * An IPv6 address the way inet_ntop writes it (longest run of zero groups
 * as `::`, IPv4-mapped as `::ffff:1.2.3.4`).
 *
 * @example
 * ```ts
 * formatIpv6(Uint8Array.of(0,0,0,0, 0,0,0,0, 0,0,0,0, 0,0,0,1)); // '::1'
 * ```
 */
export function formatIpv6(b: Uint8Array): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[2 * i]! << 8) | b[2 * i + 1]!);
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) return `::ffff:${IPV4(b.subarray(12))}`;
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) { best = i; bestLen = j - i; }
    i = j;
  }
  const hexes = g.map((x) => x.toString(16));
  if (best < 0) return hexes.join(':');
  return `${hexes.slice(0, best).join(':')}::${hexes.slice(best + bestLen).join(':')}`;
}

/** The longest socket address strace reads (`struct sockaddr_storage`). */
const SOCKADDR_STORAGE_SIZE = 128;

/** The fields after sa_family of each family strace spells out, from the address bytes; undefined when too short. */
const SOCKADDR_FIELDS: Readonly<Record<string, (b: Uint8Array, v: DataView) => string | undefined>> = {
  AF_UNIX: (b) => {
    if (b.length === 2) return '';
    const path = b.subarray(2);
    // A leading NUL makes it an abstract address, which strace shows as @name.
    if (path[0] === 0) return `sun_path=@${quoteBytes(path.subarray(1))}`;
    const end = path.indexOf(0);
    return `sun_path=${quoteBytes(end < 0 ? path : path.subarray(0, end))}`;
  },
  AF_INET: (b, v) => (b.length >= 8 ? `sin_port=htons(${v.getUint16(2, false)}), sin_addr=inet_addr("${IPV4(b.subarray(4, 8))}")` : undefined),
  AF_INET6: (b, v) => {
    if (b.length < 24) return undefined;
    const scope = b.length >= 28 ? `, sin6_scope_id=${v.getUint32(24, true)}` : '';
    return `sin6_port=htons(${v.getUint16(2, false)}), sin6_flowinfo=htonl(${v.getUint32(4, false)}), ` +
      `inet_pton(AF_INET6, "${formatIpv6(b.subarray(8, 24))}", &sin6_addr)${scope}`;
  },
  AF_NETLINK: (b, v) => (b.length >= 12 ? `nl_pid=${v.getUint32(4, true)}, nl_groups=${v.getUint32(8, true).toString(16).padStart(8, '0')}` : undefined),
};

/**
 * A socket address of `len` bytes: `{sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("1.2.3.4")}`;
 * families strace does not spell out show their bytes as `sa_data`.
 *
 * @example
 * ```ts
 * formatSockaddr(mem, addr, 16, 32); // '{sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("127.0.0.1")}'
 * ```
 */
export function formatSockaddr(mem: MemoryReader, addr: bigint, len: number, limit: number): string {
  if (BigInt.asUintN(64, addr) === 0n) return 'NULL';
  if (len < 2) return ptr(addr);
  const b = readBytes(mem, addr, Math.min(len, SOCKADDR_STORAGE_SIZE));
  if (!b) return ptr(addr);
  const v = new DataView(b.buffer, b.byteOffset, b.length);
  const family = v.getUint16(0, true);
  const name = lookup(BigInt(family), AF);
  const fam = `sa_family=${name ?? family}`;
  const fields = name === undefined ? undefined : SOCKADDR_FIELDS[name]?.(b, v);
  if (fields === '') return `{${fam}}`;
  if (fields !== undefined) return `{${fam}, ${fields}}`;
  const data = b.subarray(2);
  return `{${fam}, sa_data=${quoteBytes(data.subarray(0, limit))}${data.length > limit ? '...' : ''}}`;
}

/**
 * A `struct msghdr` (sendmsg/recvmsg); `dataLen` limits the iovec data shown
 * (recvmsg: the bytes received).
 *
 * @example
 * ```ts
 * formatMsghdr(c, addr);
 * // '{msg_name=NULL, msg_namelen=0, msg_iov=[{iov_base="hi", iov_len=2}], msg_iovlen=1, msg_controllen=0, msg_flags=0}'
 * ```
 */
export function formatMsghdr(c: DecodeContext, addr: bigint, dataLen?: bigint): string {
  return withStruct(c.mem, addr, 56, (v) => {
    const nameLen = v.getUint32(8, true);
    const name = formatSockaddr(c.mem, u64(v, 0), nameLen, c.strlen);
    const iov = formatIovec(c, u64(v, 16), u64(v, 24), dataLen);
    const ctlLen = u64(v, 40);
    const ctl = ctlLen ? `msg_control=${ptr(u64(v, 32))}, ` : '';
    return `{msg_name=${name}, msg_namelen=${nameLen}, msg_iov=${iov}, msg_iovlen=${u64(v, 24)}, ` +
      `${ctl}msg_controllen=${ctlLen}, msg_flags=${v.getInt32(48, true)}}`;
  });
}
