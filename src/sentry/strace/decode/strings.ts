/**
 * Reading the traced program's memory and printing what was read the way
 * strace does: quoted, escaped strings cut at `-s` bytes, and pointers.
 *
 * @module
 */

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
}

const PAGE = 4096n;
/** Strings are read this many bytes at a time (most are shorter). */
const CHUNK = 512;

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
 * The longest readable prefix (up to `len`) of the bytes at `addr`: tries the
 * whole range, then halves until a read works. Empty when nothing is readable.
 */
function readSome(mem: MemoryReader, addr: bigint, len: number): Uint8Array {
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
  const parts: Uint8Array[] = [];
  let total = 0;
  let at = BigInt.asUintN(64, addr);
  // Read one byte past the limit: a NUL there still makes the string complete.
  while (total <= limit) {
    const toPageEnd = Number(PAGE - (at % PAGE));
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
