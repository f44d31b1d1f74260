import type { ContextQueue } from './contextQueue.js';
import type { WatchedWord } from './watchedWord.js';

export type { WatchedWord };

/** What {@link waitForTrap} waits for, and how long it may spin and sleep. */
export interface TrapWaitOptions {
  /** The words that end the wait, in priority order. */
  readonly watch: readonly WatchedWord[];
  /** Spin budget before sleeping (BUDGETS.workerSpinNs). */
  spinNs: number;
  /** Longest sleep on the doorbell. */
  sleepMs: number;
  /** Called just before the thread sleeps (flush buffered output, …). */
  beforeSleep?(): void;
}

/** The index of the first watched word that changed, or -1. */
function changed(watch: readonly WatchedWord[]): number {
  for (let k = 0; k < watch.length; k++) {
    const w = watch[k];
    if (Atomics.load(w.words, w.index) !== w.value) return k;
  }
  return -1;
}

/**
 * The spin-then-doorbell wait of a worker thread (runner or sentry) for a stub's trap: spin
 * while a trap is likely soon, then sleep on the stub's doorbell once. Returns the index of the
 * watched word that changed, or -1 after one sleep without a change (the caller looks at its
 * timers and at the stub's life: a death rings no doorbell).
 *
 * The spin reads only the watched words (one Atomics.load each) and the clock once per 64
 * rounds: reading the clock costs more than a look. The doorbell is read *before* the last look,
 * so a trap published in between moves it and the sleep returns at once: no trap is slept
 * through. Precondition: a worker thread (it blocks), never the event loop.
 *
 * @example
 * ```ts
 * const state: WatchedWord = { words: slot, index: STATE, value: ContextState.None };
 * if (waitForTrap(q, { watch: [state], spinNs: BUDGETS.workerSpinNs, sleepMs: 20 }) < 0 && stubGone(pid)) return dead();
 * ```
 */
export function waitForTrap(q: ContextQueue, w: TrapWaitOptions): number {
  const watch = w.watch;
  let k = changed(watch);
  if (k >= 0 || w.spinNs <= 0) return k >= 0 ? k : sleep(q, w);
  const end = performance.now() + w.spinNs / 1e6;
  for (;;) {
    for (let i = 0; i < 64; i++) if ((k = changed(watch)) >= 0) return k;
    if (performance.now() >= end) return sleep(q, w);
  }
}

function sleep(q: ContextQueue, w: TrapWaitOptions): number {
  const seen = q.published;
  let k = changed(w.watch);
  if (k >= 0) return k;
  w.beforeSleep?.();
  q.waitDoorbell(seen, w.sleepMs);
  k = changed(w.watch);
  return k;
}
