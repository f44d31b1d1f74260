/**
 * The two ways strace prints symbolic constants, a bit set
 * (`O_RDONLY|O_CLOEXEC`) or one value of an enumeration (`SEEK_SET`), and
 * the tables of named values they use.
 *
 * Table order is print order: strace prints flags in the order of its own
 * tables, which mostly, but not always, is by value.
 *
 * @module
 */

import { currentConstStyle, styled } from './constStyle.js';
import { hex } from './scalars.js';

/**
 * Named values, in print order. Built from an object literal by {@link xlat}.
 *
 * @example
 * ```ts
 * const t: Xlat = xlat({ R_OK: 4, W_OK: 2 }); // [[4n, 'R_OK'], [2n, 'W_OK']]
 * ```
 */
export type Xlat = readonly (readonly [bigint, string])[];

/**
 * Build a table from `{ NAME: value }` (insertion order is print order).
 *
 * @example
 * ```ts
 * const t = xlat({ R_OK: 4, W_OK: 2, X_OK: 1 });
 * ```
 */
export function xlat(o: Readonly<Record<string, number | bigint>>): Xlat {
  return Object.entries(o).map(([k, v]) => [BigInt(v), k] as const);
}

/**
 * Print a bit set: every table entry all of whose bits are set (in table
 * order, each consuming its bits), then any unnamed bits in hex; `zero`
 * when no bit is set.
 *
 * @example
 * ```ts
 * formatFlags(0x3n, PROT, 'PROT_NONE');  // 'PROT_READ|PROT_WRITE'
 * formatFlags(0x101n, PROT, 'PROT_NONE'); // 'PROT_READ|0x100'
 * formatFlags(0x1n, SFD_FLAGS, '0', 'SFD_'); // '0x1 /* SFD_??? *\/' (no bit named)
 * ```
 */
export function formatFlags(v: bigint, table: Xlat, zero = '0', unknownPrefix?: string): string {
  if (currentConstStyle() === 'abbrev') return namedFlags(v, table, zero, unknownPrefix);
  return styled(hex(BigInt.asUintN(64, v)), () => namedFlags(v, table, zero, unknownPrefix));
}

function namedFlags(v: bigint, table: Xlat, zero: string, unknownPrefix?: string): string {
  let rest = BigInt.asUintN(64, v);
  const out: string[] = [];
  for (const [bits, name] of table) {
    if (bits !== 0n && (rest & bits) === bits) {
      out.push(name);
      rest &= ~bits;
    }
  }
  // strace's printflags: bits no name covers follow the names; alone, they get its "PREFIX_???" comment.
  if (rest !== 0n) out.push(out.length === 0 && unknownPrefix !== undefined ? `${hex(rest)} /* ${unknownPrefix}??? */` : hex(rest));
  return out.length ? out.join('|') : zero;
}

/**
 * Print one value of an enumeration; an unknown value prints as
 * `0x7 /* SEEK_??? *\/` (strace's style) when `unknownPrefix` is given,
 * else as a decimal number.
 *
 * @example
 * ```ts
 * formatEnum(0n, WHENCE, 'SEEK_'); // 'SEEK_SET'
 * formatEnum(7n, WHENCE, 'SEEK_'); // '0x7 /* SEEK_??? *\/'
 * ```
 */
export function formatEnum(v: bigint, table: Xlat, unknownPrefix?: string): string {
  if (currentConstStyle() !== 'abbrev') {
    // strace prints an enumeration's raw value in hex (negative ones in decimal).
    const raw = v < 0n ? v.toString() : hex(v);
    return styled(raw, () => lookup(v, table) ?? raw);
  }
  for (const [value, name] of table) if (value === v) return name;
  return unknownPrefix === undefined ? v.toString() : `${hex(v)} /* ${unknownPrefix}??? */`;
}

/**
 * The name of an enumeration value, or undefined.
 *
 * @example
 * ```ts
 * lookup(2n, WHENCE); // 'SEEK_END'
 * lookup(9n, WHENCE); // undefined
 * ```
 */
export function lookup(v: bigint, table: Xlat): string | undefined {
  for (const [value, name] of table) if (value === v) return name;
  return undefined;
}
