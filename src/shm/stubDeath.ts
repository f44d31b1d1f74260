import { native } from '../native.js';

/**
 * True when the stub `pid` has exited (a zombie not yet reaped) or is already reaped.
 * A stub's death never rings a doorbell: waiters on one call this when their sleep times out.
 * Precondition: `pid` is a child of this process, or a stub registered with `native.trackExit`
 * (a sandboxed stub, its sandbox init's child), so the answer cannot be about a recycled pid of
 * someone else's.
 *
 * @example
 * ```ts
 * if (q.waitDoorbell(seen, BUDGETS.doorbellSleepMs) === 'timeout' && stubGone(pid)) throw Errors.StubDead(pid, 'while waiting');
 * ```
 */
export function stubGone(pid: number): boolean {
  return native.processExited(pid);
}
