import { ERRNO, MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../../abi/linux.js';
import { SYS } from '../../abi/syscalls.js';
import { err, type Handler, type Substitute, type SyscallKernel } from './context.js';

/** What the memory calls use of the kernel. */
type MmKernel = Pick<SyscallKernel, 'region' | 'brk' | 'brkStart'>;

const PAGE = BigInt(PAGE_SIZE);
const pageUp = (v: bigint): bigint => (v + PAGE - 1n) & ~(PAGE - 1n);
/** Most the program break may grow (a runaway brk must not reach other mappings). */
const BRK_LIMIT = 1n << 32n;
/** mremap(2): the new address is given. */
const MREMAP_FIXED = 2n;

/**
 * True if [addr, addr+len) meets the stub region: exactly what the program's filter lets through
 * without a trap (the `clearOf` condition), so a call the sentry passes runs at the gadget.
 */
function touchesStub(k: Pick<MmKernel, 'region'>, addr: bigint, len: bigint): boolean {
  const a = BigInt.asUintN(64, addr);
  const l = BigInt.asUintN(64, len);
  return l !== 0n && a < k.region.end && a + l > k.region.start;
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

const pageAligned = (v: bigint): boolean => (v & (PAGE - 1n)) === 0n;

/**
 * The memory calls the filter traps because their range meets the stub region. To the program
 * the region is address space it cannot have: the calls answer as Linux does for such ranges,
 * checks of the arguments first (an unaligned address is EINVAL wherever it points).
 *
 * mmap: MAP_FIXED into the region is ENOMEM (a range the program cannot map); a hint there is
 * moved by the kernel (the region has no free hole).
 */
export const mmapCheck: Handler = (k, _t, a) => {
  if ((a[3] & MAP_FIXED) === 0n || !touchesStub(k, a[0], a[1])) return 'pass';
  if (!pageAligned(a[0])) return err(ERRNO.EINVAL);
  return err(ERRNO.ENOMEM);
};

/**
 * munmap: unmapping addresses where nothing of the program's is mapped succeeds natively, so
 * the parts outside the region are unmapped and the call succeeds (an address or length the
 * kernel refuses keeps its EINVAL).
 */
export const munmapCheck: Handler = (k, _t, a) => {
  const [addr, len] = [BigInt.asUintN(64, a[0]), BigInt.asUintN(64, a[1])];
  if (!touchesStub(k, addr, len)) return 'pass';
  if (!pageAligned(addr) || addr + len >= 1n << 64n) return err(ERRNO.EINVAL);
  const below: Substitute | undefined = addr < k.region.start ? { sysno: SYS.munmap, args: [addr, k.region.start - addr] } : undefined;
  const end = pageUp(addr + len);
  const above: Substitute | undefined = end > k.region.end ? { sysno: SYS.munmap, args: [k.region.end, end - k.region.end] } : undefined;
  if (below) return { ...below, onDone: (ret) => (ret === 0n && above ? above : ret) };
  return above ?? 0n;
};

/** mprotect, pkey_mprotect, madvise: pages the program does not have are ENOMEM. */
export const rangeCheck: Handler = (k, _t, a) => {
  if (!touchesStub(k, a[0], a[1])) return 'pass';
  return pageAligned(a[0]) ? err(ERRNO.ENOMEM) : err(ERRNO.EINVAL);
};

/** mremap: an old range in the region is EFAULT (not the program's); a new one there ENOMEM. */
export const mremap: Handler = (k, _t, a) => {
  // An old size of 0 duplicates a shared mapping at that address: still a page of the region.
  if (touchesStub(k, a[0], a[1] === 0n ? 1n : a[1])) return pageAligned(a[0]) ? err(ERRNO.EFAULT) : err(ERRNO.EINVAL);
  if ((a[3] & MREMAP_FIXED) !== 0n && touchesStub(k, a[4], a[2])) return err(ERRNO.ENOMEM);
  return 'pass';
};
