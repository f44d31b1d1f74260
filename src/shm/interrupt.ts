import { SIG } from '../abi/linux.js';
import { native } from '../native.js';
/**
 * SIGCHLD to sysmsg thread `tid`: a thread of the stub (made by its loop), or, made by a ptrace
 * transaction, a process of its own. Gone: the doorbell wait notices the stub's death.
 *
 * @example
 * ```ts
 * interruptThread(stub.pid, tid);
 * ```
 */
export function interruptThread(stubPid: number, tid: number): void {
  for (const tgid of [stubPid, tid]) {
    try {
      native.tgkill(tgid, tid, SIG.SIGCHLD);
      return;
    } catch {
      // not in that thread group (ESRCH): the other, or gone
    }
  }
}
