/**
 * Reading the traced program's memory (strace's `umove`): raw bytes, words,
 * NUL-terminated strings, and fixed-size structs. Every reader answers null
 * when any byte is unreadable, so a decoder can fall back to printing the
 * pointer, as strace does.
 *
 * @module
 */

import { PAGE_SIZE } from '../../../abi/linux.js';
import { ptr } from './scalars.js';

/**
 * Read access to the traced program's address space, for decoding pointer
 * arguments.
 *
 * @example
 * ```ts
 * const mem: MemoryReader = {
 *   read: (addr, len) => (addr === 0x1000n ? new TextEncoder().encode('hi\0').subarray(0, len) : null),
 * };
 * ```
 */
export interface MemoryReader {
  /**
   * The `len` bytes at `addr`, or null when any of them cannot be read
   * (unmapped, or the process is gone). A decoder that gets null prints the
   * pointer in hex, like strace.
   */
  read(addr: bigint, len: number): Uint8Array | null;
  /**
   * The longest readable prefix (up to `len`) of the bytes at `addr`, empty when none is: a
   * reader that knows it (the trace ring's copies) spares readSome its halving.
   */
  readSome?(addr: bigint, len: number): Uint8Array;
}

/** Strings are read this many bytes at a time (most are shorter). */
const CHUNK = 512;

/**
 * Read `len` bytes, or null. Zero-length reads succeed without touching memory.
 *
 * @example
 * ```ts
 * readBytes(mem, 0x1000n, 4); // Uint8Array(4) or null
 * ```
 */
export function readBytes(mem: MemoryReader, addr: bigint, len: number): Uint8Array | null {
  if (len <= 0) return new Uint8Array(0);
  if (BigInt.asUintN(64, addr) === 0n) return null;
  try {
    const b = mem.read(BigInt.asUintN(64, addr), len);
    return b && b.length >= len ? b.subarray(0, len) : null;
  } catch {
    return null;
  }
}

/**
 * Read a little-endian unsigned 64-bit word.
 *
 * @example
 * ```ts
 * readU64(mem, 0x1000n); // 0x7fffn, or null when unreadable
 * ```
 */
export function readU64(mem: MemoryReader, addr: bigint): bigint | null {
  const b = readBytes(mem, addr, 8);
  return b ? new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true) : null;
}

/**
 * Read a little-endian 32-bit word, signed or not.
 *
 * @example
 * ```ts
 * readU32(mem, 0x1000n, true); // -1, or null when unreadable
 * ```
 */
export function readU32(mem: MemoryReader, addr: bigint, signed = false): number | null {
  const b = readBytes(mem, addr, 4);
  if (!b) return null;
  const dv = new DataView(b.buffer, b.byteOffset, 4);
  return signed ? dv.getInt32(0, true) : dv.getUint32(0, true);
}

/**
 * A little-endian view of `size` bytes at `addr`, or null.
 *
 * @example
 * ```ts
 * view(mem, addr, 16)?.getBigInt64(0, true); // the first 8 bytes, or undefined when unreadable
 * ```
 */
export function view(mem: MemoryReader, addr: bigint, size: number): DataView | null {
  const b = readBytes(mem, addr, size);
  return b ? new DataView(b.buffer, b.byteOffset, b.length) : null;
}

/**
 * Print the `size`-byte struct at `addr` with `f`; `NULL` for a null
 * pointer, the address in hex when unreadable.
 *
 * @example
 * ```ts
 * withStruct(mem, addr, 8, (v) => `[${v.getInt32(0, true)}, ${v.getInt32(4, true)}]`); // '[3, 4]'
 * ```
 */
export function withStruct(mem: MemoryReader, addr: bigint, size: number, f: (v: DataView) => string): string {
  if (BigInt.asUintN(64, addr) === 0n) return 'NULL';
  const v = view(mem, addr, size);
  return v ? f(v) : ptr(addr);
}

/**
 * The unsigned 64-bit field at byte offset `o` of a struct.
 *
 * @example
 * ```ts
 * withStruct(mem, addr, 16, (v) => `{tv_sec=${u64(v, 0)}}`);
 * ```
 */
export const u64 = (v: DataView, o: number): bigint => v.getBigUint64(o, true);

/**
 * The signed 64-bit field at byte offset `o` of a struct.
 *
 * @example
 * ```ts
 * withStruct(mem, addr, 16, (v) => `{tv_sec=${i64(v, 0)}, tv_nsec=${i64(v, 8)}}`);
 * ```
 */
export const i64 = (v: DataView, o: number): bigint => v.getBigInt64(o, true);

/**
 * The longest readable prefix (up to `len`) of the bytes at `addr`: tries the
 * whole range, then halves until a read works. Empty when nothing is readable.
 */
function readSome(mem: MemoryReader, addr: bigint, len: number): Uint8Array {
  if (mem.readSome) return mem.readSome(BigInt.asUintN(64, addr), len);
  for (let n = len; n > 0; n >>= 1) {
    const b = readBytes(mem, addr, n);
    if (b) return b;
  }
  return new Uint8Array(0);
}

/**
 * A NUL-terminated string read from the program, without its NUL.
 *
 * @example
 * ```ts
 * const s: CString | null = readCString(mem, addr, 32); // { bytes, complete }
 * ```
 */
export interface CString {
  /** The bytes before the NUL (at most the limit). */
  bytes: Uint8Array;
  /** False when no NUL was found within the limit (strace then appends `...`). */
  complete: boolean;
}

/**
 * Read a NUL-terminated string of at most `limit` bytes (the NUL not
 * counted), in chunks that never cross a page boundary, so a string ending
 * just before an unmapped page still reads. Null when not even the first
 * byte is readable.
 *
 * @example
 * ```ts
 * readCString(mem, 0x1000n, 32); // { bytes: Uint8Array [104, 105], complete: true }
 * ```
 */
export function readCString(mem: MemoryReader, addr: bigint, limit: number): CString | null {
  if (BigInt.asUintN(64, addr) === 0n) return null;
  const page = BigInt(PAGE_SIZE);
  const parts: Uint8Array[] = [];
  let total = 0;
  let at = BigInt.asUintN(64, addr);
  // Read one byte past the limit: a NUL there still makes the string complete.
  while (total <= limit) {
    const toPageEnd = Number(page - (at % page));
    const want = Math.min(toPageEnd, limit + 1 - total, CHUNK);
    const chunk = readSome(mem, at, want);
    if (chunk.length === 0) {
      if (total === 0) return null;
      break;
    }
    const nul = chunk.indexOf(0);
    if (nul >= 0) {
      parts.push(chunk.subarray(0, nul));
      total += nul;
      return { bytes: concat(parts, total), complete: total <= limit };
    }
    parts.push(chunk);
    total += chunk.length;
    at += BigInt(chunk.length);
  }
  return { bytes: concat(parts, total).subarray(0, limit), complete: false };
}

/** The first `total` bytes of `parts`, joined (no copy for a single part). */
function concat(parts: Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p.subarray(0, total - o), o);
    o += p.length;
    if (o >= total) break;
  }
  return out;
}
