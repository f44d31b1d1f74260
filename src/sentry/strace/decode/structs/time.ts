/**
 * Printers for the time structs: timespec, timeval, itimerval, utimensat's
 * timespec pair, and rusage (whose first fields are times).
 *
 * Each printer takes the struct's address and prints `NULL` for a null
 * pointer, the address in hex when the memory cannot be read.
 *
 * @module
 */

import type { MemoryReader } from '../umove.js';
import { i64, withStruct } from '../umove.js';

/**
 * `struct timespec`: `{tv_sec=1, tv_nsec=500}`.
 *
 * @example
 * ```ts
 * formatTimespec(mem, addr); // '{tv_sec=0, tv_nsec=1000}'
 * ```
 */
export function formatTimespec(mem: MemoryReader, addr: bigint): string {
  return withStruct(mem, addr, 16, (v) => timespecAt(v, 0));
}

/** The `struct timespec` at offset `o`. */
function timespecAt(v: DataView, o: number): string {
  return `{tv_sec=${i64(v, o)}, tv_nsec=${i64(v, o + 8)}}`;
}

/** utimensat's tv_nsec values that mean "now" and "leave it alone" instead of a time. */
const UTIME_NOW = (1n << 30n) - 1n;
const UTIME_OMIT = (1n << 30n) - 2n;

/** One of utimensat's times: `UTIME_NOW` / `UTIME_OMIT` stand for the whole timespec. */
function utimeAt(v: DataView, o: number): string {
  const nsec = i64(v, o + 8);
  if (nsec === UTIME_NOW) return 'UTIME_NOW';
  if (nsec === UTIME_OMIT) return 'UTIME_OMIT';
  return timespecAt(v, o);
}

/**
 * utimensat's `struct timespec[2]`: `[{tv_sec=1, tv_nsec=0}, UTIME_OMIT]`.
 *
 * @example
 * ```ts
 * formatTimespecPair(mem, addr); // '[UTIME_NOW, UTIME_OMIT]'
 * ```
 */
export function formatTimespecPair(mem: MemoryReader, addr: bigint): string {
  return withStruct(mem, addr, 32, (v) => `[${utimeAt(v, 0)}, ${utimeAt(v, 16)}]`);
}

/**
 * `struct timeval`: `{tv_sec=1, tv_usec=500}`.
 *
 * @example
 * ```ts
 * formatTimeval(mem, addr); // '{tv_sec=1, tv_usec=500}'
 * ```
 */
export function formatTimeval(mem: MemoryReader, addr: bigint): string {
  return withStruct(mem, addr, 16, (v) => `{tv_sec=${i64(v, 0)}, tv_usec=${i64(v, 8)}}`);
}

/**
 * `struct itimerval`: `{it_interval={tv_sec=0, tv_usec=0}, it_value={tv_sec=1, tv_usec=0}}`.
 *
 * @example
 * ```ts
 * formatItimerval(mem, addr); // '{it_interval={tv_sec=0, tv_usec=0}, it_value={tv_sec=1, tv_usec=0}}'
 * ```
 */
export function formatItimerval(mem: MemoryReader, addr: bigint): string {
  return withStruct(mem, addr, 32, (v) =>
    `{it_interval={tv_sec=${i64(v, 0)}, tv_usec=${i64(v, 8)}}, it_value={tv_sec=${i64(v, 16)}, tv_usec=${i64(v, 24)}}}`);
}

/**
 * `struct itimerspec`: `{it_interval={tv_sec=0, tv_nsec=0}, it_value={tv_sec=1, tv_nsec=0}}`.
 *
 * @example
 * ```ts
 * formatItimerspec(mem, addr); // '{it_interval={tv_sec=0, tv_nsec=0}, it_value={tv_sec=0, tv_nsec=20000000}}'
 * ```
 */
export function formatItimerspec(mem: MemoryReader, addr: bigint): string {
  return withStruct(mem, addr, 32, (v) => `{it_interval=${timespecAt(v, 0)}, it_value=${timespecAt(v, 16)}}`);
}

/**
 * `struct rusage`, abbreviated: `{ru_utime={...}, ru_stime={...}, ...}`.
 *
 * @example
 * ```ts
 * formatRusage(mem, addr); // '{ru_utime={tv_sec=0, tv_usec=1200}, ru_stime={tv_sec=0, tv_usec=0}, ...}'
 * ```
 */
export function formatRusage(mem: MemoryReader, addr: bigint): string {
  return withStruct(mem, addr, 144, (v) =>
    `{ru_utime={tv_sec=${i64(v, 0)}, tv_usec=${i64(v, 8)}}, ru_stime={tv_sec=${i64(v, 16)}, tv_usec=${i64(v, 24)}}, ...}`);
}
