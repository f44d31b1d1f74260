/**
 * Printers for the file metadata structs: `struct stat`, `struct statx`,
 * `struct statfs`, and device numbers.
 *
 * Each printer takes the struct's address and prints `NULL` for a null
 * pointer, the address in hex when the memory cannot be read.
 *
 * @module
 */

import { isVerbose } from '../constStyle.js';
import { hex } from '../scalars.js';
import type { MemoryReader } from '../umove.js';
import { i64, u64, withStruct } from '../umove.js';
import { formatFlags, lookup } from '../xlat.js';
import { FS_MAGIC, STATX_ATTRS, STATX_MASK, ST_FLAGS, formatStatMode, isDeviceMode } from '../xlat/stat.js';

/**
 * A device number as `makedev(0x1, 0x3)`.
 *
 * @example
 * ```ts
 * formatDev(0x103n); // 'makedev(0x1, 0x3)'
 * ```
 */
export function formatDev(dev: bigint): string {
  // glibc's encoding: major in bits 8..19 and 32..63, minor in bits 0..7 and 20..31.
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return `makedev(${hex(major)}, ${hex(minor)})`;
}

/**
 * `struct stat`: `{st_mode=S_IFREG|0644, st_size=1234, ...}` (st_rdev instead of st_size for devices).
 *
 * @example
 * ```ts
 * formatStat(mem, addr); // '{st_mode=S_IFREG|0644, st_size=1234, ...}'
 * ```
 */
export function formatStat(mem: MemoryReader, addr: bigint): string {
  if (isVerbose()) return formatStatFull(mem, addr);
  return withStruct(mem, addr, 144, (v) => {
    const mode = BigInt(v.getUint32(24, true));
    const second = isDeviceMode(mode) ? `st_rdev=${formatDev(u64(v, 40))}` : `st_size=${i64(v, 48)}`;
    return `{st_mode=${formatStatMode(mode)}, ${second}, ...}`;
  });
}

/** `-v`: every field of `struct stat`, times with their date as strace writes them. */
function formatStatFull(mem: MemoryReader, addr: bigint): string {
  return withStruct(mem, addr, 144, (v) => {
    const mode = BigInt(v.getUint32(24, true));
    const sizeOrDev = isDeviceMode(mode) ? `st_rdev=${formatDev(u64(v, 40))}` : `st_size=${i64(v, 48)}`;
    const time = (name: string, at: number) => {
      const sec = i64(v, at);
      const nsec = i64(v, at + 8);
      // strace leaves the date out for the epoch itself (an unset time: sockets, pipes).
      const date = sec === 0n && nsec === 0n ? '' : ` /* ${isoTime(sec, nsec)} */`;
      return `st_${name}=${sec}${date}, st_${name}_nsec=${nsec}`;
    };
    return `{st_dev=${formatDev(u64(v, 0))}, st_ino=${u64(v, 8)}, st_mode=${formatStatMode(mode)}, st_nlink=${u64(v, 16)}, st_uid=${v.getUint32(28, true)}, st_gid=${v.getUint32(32, true)}, st_blksize=${i64(v, 56)}, st_blocks=${i64(v, 64)}, ${sizeOrDev}, ${time('atime', 72)}, ${time('mtime', 88)}, ${time('ctime', 104)}}`;
  });
}

/**
 * A time as strace's -v shows it: local time, ISO 8601, nanoseconds when there are any, the
 * zone's offset (`2026-12-02T00:27:50.903671989+0000`).
 *
 * @example
 * ```ts
 * isoTime(0n, 0n); // '1970-01-01T00:00:00+0000' where the zone is UTC
 * ```
 */
export function isoTime(sec: bigint, nsec: bigint): string {
  const d = new Date(Number(sec) * 1000);
  const p2 = (n: number) => String(n).padStart(2, '0');
  const off = -d.getTimezoneOffset();
  const zone = `${off < 0 ? '-' : '+'}${p2(Math.floor(Math.abs(off) / 60))}${p2(Math.abs(off) % 60)}`;
  const frac = nsec !== 0n ? `.${nsec.toString().padStart(9, '0')}` : '';
  return `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())}T${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}${frac}${zone}`;
}

/**
 * `struct statx`: `{stx_mask=..., stx_attributes=0, stx_mode=S_IFREG|0644, stx_size=1234, ...}`.
 *
 * @example
 * ```ts
 * formatStatx(mem, addr); // '{stx_mask=STATX_BASIC_STATS, stx_attributes=0, stx_mode=S_IFREG|0644, stx_size=42, ...}'
 * ```
 */
export function formatStatx(mem: MemoryReader, addr: bigint): string {
  return withStruct(mem, addr, 256, (v) => {
    const mask = formatFlags(BigInt(v.getUint32(0, true)), STATX_MASK);
    const attrs = formatFlags(u64(v, 8), STATX_ATTRS);
    const mode = formatStatMode(BigInt(v.getUint16(28, true)));
    return `{stx_mask=${mask}, stx_attributes=${attrs}, stx_mode=${mode}, stx_size=${u64(v, 40)}, ...}`;
  });
}

/**
 * `struct statfs`, in full as strace prints it.
 *
 * @example
 * ```ts
 * formatStatfs(mem, addr); // '{f_type=EXT2_SUPER_MAGIC, f_bsize=4096, ..., f_flags=ST_VALID|ST_RELATIME}'
 * ```
 */
export function formatStatfs(mem: MemoryReader, addr: bigint): string {
  return withStruct(mem, addr, 120, (v) => {
    const type = u64(v, 0);
    const fsid = `{val=[${hex(BigInt(v.getUint32(56, true)))}, ${hex(BigInt(v.getUint32(60, true)))}]}`;
    return `{f_type=${lookup(type, FS_MAGIC) ?? hex(type)}, f_bsize=${i64(v, 8)}, f_blocks=${u64(v, 16)}, f_bfree=${u64(v, 24)}, ` +
      `f_bavail=${u64(v, 32)}, f_files=${u64(v, 40)}, f_ffree=${u64(v, 48)}, f_fsid=${fsid}, f_namelen=${i64(v, 64)}, ` +
      `f_frsize=${i64(v, 72)}, f_flags=${formatFlags(u64(v, 80), ST_FLAGS)}}`;
  });
}
