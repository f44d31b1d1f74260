import { readFileSync } from 'node:fs';

/** AT_HWCAP2 in the auxiliary vector, and its FSGSBASE bit (linux/auxvec.h, asm/hwcap2.h). */
const AT_HWCAP2 = 26n;
const HWCAP2_FSGSBASE = 2n;

let fsgsbase: boolean | undefined;

/**
 * Whether the kernel lets user code read and write the FS base without a syscall
 * (rdfsbase/wrfsbase, HWCAP2_FSGSBASE): the stub's handler then switches TLS with no
 * arch_prctl per trap. Read once from this process's auxv (stubs are forked from it: same CPU,
 * same kernel).
 *
 * @example
 * ```ts
 * queue.setFsgsbase(fsgsbaseAllowed());
 * ```
 */
export function fsgsbaseAllowed(): boolean {
  if (fsgsbase === undefined) {
    fsgsbase = false;
    try {
      const b = readFileSync('/proc/self/auxv');
      const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
      for (let i = 0; i + 16 <= b.length; i += 16) {
        if (dv.getBigUint64(i, true) === AT_HWCAP2) fsgsbase = (dv.getBigUint64(i + 8, true) & HWCAP2_FSGSBASE) !== 0n;
      }
    } catch {
      // no auxv: the handler falls back to arch_prctl
    }
  }
  return fsgsbase;
}
