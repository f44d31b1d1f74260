import { existsSync } from 'node:fs';
import { ERRNO } from '../../abi/linux.js';
import { SYS } from '../../abi/syscalls.js';
import type { Handler, Outcome, SyscallKernel } from './context.js';
import type { Task } from '../kernel/task.js';

/** getpriority/setpriority's `which` for a process, ioprio's for one. */
const PRIO_PROCESS = 0n;
const IOPRIO_WHO_PROCESS = 1n;

/**
 * The pid the kernel knows for a pid or tid the program names (gVisor resolves them in its own
 * PID namespace): a process of the tree is its stub (the same number, in the tree's namespace);
 * a thread is multiplexed over stub threads and has no host tid, so the calling thread itself
 * stands for it (0: the stub thread running the call), and another thread of the tree stands
 * for its process. Anything else is the kernel's to judge (in a sandbox, ESRCH). `processOnly`:
 * calls where 0 does not mean the caller (pidfd_open, process_vm_*): the caller's own tid
 * stands for its process too (the stub, which shares its memory).
 */
function hostPidFor(k: SyscallKernel, t: Task, pid: bigint, processOnly = false): bigint {
  const n = Number(BigInt.asIntN(32, pid));
  if (n <= 0) return pid;
  if (n === t.tid && !processOnly) return 0n;
  const th = k.tree.table.thread(n);
  if (th) return BigInt(th.process.tgid);
  return pid;
}

/**
 * True for a thread of Node's own process (the sentry runs in it: /proc/self/task). Outside a
 * sandbox they share the host's pid space with the program, and the filter names only Node's
 * pid: its threads' ids must be refused here (a signal to one is a signal to Node).
 */
export function isNodeThread(k: Pick<SyscallKernel, 'tree'>, pid: number): boolean {
  return !k.tree.sandboxed && pid > 0 && existsSync(`/proc/self/task/${pid}`);
}

/** The call with argument `i` (a pid or tid) translated (see hostPidFor); Node's threads are EPERM. */
function translated(k: SyscallKernel, t: Task, sysno: number, a: bigint[], i: number): Outcome {
  const pid = hostPidFor(k, t, a[i], PROCESS_ONLY.has(sysno));
  if (pid === a[i] && isNodeThread(k, Number(BigInt.asIntN(32, pid)))) return -BigInt(ERRNO.EPERM);
  if (pid === a[i]) return 'pass';
  const args = [...a];
  args[i] = pid;
  return { sysno, args };
}

/**
 * Calls that take a pid or tid of the program (sched_*affinity, sched_*param/scheduler/attr,
 * get/setpriority, ioprio_*, prlimit64, process_vm_*, pidfd_open): the tids the sentry hands out
 * mean something to the kernel only through hostPidFor. The JVM asks sched_getaffinity of its
 * own threads' tids and aborts on ESRCH.
 *
 * @example
 * ```ts
 * PID_ARG_CALLS[SYS.sched_getaffinity](kernel, task, [BigInt(task.tid), 128n, mask]); // the call with pid 0
 * ```
 */
export const PID_ARG_CALLS: Partial<Record<number, Handler>> = {};
/** Calls whose pid 0 is no process at all (see hostPidFor). */
const PROCESS_ONLY: ReadonlySet<number> = new Set([SYS.pidfd_open, SYS.process_vm_readv, SYS.process_vm_writev]);
for (const sysno of [
  SYS.sched_setaffinity, SYS.sched_getaffinity, SYS.sched_setparam, SYS.sched_getparam, SYS.sched_setscheduler,
  SYS.sched_getscheduler, SYS.sched_rr_get_interval, SYS.sched_setattr, SYS.sched_getattr, SYS.prlimit64,
  SYS.process_vm_readv, SYS.process_vm_writev, SYS.pidfd_open,
]) {
  PID_ARG_CALLS[sysno] = (k, t, a) => translated(k, t, sysno, a, 0);
}
for (const [sysno, who] of [[SYS.getpriority, PRIO_PROCESS], [SYS.setpriority, PRIO_PROCESS], [SYS.ioprio_get, IOPRIO_WHO_PROCESS], [SYS.ioprio_set, IOPRIO_WHO_PROCESS]] as const) {
  PID_ARG_CALLS[sysno] = (k, t, a) => (a[0] === who ? translated(k, t, sysno, a, 1) : 'pass');
}
