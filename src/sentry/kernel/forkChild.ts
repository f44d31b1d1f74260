import type { Task } from './task.js';
import type { ThreadGroup } from './threadGroup.js';
import type { ForkOptions } from './process.js';

/**
 * A fork child made from its parent `p` as fork, vfork or clone (not CLONE_THREAD) leaves it
 * (Linux's copy_process, the sentry's part: the kernel copied the memory, the stub's fork made
 * the rest): its break, patching table, process group, session, exit signal and signal actions
 * are the parent's; its one thread is a copy of `t` returning 0, on clone's stack and TLS if
 * given; the tid words clone was asked to write are written; the parent's `t` gets the child's
 * pid now, or (CLONE_VFORK) once the child execs or ends. `pidfd`: CLONE_PIDFD's fd in the parent.
 * Precondition: `child` was just adopted; `t` is parked in the fork.
 *
 * @example
 * ```ts
 * setUpForkChild(p, child, t, options, r.pidfd);
 * ```
 */
export function setUpForkChild(p: ThreadGroup, child: ThreadGroup, t: Task, o: ForkOptions, pidfd: number | undefined): void {
  child.brk = p.brk;
  child.usertrap = p.usertrap?.fork(); // the kernel copied the table and the patched code
  child.pgid = p.pgid;
  child.sid = p.sid;
  child.exitSignal = o.exitSignal;
  child.signals.forkFrom(p.signals);
  const ct = child.adoptForkedThread(t);
  ct.setReg('rax', 0n);
  if (o.stack !== 0n) ct.setReg('rsp', o.stack);
  if (o.tls !== undefined) ct.setReg('fs_base', o.tls);
  if (o.childClearTid !== undefined) ct.clearChildTid = o.childClearTid;
  if (o.childSetTid !== undefined) child.mem.writeU32(o.childSetTid, child.tgid);
  if (o.parentSetTid !== undefined) p.mem.writeU32(o.parentSetTid, child.tgid);
  if (o.pidfdAt !== undefined) p.mem.writeU32(o.pidfdAt, pidfd ?? -1);
  if (o.vfork) child.vforkParent = t;
  else p.defer(() => p.wake(t, BigInt(child.tgid)));
}
