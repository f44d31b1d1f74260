/**
 * Integers and integer arrays behind a pointer, in strace's brackets:
 * `[42]`, `[0x7f...]`, `[3, 4]`, and bit sets as `[0 1]` (CPU masks, fd_sets).
 *
 * Each printer takes the struct's address and prints `NULL` for a null
 * pointer, the address in hex when the memory cannot be read.
 *
 * @module
 */

import { hex, ptr } from '../scalars.js';
import type { MemoryReader } from '../umove.js';
import { readBytes, u64, withStruct } from '../umove.js';

/**
 * An `int` behind a pointer: `[42]`.
 *
 * @example
 * ```ts
 * formatIntPtr(mem, addr); // '[16]'
 * formatIntPtr(mem, addr, signalName); // '[SIGKILL]'
 * ```
 */
export function formatIntPtr(mem: MemoryReader, addr: bigint, render: (n: bigint) => string = (n) => n.toString()): string {
  return withStruct(mem, addr, 4, (v) => `[${render(BigInt(v.getInt32(0, true)))}]`);
}

/**
 * A 64-bit word behind a pointer, in hex: `[0x7f...]` (arch_prctl ARCH_GET_FS).
 *
 * @example
 * ```ts
 * formatU64Ptr(mem, addr); // '[0x7f0000000740]'
 * ```
 */
export function formatU64Ptr(mem: MemoryReader, addr: bigint, render: (n: bigint) => string = hex): string {
  return withStruct(mem, addr, 8, (v) => `[${render(u64(v, 0))}]`);
}

/**
 * Two ints (pipe / socketpair results): `[3, 4]`.
 *
 * @example
 * ```ts
 * formatIntPair(mem, addr); // '[3, 4]'
 * ```
 */
export function formatIntPair(mem: MemoryReader, addr: bigint): string {
  return withStruct(mem, addr, 8, (v) => `[${v.getInt32(0, true)}, ${v.getInt32(4, true)}]`);
}

/**
 * A bit array of `bytes` bytes as a list of set bit numbers: `[0 1]` (CPU masks, fd_sets).
 *
 * @example
 * ```ts
 * formatBitList(mem, addr, 8); // '[0 1]'
 * ```
 */
export function formatBitList(mem: MemoryReader, addr: bigint, bytes: number): string {
  if (BigInt.asUintN(64, addr) === 0n) return 'NULL';
  const b = readBytes(mem, addr, bytes);
  if (!b) return ptr(addr);
  const on: number[] = [];
  for (let i = 0; i < b.length * 8; i++) if (b[i >> 3]! & (1 << (i & 7))) on.push(i);
  return `[${on.join(' ')}]`;
}
