import { ERRNO } from '../../abi/linux.js';
import type { Task } from './task.js';

/**
 * The ends of waits in the sentry other than their own events: timeouts (futex, nanosleep,
 * rt_sigtimedwait) and signals for rt_sigtimedwait. What they use of a process:
 */
interface WaitsHost {
  signals: { dequeue(t: Task, set: bigint): { signo: number; info: Uint8Array } | undefined };
  mem: { write(addr: bigint, data: Uint8Array): boolean };
  futexes: { expired(now: number): readonly Task[] };
  task(tid: number): Task | undefined;
  liveTasks(): Iterable<Task>;
  /** Ends a park with `ret` as the result of the call it sleeps in. */
  wake(t: Task, ret: bigint): void;
}

/**
 * Wakes the tasks whose wait timed out by `now` (performance.now() time): a futex wait with
 * ETIMEDOUT, a nanosleep with 0, rt_sigtimedwait with EAGAIN. True if it woke one.
 *
 * @example
 * ```ts
 * busy = wakeExpired(group, performance.now()) || busy;
 * ```
 */
export function wakeExpired(k: WaitsHost, now: number): boolean {
  let any = false;
  for (const t of k.futexes.expired(now)) {
    if (k.task(t.tid) !== t) continue; // a futex of the tree: another process's task
    k.wake(t, -BigInt(ERRNO.ETIMEDOUT));
    any = true;
  }
  for (const t of k.liveTasks()) {
    if (!t.sleep || t.sleep.deadline > now) continue;
    k.wake(t, t.sigwait ? -BigInt(ERRNO.EAGAIN) : 0n);
    any = true;
  }
  return any;
}

/**
 * A signal came for `t`, parked in rt_sigtimedwait (Task.sigwait): what the call returns. One of
 * the signals it waits for is taken (its number, its siginfo written out: EFAULT when that
 * fails, the signal taken all the same, as Linux's); any other interrupts the wait (EINTR) and
 * is delivered as the call returns. Precondition: `t.sigwait` is set; the caller wakes `t`.
 *
 * @example
 * ```ts
 * if (t.sigwait) group.wake(t, takeWaited(group, t));
 * ```
 */
export function takeWaited(k: Pick<WaitsHost, 'signals' | 'mem'>, t: Task): bigint {
  const w = t.sigwait!;
  const got = k.signals.dequeue(t, w.set);
  if (!got) return -BigInt(ERRNO.EINTR);
  return w.info !== 0n && !k.mem.write(w.info, got.info) ? -BigInt(ERRNO.EFAULT) : BigInt(got.signo);
}

/**
 * The end of a wait in rt_sigtimedwait, however it ended: the caller's own mask again (the
 * waited signals were unblocked meanwhile), before any signal is delivered.
 *
 * @example
 * ```ts
 * endSigwait(t); // in ThreadGroup.wake, before the call's result goes back
 * ```
 */
export function endSigwait(t: Task): void {
  if (!t.sigwait) return;
  t.sigmask = t.sigwait.mask;
  t.sigwait = undefined;
}

/**
 * Writes a struct timespec of `ms` milliseconds (best effort: a bad pointer is the program's):
 * what an interrupted nanosleep leaves in its `rem`.
 *
 * @example
 * ```ts
 * writeTimespec(group.mem, remAddr, 1500); // {tv_sec=1, tv_nsec=500000000}
 * ```
 */
export function writeTimespec(mem: { write(addr: bigint, data: Uint8Array): boolean }, addr: bigint, ms: number): void {
  const b = new Uint8Array(16);
  const dv = new DataView(b.buffer);
  dv.setBigInt64(0, BigInt(Math.floor(ms / 1000)), true);
  dv.setBigInt64(8, BigInt(Math.floor((ms % 1000) * 1e6)), true);
  mem.write(addr, b);
}
