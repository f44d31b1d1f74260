/**
 * Printers for the file I/O structs: iovec arrays (readv, writev,
 * msghdr), `struct flock` (fcntl locks), and getdents' record count.
 *
 * Each printer takes the struct's address and prints `NULL` for a null
 * pointer, the address in hex when the memory cannot be read.
 *
 * @module
 */

import type { DecodeContext } from '../context.js';
import { ptr } from '../scalars.js';
import { formatBuffer, quoteBytes } from '../strings.js';
import type { MemoryReader } from '../umove.js';
import { i64, readBytes, u64, view, withStruct } from '../umove.js';
import { formatEnum } from '../xlat.js';
import { DIRENT_TYPE, LOCK_TYPE, WHENCE } from '../xlat/file.js';

/** The most iovecs a call accepts (the kernel's UIO_MAXIOV); a bigger count is cut to it. */
const UIO_MAXIOV = 1024n;
/** sizeof(struct iovec): base pointer and length. */
const IOVEC_SIZE = 16;

/**
 * An iovec array: `[{iov_base="abc", iov_len=3}, ...]`. With `dataLen`
 * (readv: the bytes transferred) only that many bytes are shown across the
 * buffers; without it, each buffer's iov_len. At most `strlen` elements,
 * then `...`.
 *
 * @example
 * ```ts
 * formatIovec(c, addr, 2n); // '[{iov_base="abc", iov_len=3}, {iov_base="defg", iov_len=4}]'
 * ```
 */
export function formatIovec(c: DecodeContext, addr: bigint, count: bigint, dataLen?: bigint): string {
  if (BigInt.asUintN(64, addr) === 0n) return 'NULL';
  const n = Number(BigInt.asUintN(64, count) > UIO_MAXIOV ? UIO_MAXIOV : BigInt.asUintN(64, count));
  const shown = Math.min(n, c.strlen);
  const v = view(c.mem, addr, shown * IOVEC_SIZE);
  if (!v) return ptr(addr);
  let left = dataLen;
  const items: string[] = [];
  for (let i = 0; i < shown; i++) {
    const base = u64(v, i * IOVEC_SIZE);
    const len = u64(v, i * IOVEC_SIZE + 8);
    let data: bigint = len;
    if (left !== undefined) {
      data = left < len ? left : len;
      left -= data;
    }
    items.push(`{iov_base=${formatBuffer(c.mem, base, data, c.strlen)}, iov_len=${len}}`);
  }
  if (n > shown) items.push('...');
  return `[${items.join(', ')}]`;
}

/**
 * `struct flock`; `l_pid` only for the F_GETLK family (output).
 *
 * @example
 * ```ts
 * formatFlock(mem, addr, false); // '{l_type=F_WRLCK, l_whence=SEEK_SET, l_start=0, l_len=10}'
 * ```
 */
export function formatFlock(mem: MemoryReader, addr: bigint, withPid: boolean): string {
  return withStruct(mem, addr, 32, (v) => {
    let s = `{l_type=${formatEnum(BigInt(v.getInt16(0, true)), LOCK_TYPE, 'F_')}, l_whence=${formatEnum(BigInt(v.getInt16(2, true)), WHENCE, 'SEEK_')}, ` +
      `l_start=${i64(v, 8)}, l_len=${i64(v, 16)}`;
    if (withPid) s += `, l_pid=${v.getInt32(24, true)}`;
    return s + '}';
  });
}

/**
 * Count the records of a getdents64 (or getdents) buffer of `len` bytes: `/* N entries *\/`.
 *
 * @example
 * ```ts
 * countDirents(mem, addr, 240); // 7
 * ```
 */
export function countDirents(mem: MemoryReader, addr: bigint, len: number): number | undefined {
  const b = readBytes(mem, addr, len);
  if (!b) return undefined;
  const v = new DataView(b.buffer, b.byteOffset, b.length);
  let n = 0;
  // Each linux_dirent64 starts with d_ino (8), d_off (8), d_reclen (2): its length is at offset 16.
  for (let o = 0; o + 18 <= len;) {
    const reclen = v.getUint16(o + 16, true);
    if (reclen === 0) break;
    n++;
    o += reclen;
  }
  return n;
}

/**
 * The records of a getdents64 (or, `legacy`, getdents) buffer of `len` bytes, as strace -v
 * prints them: every record in full (`[{d_ino=2, d_off=…, d_reclen=24, d_type=DT_DIR,
 * d_name="."}, …]`; getdents' d_type follows its name, stored in the record's last byte).
 * Undefined when the buffer cannot be read or a record runs past it.
 *
 * @example
 * ```ts
 * formatDirents(mem, addr, 48, false); // '[{d_ino=2, d_off=1, d_reclen=24, d_type=DT_DIR, d_name="."}, …]'
 * ```
 */
export function formatDirents(mem: MemoryReader, addr: bigint, len: number, legacy: boolean): string | undefined {
  const b = readBytes(mem, addr, len);
  if (!b) return undefined;
  const v = new DataView(b.buffer, b.byteOffset, b.length);
  const out: string[] = [];
  // d_ino (8), d_off (8), d_reclen (2), then d_type (1) and d_name (getdents64), or d_name.
  for (let o = 0; o + 18 <= len; ) {
    const reclen = v.getUint16(o + 16, true);
    if (reclen < 19 || o + reclen > len) return reclen === 0 && out.length > 0 ? `[${out.join(', ')}]` : undefined;
    const nameAt = o + (legacy ? 18 : 19);
    const end = b.subarray(nameAt, o + reclen).indexOf(0);
    const name = quoteBytes(b.subarray(nameAt, end < 0 ? o + reclen : nameAt + end));
    const type = formatEnum(BigInt(b[legacy ? o + reclen - 1 : o + 18]), DIRENT_TYPE, 'DT_');
    const head = `d_ino=${v.getBigUint64(o, true)}, d_off=${v.getBigInt64(o + 8, true)}, d_reclen=${reclen}`;
    out.push(legacy ? `{${head}, d_name=${name}, d_type=${type}}` : `{${head}, d_type=${type}, d_name=${name}}`);
    o += reclen;
  }
  return `[${out.join(', ')}]`;
}

