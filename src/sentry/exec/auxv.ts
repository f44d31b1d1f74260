import { readFileSync } from 'node:fs';
import { USER_HZ } from '../../abi/linux.js';
import { PAGE } from './addresses.js';
import { PHDR_SIZE } from './elfFormat.js';

/**
 * The ELF auxiliary vector (auxv): the (type, value) pairs execve leaves on the new stack after
 * envp, telling the C library and ld.so what the kernel knows (where the program headers are,
 * the page size, the CPU features, …). This file has the entry types, decodes an auxv, reads
 * the host's, and builds a new program's (the auxv half of Linux's create_elf_tables).
 */

/**
 * auxv entry types (a_type), from the x86-64 kernel's uapi/linux/auxvec.h and asm/auxvec.h.
 *
 * @example
 * ```ts
 * const entry = new Map(decodeStackImage(bytes, sp).auxv).get(AT.ENTRY);
 * ```
 */
export const AT = {
  NULL: 0,
  IGNORE: 1,
  EXECFD: 2,
  PHDR: 3,
  PHENT: 4,
  PHNUM: 5,
  PAGESZ: 6,
  BASE: 7,
  FLAGS: 8,
  ENTRY: 9,
  NOTELF: 10,
  UID: 11,
  EUID: 12,
  GID: 13,
  EGID: 14,
  PLATFORM: 15,
  HWCAP: 16,
  CLKTCK: 17,
  SECURE: 23,
  BASE_PLATFORM: 24,
  RANDOM: 25,
  HWCAP2: 26,
  RSEQ_FEATURE_SIZE: 27,
  RSEQ_ALIGN: 28,
  EXECFN: 31,
  SYSINFO_EHDR: 33,
  MINSIGSTKSZ: 51,
} as const;

/**
 * One auxv entry: [a_type, a_val].
 *
 * @example
 * ```ts
 * const e: AuxEntry = [AT.PAGESZ, 4096n];
 * ```
 */
export type AuxEntry = readonly [type: number, value: bigint];

/** Bytes of one auxv entry: two little-endian u64, a_type then a_val. */
const ENTRY_SIZE = 16;
const VALUE_OFFSET = 8;

/**
 * Decodes an auxv blob (pairs of little-endian u64, up to and excluding AT_NULL).
 *
 * Preconditions: `bytes` is an auxv as found in /proc/PID/auxv or on a process's stack; a
 * trailing partial pair is ignored.
 *
 * @example
 * ```ts
 * const entries = parseAuxv(readFileSync('/proc/self/auxv'));
 * ```
 */
export function parseAuxv(bytes: Uint8Array): AuxEntry[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: AuxEntry[] = [];
  for (let o = 0; o + ENTRY_SIZE <= bytes.length; o += ENTRY_SIZE) {
    const type = dv.getBigUint64(o, true);
    if (type === BigInt(AT.NULL)) break;
    out.push([Number(type), dv.getBigUint64(o + VALUE_OFFSET, true)]);
  }
  return out;
}

/**
 * What the host kernel told Node about the CPU, for passing on to programs.
 *
 * @example
 * ```ts
 * const { hwcap, hwcap2, minsigstksz }: HostAuxv = hostAuxv();
 * ```
 */
export interface HostAuxv {
  /** AT_HWCAP: CPUID 1 EDX feature bits on x86-64. */
  hwcap: bigint;
  /** AT_HWCAP2: ring-3 MONITOR/MWAIT, FSGSBASE… */
  hwcap2: bigint;
  /** AT_MINSIGSTKSZ: the signal frame size this CPU's XSAVE state needs; absent on old kernels. */
  minsigstksz?: bigint;
}

let cached: HostAuxv | undefined;

/**
 * Node's own AT_HWCAP, AT_HWCAP2 and AT_MINSIGSTKSZ from /proc/self/auxv. These describe the
 * CPU and the host kernel, which are also the program's (it runs natively in the stub), so the
 * loader passes them through instead of inventing values. Read once per thread.
 *
 * Preconditions: Linux with /proc mounted; without it the values are 0 (glibc then assumes a
 * baseline CPU, which is safe).
 *
 * @example
 * ```ts
 * const { hwcap, hwcap2 } = hostAuxv();
 * ```
 */
export function hostAuxv(): HostAuxv {
  if (cached) return cached;
  let entries: AuxEntry[] = [];
  try {
    entries = parseAuxv(readFileSync('/proc/self/auxv'));
  } catch {
    // No /proc: fall back to "no optional features".
  }
  const get = (t: number) => entries.find((e) => e[0] === t)?.[1];
  const minsigstksz = get(AT.MINSIGSTKSZ);
  cached = {
    hwcap: get(AT.HWCAP) ?? 0n,
    hwcap2: get(AT.HWCAP2) ?? 0n,
    ...(minsigstksz !== undefined ? { minsigstksz } : {}),
  };
  return cached;
}

/**
 * What the auxv says about the program being started.
 *
 * @example
 * ```ts
 * const input: ProgramAuxvInput = { phdr: 0x555555554040n, phnum: 13, interpBase: 0n, entry: 0x555555559000n };
 * ```
 */
export interface ProgramAuxvInput {
  /** Where the program headers are in memory (AT_PHDR). */
  phdr: bigint;
  /** How many there are (AT_PHNUM). */
  phnum: number;
  /** The interpreter's load bias, 0 without one (AT_BASE). */
  interpBase: bigint;
  /** The program's own entry point, relocated (AT_ENTRY). */
  entry: bigint;
}

/**
 * The auxv of a new program, in the order Linux's create_elf_tables writes it. AT_RANDOM,
 * AT_EXECFN and AT_PLATFORM point into the stack image and are 0 here (buildStackImage fills
 * them in); the CPU entries come from {@link hostAuxv}; the ids are Node's own (the stub runs as
 * Node's user); AT_SECURE and AT_FLAGS are 0. No vDSO is mapped, so there is no AT_SYSINFO_EHDR.
 *
 * @example
 * ```ts
 * const auxv = programAuxv({ phdr, phnum: info.header.phnum, interpBase, entry });
 * buildStackImage({ stackTop, argv, envp, execfn, auxv, random });
 * ```
 */
export function programAuxv(p: ProgramAuxvInput): AuxEntry[] {
  const host = hostAuxv();
  return [
    ...(host.minsigstksz !== undefined ? [[AT.MINSIGSTKSZ, host.minsigstksz] as const] : []),
    [AT.HWCAP, host.hwcap],
    [AT.PAGESZ, PAGE],
    [AT.CLKTCK, USER_HZ],
    [AT.PHDR, p.phdr],
    [AT.PHENT, BigInt(PHDR_SIZE)],
    [AT.PHNUM, BigInt(p.phnum)],
    [AT.BASE, p.interpBase],
    [AT.FLAGS, 0n],
    [AT.ENTRY, p.entry],
    [AT.UID, BigInt(process.getuid?.() ?? 0)],
    [AT.EUID, BigInt(process.geteuid?.() ?? 0)],
    [AT.GID, BigInt(process.getgid?.() ?? 0)],
    [AT.EGID, BigInt(process.getegid?.() ?? 0)],
    [AT.SECURE, 0n],
    [AT.RANDOM, 0n],
    [AT.HWCAP2, host.hwcap2],
    [AT.EXECFN, 0n],
    [AT.PLATFORM, 0n],
  ];
}
