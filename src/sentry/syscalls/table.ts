import { getrusage, times } from './sys_usage.js';
import { ERRNO } from '../../abi/linux.js';
import { SYS } from '../../abi/syscalls.js';
import type { Task } from '../kernel/task.js';
import type { Handler, Outcome, SyscallKernel } from './context.js';
import { getpid, getppid, gettid } from './sys_identity.js';
import { archPrctl, exit, exitGroup, failsWith, setRobustList, setTidAddress } from './sys_thread.js';
import { PID_ARG_CALLS } from './sys_pidargs.js';
import { ATTR_CALLS } from './sys_attrs.js';
import { clone, fork, getpgid, getpgrp, getsid, prctl, setpgid, setsid, vfork, wait4, waitid } from './sys_process.js';
import { futex } from './sys_futex.js';
import { kill, pause, rtSigaction, rtSigpending, rtSigprocmask, rtSigreturn, rtSigqueueinfo, rtSigsuspend, rtSigtimedwait, rtTgsigqueueinfo, sigaltstack, tgkillCall, tkillCall } from './sys_signal.js';
import { execve } from './sys_exec.js';
import { ioctl, readTerminal } from './sys_tty.js';
import { brk, mmapCheck, mremap, munmapCheck, rangeCheck } from './sys_mm.js';
import { clockGettime, clockNanosleep, nanosleep } from './sys_time.js';
import { alarm, getitimer, setitimer, timerCreate, timerDelete, timerGetoverrun, timerGettime, timerSettime } from './sys_timer.js';
import { closeRange, readlinkCall, readlinkatCall } from './sys_file.js';
import { signalfd4, signalfdCall } from './sys_signalfd.js';
import { MASKED_WAITS, maskedWait } from './sys_poll.js';

/**
 * The syscall table of the sentry (gVisor's linux64 table, for the calls it handles itself):
 * every call the program's filter traps that is not simply passed through. A call with no
 * entry passes to the kernel through the gadget.
 */
const HANDLERS: Partial<Record<number, Handler>> = {
  // identity
  [SYS.getpid]: getpid,
  [SYS.getppid]: getppid,
  [SYS.gettid]: gettid,
  // threads and TLS
  [SYS.clone]: clone,
  [SYS.exit]: exit,
  [SYS.exit_group]: exitGroup,
  [SYS.set_tid_address]: setTidAddress,
  [SYS.set_robust_list]: setRobustList,
  [SYS.get_robust_list]: failsWith(ERRNO.ENOSYS),
  [SYS.rseq]: failsWith(ERRNO.ENOSYS),
  [SYS.arch_prctl]: archPrctl,
  // processes (glibc falls back from clone3 to clone)
  [SYS.clone3]: failsWith(ERRNO.ENOSYS),
  [SYS.fork]: fork,
  [SYS.vfork]: vfork,
  [SYS.wait4]: wait4,
  [SYS.waitid]: waitid,
  [SYS.getpgid]: getpgid,
  [SYS.getpgrp]: getpgrp,
  [SYS.setpgid]: setpgid,
  [SYS.getsid]: getsid,
  [SYS.setsid]: setsid,
  [SYS.prctl]: prctl,
  [SYS.ioctl]: ioctl,
  [SYS.read]: readTerminal,
  [SYS.execve]: execve,
  [SYS.execveat]: failsWith(ERRNO.ENOSYS),
  // memory
  [SYS.brk]: brk,
  [SYS.mmap]: mmapCheck,
  [SYS.munmap]: munmapCheck,
  [SYS.mprotect]: rangeCheck,
  [SYS.madvise]: rangeCheck,
  [SYS.pkey_mprotect]: rangeCheck,
  [SYS.mremap]: mremap,
  // futexes and sleeps: in the sentry, holding no stub thread
  [SYS.futex]: futex,
  [SYS.nanosleep]: nanosleep,
  [SYS.clock_nanosleep]: clockNanosleep,
  [SYS.clock_gettime]: clockGettime,
  // timers: the process's, kept by the sentry (see ProcessTimers)
  [SYS.alarm]: alarm,
  [SYS.getitimer]: getitimer,
  [SYS.setitimer]: setitimer,
  [SYS.timer_create]: timerCreate,
  [SYS.timer_settime]: timerSettime,
  [SYS.timer_gettime]: timerGettime,
  [SYS.timer_getoverrun]: timerGetoverrun,
  [SYS.timer_delete]: timerDelete,
  // signals
  [SYS.rt_sigaction]: rtSigaction,
  [SYS.rt_sigprocmask]: rtSigprocmask,
  [SYS.rt_sigreturn]: rtSigreturn,
  [SYS.sigaltstack]: sigaltstack,
  [SYS.rt_sigsuspend]: rtSigsuspend,
  [SYS.pause]: pause,
  [SYS.rt_sigpending]: rtSigpending,
  [SYS.rt_sigtimedwait]: rtSigtimedwait,
  [SYS.getrusage]: getrusage,
  [SYS.times]: times,
  [SYS.rt_sigqueueinfo]: rtSigqueueinfo,
  [SYS.rt_tgsigqueueinfo]: rtTgsigqueueinfo,
  // waits with a signal mask of their own
  ...Object.fromEntries(Object.keys(MASKED_WAITS).map((n) => [n, maskedWait(Number(n))])),
  [SYS.signalfd]: signalfdCall,
  [SYS.signalfd4]: signalfd4,
  [SYS.kill]: kill,
  [SYS.tkill]: tkillCall,
  [SYS.tgkill]: tgkillCall,
  // files the stub holds or that name it
  [SYS.close_range]: closeRange,
  [SYS.readlink]: readlinkCall,
  [SYS.readlinkat]: readlinkatCall,
  // never for the program
  [SYS.seccomp]: failsWith(ERRNO.EINVAL),
  [SYS.ptrace]: failsWith(ERRNO.EPERM),
  // pids and tids of the program, as the kernel knows them
  ...PID_ARG_CALLS,
  // credentials, limits, nice, affinity: alike on every stub thread (see TaskAttrs)
  ...ATTR_CALLS,
};

/**
 * Handles a syscall the filter trapped: the sentry's own calls are emulated, checked ones are
 * checked, and everything else (traced, injected-but-not-matching) passes through.
 *
 * @example
 * ```ts
 * const out = emulate(kernel, task, SYS.getpid, []); // BigInt(kernel.tgid)
 * ```
 */
export function emulate(k: SyscallKernel, t: Task, sysno: number, args: bigint[]): Outcome {
  const h = HANDLERS[sysno];
  return h ? h(k, t, args) : 'pass';
}
