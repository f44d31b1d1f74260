import { PAGE_SIZE } from '../../abi/linux.js';

/**
 * Address arithmetic shared by the ELF parser and the loader: the page size as a bigint, rounding
 * to powers of two, address ranges and how they are printed in messages.
 */

/**
 * The page size as a bigint, for address arithmetic.
 *
 * @example
 * ```ts
 * const pages = (end - start) / PAGE;
 * ```
 */
export const PAGE = BigInt(PAGE_SIZE);

/**
 * A half-open range of addresses, [start, end).
 *
 * @example
 * ```ts
 * const stack: AddressRange = { start: stackTop - stackSize, end: stackTop };
 * ```
 */
export interface AddressRange {
  start: bigint;
  end: bigint;
}

/**
 * Rounds `v` up to a multiple of `to` (a power of two).
 *
 * @example
 * ```ts
 * roundUp(4097n, 4096n); // 8192n
 * ```
 */
export function roundUp(v: bigint, to: bigint): bigint {
  return (v + to - 1n) & ~(to - 1n);
}

/**
 * Rounds `v` down to a multiple of `to` (a power of two).
 *
 * @example
 * ```ts
 * roundDown(4097n, 4096n); // 4096n
 * ```
 */
export function roundDown(v: bigint, to: bigint): bigint {
  return v & ~(to - 1n);
}

/**
 * An address as messages print it: `0x` and lowercase hex.
 *
 * @example
 * ```ts
 * hex(0x400000n); // '0x400000'
 * ```
 */
export function hex(v: bigint): string {
  return `0x${v.toString(16)}`;
}

/**
 * A range as messages print it.
 *
 * @example
 * ```ts
 * rangeText({ start: 0x1000n, end: 0x3000n }); // '[0x1000, 0x3000)'
 * ```
 */
export function rangeText(r: AddressRange): string {
  return `[${hex(r.start)}, ${hex(r.end)})`;
}
