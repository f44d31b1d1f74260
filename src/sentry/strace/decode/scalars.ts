import { currentConstStyle } from './constStyle.js';

/**
 * How strace prints plain numbers: hex (`%#lx`), pointers (`NULL`), C ints
 * of each width and signedness, octal modes, and the `*at()` directory fd.
 *
 * @module
 */

/**
 * `%#lx` as C prints it: `0` for zero, else `0x` and lowercase hex.
 *
 * @example
 * ```ts
 * hex(0n);      // '0'
 * hex(0x1000n); // '0x1000'
 * ```
 */
export function hex(v: bigint): string {
  const u = BigInt.asUintN(64, v);
  return u === 0n ? '0' : `0x${u.toString(16)}`;
}

/**
 * A pointer as strace prints it: `NULL`, or hex.
 *
 * @example
 * ```ts
 * ptr(0n);          // 'NULL'
 * ptr(0x7ffd1000n); // '0x7ffd1000'
 * ```
 */
export function ptr(v: bigint): string {
  return BigInt.asUintN(64, v) === 0n ? 'NULL' : hex(v);
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
 * `%#03o`: octal with a leading 0, at least three digits (strace's mode and
 * umask format).
 *
 * @example
 * ```ts
 * octal(0o644n); // '0644'
 * octal(0o22n);  // '022'
 * octal(0n);     // '000'
 * ```
 */
export function octal(v: bigint): string {
  const u = BigInt.asUintN(64, v);
  return u === 0n ? '000' : `0${u.toString(8)}`.padStart(3, '0');
}

/** The `*at()` calls' "relative to the working directory" fd. */
const AT_FDCWD = -100n;

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
  if (n !== AT_FDCWD) return n.toString();
  const style = currentConstStyle();
  return style === 'abbrev' ? 'AT_FDCWD' : style === 'raw' ? n.toString() : `${n} /* AT_FDCWD */`;
}
