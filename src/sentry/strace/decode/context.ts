/**
 * What an argument decoder sees, and the scalar formats strace uses for
 * plain numbers.
 *
 * @module
 */

import type { MemoryReader } from './strings.js';
import { hex } from './strings.js';

/**
 * One syscall being formatted.
 *
 * @example
 * ```ts
 * const c: DecodeContext = { sysno: SYS.read, args: [3n, buf, 10n], ret: 4n, ok: true, mem, strlen: 32, sp: undefined };
 * ```
 */
export interface DecodeContext {
  /** The syscall number. */
  readonly sysno: number;
  /** The six raw argument registers (missing ones read as 0). */
  readonly args: readonly bigint[];
  /** The raw return register; undefined when the call has not returned (or never will). */
  readonly ret: bigint | undefined;
  /** True when the call returned and did not fail: output arguments are worth reading. */
  readonly ok: boolean;
  /** The program's memory. */
  readonly mem: MemoryReader;
  /** Longest string shown, in bytes (strace's `-s`, default 32); also the longest array. */
  readonly strlen: number;
  /** The stack pointer at syscall entry, when known (rt_sigreturn reads its frame there). */
  readonly sp: bigint | undefined;
}

/**
 * Argument `i` (0 when absent).
 *
 * @example
 * ```ts
 * arg(c, 2); // the third argument register
 * ```
 */
export function arg(c: DecodeContext, i: number): bigint {
  return c.args[i] ?? 0n;
}

/**
 * The return value as a signed 64-bit number (0 when the call has not returned).
 *
 * @example
 * ```ts
 * retval(c); // -2n for a call that failed with ENOENT
 * ```
 */
export function retval(c: DecodeContext): bigint {
  return c.ret === undefined ? 0n : BigInt.asIntN(64, c.ret);
}

/**
 * A C `int` (fd, pid, signed flag word): the low 32 bits, signed, in decimal.
 *
 * @example
 * ```ts
 * int(0xffffffffn); // '-1'
 * ```
 */
export function int(v: bigint): string {
  return BigInt.asIntN(32, v).toString();
}

/**
 * A C `unsigned int` in decimal.
 *
 * @example
 * ```ts
 * uint(0xffffffffn); // '4294967295'
 * ```
 */
export function uint(v: bigint): string {
  return BigInt.asUintN(32, v).toString();
}

/**
 * A C `long` / `off_t` in decimal.
 *
 * @example
 * ```ts
 * long(0xffffffffffffffffn); // '-1'
 * ```
 */
export function long(v: bigint): string {
  return BigInt.asIntN(64, v).toString();
}

/**
 * A C `unsigned long` / `size_t` in decimal.
 *
 * @example
 * ```ts
 * ulong(0xffffffffffffffffn); // '18446744073709551615'
 * ```
 */
export function ulong(v: bigint): string {
  return BigInt.asUintN(64, v).toString();
}

/**
 * `%#x` of a C `unsigned int`.
 *
 * @example
 * ```ts
 * hex32(0xffffffff00008001n); // '0x8001'
 * ```
 */
export function hex32(v: bigint): string {
  return hex(BigInt.asUintN(32, v));
}

/**
 * A directory fd of the `*at()` calls: `AT_FDCWD` for -100, else the number.
 *
 * @example
 * ```ts
 * dirfd(-100n); // 'AT_FDCWD'
 * ```
 */
export function dirfd(v: bigint): string {
  const n = BigInt.asIntN(32, v);
  return n === -100n ? 'AT_FDCWD' : n.toString();
}
