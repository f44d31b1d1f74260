/**
 * Printers for the socket structures (x86-64 layouts) and the poll/epoll
 * arrays, as strace prints them.
 *
 * @module
 */

import type { DecodeContext } from './context.js';
import { ptr } from './scalars.js';
import { quoteBytes } from './strings.js';
import { formatIovec } from './structs.js';
import type { MemoryReader } from './umove.js';
import { readBytes, view, withStruct } from './umove.js';
import { formatFlags, lookup } from './xlat.js';
import { EPOLL_EVENTS, POLL_EVENTS } from './xlat/events.js';
import { AF } from './xlat/net.js';

const u64 = (v: DataView, o: number): bigint => v.getBigUint64(o, true);

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

/**
 * A socket address of `len` bytes: `{sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("1.2.3.4")}`.
 *
 * @example
 * ```ts
 * formatSockaddr(mem, addr, 16, 32); // '{sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("127.0.0.1")}'
 * ```
 */
export function formatSockaddr(mem: MemoryReader, addr: bigint, len: number, limit: number): string {
  if (BigInt.asUintN(64, addr) === 0n) return 'NULL';
  if (len < 2) return ptr(addr);
  const size = Math.min(len, 128);
  const b = readBytes(mem, addr, size);
  if (!b) return ptr(addr);
  const v = new DataView(b.buffer, b.byteOffset, b.length);
  const family = v.getUint16(0, true);
  const fam = `sa_family=${lookup(BigInt(family), AF) ?? family}`;
  if (family === 1) {
    if (size === 2) return `{${fam}}`;
    const path = b.subarray(2);
    if (path[0] === 0) return `{${fam}, sun_path=@${quoteBytes(path.subarray(1))}}`;
    const end = path.indexOf(0);
    return `{${fam}, sun_path=${quoteBytes(end < 0 ? path : path.subarray(0, end))}}`;
  }
  if (family === 2 && size >= 8) {
    return `{${fam}, sin_port=htons(${v.getUint16(2, false)}), sin_addr=inet_addr("${IPV4(b.subarray(4, 8))}")}`;
  }
  if (family === 10 && size >= 24) {
    const scope = size >= 28 ? `, sin6_scope_id=${v.getUint32(24, true)}` : '';
    return `{${fam}, sin6_port=htons(${v.getUint16(2, false)}), sin6_flowinfo=htonl(${v.getUint32(4, false)}), ` +
      `inet_pton(AF_INET6, "${formatIpv6(b.subarray(8, 24))}", &sin6_addr)${scope}}`;
  }
  if (family === 16 && size >= 12) {
    return `{${fam}, nl_pid=${v.getUint32(4, true)}, nl_groups=${v.getUint32(8, true).toString(16).padStart(8, '0')}}`;
  }
  const data = b.subarray(2);
  return `{${fam}, sa_data=${quoteBytes(data.subarray(0, limit))}${data.length > limit ? '...' : ''}}`;
}

/**
 * A pollfd array, input side: `[{fd=0, events=POLLIN}, ...]`.
 *
 * @example
 * ```ts
 * formatPollfds(c, addr, 2n); // '[{fd=0, events=POLLIN}, {fd=4, events=POLLOUT}]'
 * ```
 */
export function formatPollfds(c: DecodeContext, addr: bigint, count: bigint): string {
  return pollfds(c, addr, count, false);
}

/**
 * The pollfds with events, output side: `[{fd=0, revents=POLLIN}]`, or undefined when unreadable.
 *
 * @example
 * ```ts
 * formatPollResult(c, addr, 2n); // '[{fd=0, revents=POLLIN}]'
 * ```
 */
export function formatPollResult(c: DecodeContext, addr: bigint, count: bigint): string | undefined {
  const s = pollfds(c, addr, count, true);
  return s.startsWith('[') ? s : undefined;
}

function pollfds(c: DecodeContext, addr: bigint, count: bigint, revents: boolean): string {
  if (BigInt.asUintN(64, addr) === 0n) return 'NULL';
  const n = Number(BigInt.asUintN(32, count) > 4096n ? 4096n : BigInt.asUintN(32, count));
  const v = view(c.mem, addr, n * 8);
  if (!v) return ptr(addr);
  const items: string[] = [];
  for (let i = 0; i < n; i++) {
    const fd = v.getInt32(i * 8, true);
    const ev = BigInt(v.getUint16(i * 8 + (revents ? 6 : 4), true));
    if (revents && (ev === 0n || fd < 0)) continue;
    if (items.length >= c.strlen) { items.push('...'); break; }
    items.push(fd < 0 ? `{fd=${fd}}` : `{fd=${fd}, ${revents ? 'revents' : 'events'}=${formatFlags(ev, POLL_EVENTS)}}`);
  }
  return `[${items.join(', ')}]`;
}

/** `struct epoll_event` (packed, 12 bytes). */
function epollEventAt(v: DataView, o: number): string {
  const data = v.getBigUint64(o + 4, true);
  return `{events=${formatFlags(BigInt(v.getUint32(o, true)), EPOLL_EVENTS)}, data={u32=${data & 0xffffffffn}, u64=${data}}}`;
}

/**
 * One epoll_event (epoll_ctl).
 *
 * @example
 * ```ts
 * formatEpollEvent(mem, addr); // '{events=EPOLLIN|EPOLLET, data={u32=5, u64=5}}'
 * ```
 */
export function formatEpollEvent(mem: MemoryReader, addr: bigint): string {
  return withStruct(mem, addr, 12, (v) => epollEventAt(v, 0));
}

/**
 * `count` epoll_events (epoll_wait results).
 *
 * @example
 * ```ts
 * formatEpollEvents(c, addr, 1); // '[{events=EPOLLIN, data={u32=5, u64=5}}]'
 * ```
 */
export function formatEpollEvents(c: DecodeContext, addr: bigint, count: number): string {
  const shown = Math.min(count, c.strlen);
  return withStruct(c.mem, addr, shown * 12, (v) => {
    const items: string[] = [];
    for (let i = 0; i < shown; i++) items.push(epollEventAt(v, i * 12));
    if (count > shown) items.push('...');
    return `[${items.join(', ')}]`;
  });
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
