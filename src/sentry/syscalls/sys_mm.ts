import { ERRNO, MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../../abi/linux.js';
import { SYS } from '../../abi/syscalls.js';
import { err, type Handler, type SyscallKernel } from './context.js';

/** What the memory calls use of the kernel. */
type MmKernel = Pick<SyscallKernel, 'region' | 'brk' | 'brkStart'>;

const PAGE = BigInt(PAGE_SIZE);
const pageUp = (v: bigint): bigint => (v + PAGE - 1n) & ~(PAGE - 1n);
/** Most the program break may grow (a runaway brk must not reach other mappings). */
const BRK_LIMIT = 1n << 32n;
/** mremap(2): the new address is given. */
const MREMAP_FIXED = 2n;

/** True if [addr, addr+len) meets the stub region. */
function touchesStub(k: MmKernel, addr: bigint, len: bigint): boolean {
  const a = BigInt.asUintN(64, addr);
  const e = a + BigInt.asUintN(64, len);
  return a < k.region.end && e > k.region.start;
}

/**
 * brk (gVisor's mm/brk): the break is the sentry's, its pages are ordinary anonymous mappings
 * made by the stub for the program (mmap to grow, MAP_FIXED_NOREPLACE as the kernel's brk grows
 * only into free space; munmap to shrink). An impossible request answers the current break.
 *
 * @example
 * ```ts
 * brk(kernel, task, [kernel.brk + 4096n]); // a Substitute: mmap of the new page
 * ```
 */
export const brk: Handler = (k, _t, a) => {
  const want = a[0];
  if (want < k.brkStart || want > k.brkStart + BRK_LIMIT || touchesStub(k, k.brkStart, want - k.brkStart)) return k.brk;
  const cur = pageUp(k.brk);
  const next = pageUp(want);
  if (next === cur) {
    k.brk = want;
    return want;
  }
  if (next > cur) {
    return {
      sysno: SYS.mmap,
      args: [cur, next - cur, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1n, 0n],
      onDone: (ret) => {
        if (ret !== cur) return k.brk;
        k.brk = want;
        return want;
      },
    };
  }
  return {
    sysno: SYS.munmap,
    args: [next, cur - next],
    onDone: (ret) => {
      if (ret === 0n) k.brk = want;
      return k.brk;
    },
  };
};

/**
 * The memory calls the filter traps because their range could reach the stub region: refused
 * when it does (ENOMEM for a fixed mmap, EINVAL for the others, as for an invalid range), passed
 * to the kernel otherwise.
 */
export const mmapCheck: Handler = (k, _t, a) => ((a[3] & MAP_FIXED) !== 0n && touchesStub(k, a[0], a[1]) ? err(ERRNO.ENOMEM) : 'pass');

export const rangeCheck: Handler = (k, _t, a) => (touchesStub(k, a[0], a[1]) ? err(ERRNO.EINVAL) : 'pass');

export const mremap: Handler = (k, _t, a) => {
  if (touchesStub(k, a[0], a[1])) return err(ERRNO.EINVAL);
  if ((a[3] & MREMAP_FIXED) !== 0n && touchesStub(k, a[4], a[2])) return err(ERRNO.EINVAL);
  return 'pass';
};
