/**
 * What an argument decoder sees: the call's registers, its result and the
 * program's memory.
 *
 * @module
 */

import type { MemoryReader } from './umove.js';

/**
 * One syscall being formatted.
 *
 * @example
 * ```ts
 * const c: DecodeContext = { args: [3n, buf, 10n], ret: 4n, ok: true, mem, strlen: 32, sp: undefined };
 * ```
 */
export interface DecodeContext {
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
  /**
   * `-y`: what an fd names in the program (`/etc/passwd`, `pipe:[123]`; AT_FDCWD: the working
   * directory), printed as `3</etc/passwd>`; undefined when not asked for or not known.
   */
  readonly fdPath?: (fd: number) => string | undefined;
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
