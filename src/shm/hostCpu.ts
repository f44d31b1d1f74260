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

let xsaveopt: boolean | undefined;

/**
 * Whether this CPU has XSAVEOPT (the `xsaveopt` flag of /proc/cpuinfo: CPUID.(EAX=0DH,ECX=1)
 * bit 0, as the kernel left it). The stub's syshandler then saves a patched call's FP state with
 * it: the components still in their initial state (AVX-512's in most programs, ~2 KiB) are not
 * written, ~1/3 of XSAVE's cost on the machines measured. Read once (stubs run on this CPU).
 *
 * @example
 * ```ts
 * queueWords[CONTEXT_QUEUE.xsaveopt / 4] = xsaveoptAvailable() ? 1 : 0; // as ContextQueue sets up a queue
 * ```
 */
export function xsaveoptAvailable(): boolean {
  if (xsaveopt === undefined) {
    xsaveopt = false;
    try {
      const flags = /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'latin1'));
      xsaveopt = flags !== null && flags[1].split(' ').includes('xsaveopt');
    } catch {
      // no /proc/cpuinfo: XSAVE, which every CPU with XSAVE has
    }
  }
  return xsaveopt;
}
