/**
 * Printing bytes read from the program the way strace does: quoted,
 * escaped C string literals, cut at `-s` bytes with `...` after the quote.
 *
 * @module
 */

import { ptr } from './scalars.js';
import type { MemoryReader } from './umove.js';
import { readBytes, readCString } from './umove.js';

const isOctalDigit = (c: number | undefined): boolean => c !== undefined && c >= 0x30 && c <= 0x37;

/**
 * Quote bytes as a C string literal the way strace does: `\t \n \v \f \r`,
 * `\"` and `\\` escaped; other non-printable bytes in octal (three digits
 * when an octal digit follows, else as short as possible); with `hex`,
 * every byte as `\xNN` (strace does that for getrandom).
 *
 * @example
 * ```ts
 * quoteBytes(new TextEncoder().encode('hi\n'));     // '"hi\\n"'
 * quoteBytes(Uint8Array.of(0, 0x31));              // '"\\0001"'
 * quoteBytes(Uint8Array.of(0xab), { hex: true });  // '"\\xab"'
 * ```
 */
export function quoteBytes(bytes: Uint8Array, opts: { hex?: boolean } = {}): string {
  let s = '"';
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (opts.hex) {
      s += `\\x${c.toString(16).padStart(2, '0')}`;
      continue;
    }
    switch (c) {
      case 0x22: s += '\\"'; continue;
      case 0x5c: s += '\\\\'; continue;
      case 0x09: s += '\\t'; continue;
      case 0x0a: s += '\\n'; continue;
      case 0x0b: s += '\\v'; continue;
      case 0x0c: s += '\\f'; continue;
      case 0x0d: s += '\\r'; continue;
    }
    if (c >= 0x20 && c <= 0x7e) {
      s += String.fromCharCode(c);
    } else {
      const oct = c.toString(8);
      s += '\\' + (isOctalDigit(bytes[i + 1]) ? oct.padStart(3, '0') : oct);
    }
  }
  return s + '"';
}

/**
 * A buffer of `len` bytes (as passed to write, or filled by read), at most
 * `limit` of them shown, `...` after the closing quote when cut; the
 * pointer in hex when unreadable.
 *
 * @example
 * ```ts
 * formatBuffer(mem, 0x1000n, 6, 32); // '"hello\\n"'
 * formatBuffer(mem, 0x1000n, 40, 4); // '"hell"...'
 * ```
 */
export function formatBuffer(mem: MemoryReader, addr: bigint, len: bigint | number, limit: number, opts: { hex?: boolean } = {}): string {
  const n = typeof len === 'bigint' ? (len < 0n ? 0 : len > BigInt(limit) ? limit + 1 : Number(len)) : Math.max(0, len);
  const shown = Math.min(n, limit);
  const b = readBytes(mem, addr, shown);
  if (!b) return ptr(addr);
  return quoteBytes(b, opts) + (n > limit ? '...' : '');
}

/**
 * A NUL-terminated string argument, at most `limit` bytes shown then `...`;
 * the pointer when unreadable.
 *
 * @example
 * ```ts
 * formatCString(mem, 0x1000n, 32); // '"/etc/passwd"'
 * formatCString(mem, 0n, 32);      // 'NULL'
 * ```
 */
export function formatCString(mem: MemoryReader, addr: bigint, limit: number): string {
  const s = readCString(mem, addr, limit);
  if (!s) return ptr(addr);
  return quoteBytes(s.bytes) + (s.complete ? '' : '...');
}
