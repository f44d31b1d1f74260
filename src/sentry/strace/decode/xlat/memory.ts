/**
 * Flags of the memory calls: mmap, mprotect, mremap, madvise, msync,
 * mlock, shmat, membarrier (x86-64 values, in strace's print order).
 *
 * @module
 */

import {
  MAP_ANONYMOUS, MAP_FIXED, MAP_POPULATE, MAP_PRIVATE, MAP_SHARED, PROT_EXEC, PROT_READ, PROT_WRITE,
} from '../../../../abi/linux.js';
import { styled } from '../constStyle.js';
import { hex } from '../scalars.js';
import { formatFlags, lookup, xlat } from '../xlat.js';

/**
 * mmap(2)/mprotect(2) protections.
 *
 * @example
 * ```ts
 * formatFlags(3n, PROT, 'PROT_NONE'); // 'PROT_READ|PROT_WRITE'
 * ```
 */
export const PROT = xlat({ PROT_READ, PROT_WRITE, PROT_EXEC, PROT_SEM: 8, PROT_GROWSDOWN: 0x01000000, PROT_GROWSUP: 0x02000000 });

/** The mapping type bits of mmap's flags. */
const MAP_TYPE = 0xfn;
/** mmap(2) mapping types. */
const MAP_TYPES = xlat({ MAP_SHARED, MAP_PRIVATE, MAP_SHARED_VALIDATE: 3 });
/** The huge page size (log2) sits in these bits of mmap's flags, from MAP_HUGE_SHIFT up. */
const MAP_HUGE_SHIFT = 26n;
const MAP_HUGE_MASK = 0x3fn;

/** mmap(2) flags other than the type. */
const MAP_FLAGS = xlat({
  MAP_FIXED, MAP_ANONYMOUS, MAP_32BIT: 0x40, MAP_NORESERVE: 0x4000, MAP_POPULATE,
  MAP_NONBLOCK: 0x10000, MAP_GROWSDOWN: 0x100, MAP_DENYWRITE: 0x800, MAP_EXECUTABLE: 0x1000, MAP_LOCKED: 0x2000,
  MAP_STACK: 0x20000, MAP_HUGETLB: 0x40000, MAP_SYNC: 0x80000, MAP_FIXED_NOREPLACE: 0x100000,
});

/**
 * mmap(2) flags: the mapping type, the flags, then the huge page size
 * (`21<<MAP_HUGE_SHIFT`); `MAP_FILE` when all zero.
 *
 * @example
 * ```ts
 * formatMmapFlags(0x22n); // 'MAP_PRIVATE|MAP_ANONYMOUS'
 * formatMmapFlags(0n);    // 'MAP_FILE'
 * ```
 */
export function formatMmapFlags(v: bigint): string {
  const u = BigInt.asUintN(64, v);
  return styled(hex(u), () => formatMmapFlagsNamed(v));
}

function formatMmapFlagsNamed(v: bigint): string {
  const u = BigInt.asUintN(64, v);
  if (u === 0n) return 'MAP_FILE';
  const parts: string[] = [];
  const type = lookup(u & MAP_TYPE, MAP_TYPES);
  if (type) parts.push(type);
  const huge = (u >> MAP_HUGE_SHIFT) & MAP_HUGE_MASK;
  const rest = (type ? u & ~MAP_TYPE : u) & ~(MAP_HUGE_MASK << MAP_HUGE_SHIFT);
  if (rest !== 0n) parts.push(formatFlags(rest, MAP_FLAGS));
  if (huge !== 0n) parts.push(`${huge}<<MAP_HUGE_SHIFT`);
  return parts.join('|');
}

/**
 * mremap(2): move to the address given as a fifth argument.
 *
 * @example
 * ```ts
 * if (flags & MREMAP_FIXED) shown.push(ptr(newAddress));
 * ```
 */
export const MREMAP_FIXED = 2n;

/**
 * mremap(2) flags.
 *
 * @example
 * ```ts
 * formatFlags(1n, MREMAP_FLAGS); // 'MREMAP_MAYMOVE'
 * ```
 */
export const MREMAP_FLAGS = xlat({ MREMAP_MAYMOVE: 1, MREMAP_FIXED, MREMAP_DONTUNMAP: 4 });

/**
 * madvise(2) advice.
 *
 * @example
 * ```ts
 * formatEnum(4n, MADV, 'MADV_'); // 'MADV_DONTNEED'
 * ```
 */
export const MADV = xlat({
  MADV_NORMAL: 0, MADV_RANDOM: 1, MADV_SEQUENTIAL: 2, MADV_WILLNEED: 3, MADV_DONTNEED: 4, MADV_FREE: 8,
  MADV_REMOVE: 9, MADV_DONTFORK: 10, MADV_DOFORK: 11, MADV_MERGEABLE: 12, MADV_UNMERGEABLE: 13,
  MADV_HUGEPAGE: 14, MADV_NOHUGEPAGE: 15, MADV_DONTDUMP: 16, MADV_DODUMP: 17, MADV_WIPEONFORK: 18,
  MADV_KEEPONFORK: 19, MADV_COLD: 20, MADV_PAGEOUT: 21, MADV_POPULATE_READ: 22, MADV_POPULATE_WRITE: 23,
  MADV_DONTNEED_LOCKED: 24, MADV_COLLAPSE: 25, MADV_HWPOISON: 100, MADV_SOFT_OFFLINE: 101,
});

/**
 * msync(2) flags.
 *
 * @example
 * ```ts
 * formatFlags(6n, MS_FLAGS); // 'MS_SYNC|MS_INVALIDATE'
 * ```
 */
export const MS_FLAGS = xlat({ MS_SYNC: 4, MS_ASYNC: 1, MS_INVALIDATE: 2 });

/**
 * mlockall(2) flags.
 *
 * @example
 * ```ts
 * formatFlags(3n, MCL_FLAGS); // 'MCL_CURRENT|MCL_FUTURE'
 * ```
 */
export const MCL_FLAGS = xlat({ MCL_CURRENT: 1, MCL_FUTURE: 2, MCL_ONFAULT: 4 });

/**
 * membarrier(2) commands.
 *
 * @example
 * ```ts
 * formatEnum(0n, MEMBARRIER_CMD); // 'MEMBARRIER_CMD_QUERY'
 * ```
 */
export const MEMBARRIER_CMD = xlat({
  MEMBARRIER_CMD_QUERY: 0, MEMBARRIER_CMD_GLOBAL: 1, MEMBARRIER_CMD_GLOBAL_EXPEDITED: 2,
  MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED: 4, MEMBARRIER_CMD_PRIVATE_EXPEDITED: 8,
  MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: 16, MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE: 32,
  MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE: 64, MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ: 128,
  MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ: 256,
});

/**
 * mlock2(2) flags.
 *
 * @example
 * ```ts
 * formatFlags(1n, MLOCK_FLAGS); // 'MLOCK_ONFAULT'
 * ```
 */
export const MLOCK_FLAGS = xlat({ MLOCK_ONFAULT: 1 });

/**
 * shmat(2) flags.
 *
 * @example
 * ```ts
 * formatFlags(0o10000n, SHM_FLAGS); // 'SHM_RDONLY'
 * ```
 */
export const SHM_FLAGS = xlat({ SHM_RDONLY: 0o10000, SHM_RND: 0o20000, SHM_REMAP: 0o40000, SHM_EXEC: 0o100000 });
