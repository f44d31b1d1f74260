import type { ContextQueue } from './contextQueue.js';
import { spinUntil } from './budgets.js';

/** How a {@link waitForTrap} ended. */
export type TrapWait = 'ready' | 'interrupted' | 'timeout';

/** What {@link waitForTrap} waits for, and how long it may spin and sleep. */
export interface TrapWaitOptions {
  /** The condition waited for (a context's state left None, the doorbell moved, …). */
  ready(): boolean;
  /** Something else needs the waiter (mail from the main thread): stop waiting at once. */
  interrupted?(): boolean;
  /** Spin budget before sleeping (BUDGETS.workerSpinNs). */
  spinNs: number;
  /** Longest sleep on the doorbell. */
  sleepMs: number;
  /** Called just before the thread sleeps (flush buffered output, …). */
  beforeSleep?(): void;
}

/**
 * The spin-then-doorbell wait of a worker thread (runner or sentry) for a stub's trap: spin
 * while a trap is likely soon, then sleep on the stub's doorbell once. Returns when `ready()`
 * holds, when `interrupted()` does, or after one sleep (`timeout`: the caller looks at its
 * timers and at the stub's life, whose death rings no doorbell).
 *
 * Ordering: the doorbell is read *before* the last look at `ready()`, so a trap published in
 * between moves it and the sleep returns at once: no trap is slept through.
 * Precondition: a worker thread (it blocks), never the event loop.
 *
 * @example
 * ```ts
 * const r = waitForTrap(q, { ready: () => Atomics.load(u32, STATE) !== 0, spinNs: BUDGETS.workerSpinNs, sleepMs: BUDGETS.doorbellSleepMs });
 * if (r === 'timeout' && stubGone(pid)) throw Errors.StubDead(pid, 'while it ran');
 * ```
 */
export function waitForTrap(q: ContextQueue, w: TrapWaitOptions): TrapWait {
  const interrupted = w.interrupted;
  let stop = false;
  const done = interrupted ? () => w.ready() || (stop = interrupted()) : w.ready;
  if (spinUntil(done, w.spinNs)) return stop ? 'interrupted' : 'ready';
  const seen = q.published;
  if (w.ready()) return 'ready';
  if (interrupted?.()) return 'interrupted';
  w.beforeSleep?.();
  q.waitDoorbell(seen, w.sleepMs);
  if (w.ready()) return 'ready';
  return interrupted?.() ? 'interrupted' : 'timeout';
}
