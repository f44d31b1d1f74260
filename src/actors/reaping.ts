import { native } from '../native.js';
import { WNOHANG, __WALL } from '../abi/ptrace.js';

/**
 * Runs `then` once `pid` has exited, watched through a pidfd on the event loop (never blocks),
 * or at once when it is gone already (pidfd_open failed: a zombie or reaped).
 */
function whenGone(pid: number, then: () => void): void {
  try {
    const watch = new native.ExitWatch(pid, () => {
      then();
      watch.close();
    });
  } catch {
    then();
  }
}

/**
 * Reaps `pid` once it has exited, if it is Node's child (a stub outside a sandbox, or an orphan
 * reparented to Node as PID 1 or subreaper); when it is not, wait4 says ECHILD and nothing is
 * left to do. Never blocks: the exit is watched through a pidfd on the event loop.
 *
 * @example
 * ```ts
 * native.kill(pid, SIG.SIGKILL);
 * reapWhenGone(pid); // no zombie left for init
 * ```
 */
export function reapWhenGone(pid: number): void {
  whenGone(pid, () => {
    try {
      native.wait4(pid, WNOHANG | __WALL);
    } catch {
      // ECHILD: not ours to reap, or reaped already
    }
  });
}

/**
 * Forgets `pid` in the liveness registry (native.trackExit: a sandboxed stub's pidfd) once it
 * has exited: a stub killed before any actor took it over (a fork child lost while it was being
 * made) has no actor to do it when reaped, and its pidfd stayed open until Node exited.
 *
 * @example
 * ```ts
 * native.kill(pid, SIG.SIGKILL);
 * untrackWhenGone(pid); // the sandbox's init reaps it; its pidfd is closed
 * ```
 */
export function untrackWhenGone(pid: number): void {
  whenGone(pid, () => native.untrackExit(pid));
}
