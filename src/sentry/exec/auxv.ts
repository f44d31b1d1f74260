import { readFileSync } from 'node:fs';

/**
 * The ELF auxiliary vector (auxv): the (type, value) pairs execve leaves on the new stack after
 * envp, telling the C library and ld.so what the kernel knows (where the program headers are,
 * the page size, the CPU features, …). This file has the entry types, decodes an auxv and reads
 * the host's.
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

/** Bytes of one auxv entry: two little-endian u64. */
const ENTRY_SIZE = 16;

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
    out.push([Number(type), dv.getBigUint64(o + 8, true)]);
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
