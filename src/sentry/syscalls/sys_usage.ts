import { ERRNO } from '../../abi/linux.js';
import { SYS } from '../../abi/syscalls.js';
import { NO_CPU, rusageBytes, stubCpuTime, tmsBytes } from '../kernel/cpuTime.js';
import { err, type Handler } from './context.js';

/** getrusage's `who` (an int: the register's upper half is not the program's). */
const RUSAGE_SELF = 0n;
const RUSAGE_CHILDREN = -1n;
const RUSAGE_THREAD = 1n;

/**
 * getrusage (gVisor's sys_rusage.go): the kernel would answer for the stub, whose children are
 * no program processes (they are the sentry's), so the sentry answers for the program's
 * process: RUSAGE_SELF its stub's and sysmsg threads' time (see stubCpuTime), RUSAGE_CHILDREN
 * what the children it waited for used (and theirs). RUSAGE_THREAD is the kernel's: the host
 * thread running the program's thread now.
 *
 * @example
 * ```ts
 * getrusage(kernel, task, [0xffffffffn, ruAddr]); // RUSAGE_CHILDREN: 0n, the children's times at ruAddr
 * ```
 */
export const getrusage: Handler = (k, _t, a) => {
  const who = BigInt.asIntN(32, a[0]);
  const ru = a[1];
  if (who === RUSAGE_THREAD) return 'pass';
  let used;
  if (who === RUSAGE_SELF) used = stubCpuTime(k.mem.pid);
  else if (who === RUSAGE_CHILDREN) used = k.self.childCpu ?? NO_CPU;
  else return err(ERRNO.EINVAL);
  return k.mem.write(ru, rusageBytes(used)) ? 0n : err(ERRNO.EFAULT);
};

/**
 * times: the kernel's answer (clock ticks since an arbitrary point, the same for every call)
 * with the program's times in the buffer instead of the sysmsg thread's (see getrusage).
 *
 * @example
 * ```ts
 * times(kernel, task, [tmsAddr]); // the call at the gadget, then the program's struct tms
 * ```
 */
export const times: Handler = (k, _t, a) => {
  const buf = a[0];
  if (buf === 0n) return 'pass';
  return {
    sysno: SYS.times,
    args: [buf],
    onDone: (ret) => (BigInt.asIntN(64, ret) < 0n || k.mem.write(buf, tmsBytes(stubCpuTime(k.mem.pid), k.self.childCpu ?? NO_CPU)) ? ret : err(ERRNO.EFAULT)),
  };
};
