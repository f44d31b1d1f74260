import { native } from '../native.js';
import { WNOHANG, __WALL } from '../abi/ptrace.js';

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
  const reap = () => {
    try {
      native.wait4(pid, WNOHANG | __WALL);
    } catch {
      // ECHILD: not ours to reap, or reaped already
    }
  };
  try {
    const watch = new native.ExitWatch(pid, () => {
      reap();
      watch.close();
    });
  } catch {
    reap(); // already gone (pidfd_open failed): a zombie or reaped
  }
}
