/**
 * Decoders for the memory calls: mmap and friends, brk, madvise, msync,
 * mlock, shmat, membarrier. Calls that return an address print it in hex.
 *
 * @module
 */

import type { DecoderTable } from './args.js';
import { FD, I, P, U, UL, X, enumOf, flags, retHex, sig, sigRet } from './args.js';
import type { DecodeContext } from '../context.js';
import { arg } from '../context.js';
import { hex, ptr, ulong } from '../scalars.js';
import { formatFlags, lookup } from '../xlat.js';
import {
  MADV, MCL_FLAGS, MEMBARRIER_CMD, MLOCK_FLAGS, MREMAP_FIXED, MREMAP_FLAGS, MS_FLAGS, PROT, SHM_FLAGS,
  formatMmapFlags,
} from '../xlat/memory.js';

const prot = flags(PROT, 'PROT_NONE');

/** membarrier: MEMBARRIER_CMD_QUERY answers with the supported commands, as flags. */
function membarrierRet(c: DecodeContext, r: bigint): string {
  if (lookup(arg(c, 0), MEMBARRIER_CMD) !== 'MEMBARRIER_CMD_QUERY' || r === 0n) return r.toString();
  return `${hex(r)} (${formatFlags(r, MEMBARRIER_CMD)})`;
}

/**
 * Decoders for the memory calls, by name.
 *
 * @example
 * ```ts
 * MEMORY_DECODERS.mmap!.args(c); // ['NULL', '8192', 'PROT_READ|PROT_WRITE', 'MAP_PRIVATE|MAP_ANONYMOUS', '-1', '0']
 * ```
 */
export const MEMORY_DECODERS: DecoderTable = {
  mmap: sigRet(retHex, P, UL, prot, (v) => formatMmapFlags(v), FD, X),
  munmap: sig(P, UL),
  mprotect: sig(P, UL, prot),
  pkey_mprotect: sig(P, UL, prot, I),
  mremap: {
    args: (c) => {
      const mremapFlags = BigInt.asUintN(32, arg(c, 3));
      const base = [ptr(arg(c, 0)), ulong(arg(c, 1)), ulong(arg(c, 2)), formatFlags(mremapFlags, MREMAP_FLAGS)];
      return mremapFlags & MREMAP_FIXED ? [...base, ptr(arg(c, 4))] : base;
    },
    ret: retHex,
  },
  brk: sigRet(retHex, P),
  madvise: sig(P, UL, enumOf(MADV, 'MADV_')),
  msync: sig(P, UL, flags(MS_FLAGS)),
  mincore: sig(P, UL, P),
  mlock: sig(P, UL),
  munlock: sig(P, UL),
  mlock2: sig(P, UL, flags(MLOCK_FLAGS)),
  mlockall: sig(flags(MCL_FLAGS)),
  shmat: sigRet(retHex, I, P, flags(SHM_FLAGS)),
  membarrier: sigRet(membarrierRet, enumOf(MEMBARRIER_CMD, 'MEMBARRIER_CMD_'), U),
};
