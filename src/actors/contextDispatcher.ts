import type { ContextQueue } from '../shm/contextQueue.js';
import { BUDGETS } from '../shm/budgets.js';
import { Errors, toSystrapError } from '../errors.js';

/** A context of this stub whose switch waits for its trap. */
interface Waiter {
  /** True once the context's state left None (it trapped). */
  done(): boolean;
  resolve(): void;
  reject(e: unknown): void;
  /** When it started to run (performance.now()), for preemption. */
  since: number;
  /** Interrupts it to let others run; undefined for contexts that must not be preempted. */
  preempt?: () => void;
}

/**
 * The event loop's side of one stub's traps (gVisor's dispatcher role for switchToApp): one
 * wait on the stub's doorbell, off the event loop (libuv's pool), serves every context running
 * there, and preempts the longest-running one when others wait in the queue. One wait per stub,
 * not per context: the libuv pool is small and shared.
 *
 * @example
 * ```ts
 * await dispatcher.waitContext(ctx, () => Atomics.load(u32, STATE) !== 0, () => ctx.preempt());
 * ```
 */
export class ContextDispatcher {
  /** Contexts waiting for their trap, by key. Protected by: the event loop. */
  readonly #waiters = new Map<object, Waiter>();
  #dispatching = false;

  constructor(
    readonly pid: number,
    readonly queue: ContextQueue,
  ) {}

  /** Resolves once `done()` holds for the context `key` (its trap is published). */
  waitContext(key: object, done: () => boolean, preempt?: () => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#waiters.set(key, { done, resolve, reject, since: performance.now(), preempt });
      void this.#dispatch();
    });
  }

  /**
   * gVisor's preemption: a context that has run longer than BUDGETS.preemptMs while others wait
   * in the queue (every thread busy) is interrupted, so that it goes to the end of the queue.
   */
  #preemptLongest(): void {
    if (this.queue.waiting === 0) return;
    let oldest: Waiter | undefined;
    for (const w of this.#waiters.values()) if (w.preempt && (!oldest || w.since < oldest.since)) oldest = w;
    if (!oldest || performance.now() - oldest.since < BUDGETS.preemptMs) return;
    oldest.since = performance.now();
    oldest.preempt!();
  }

  #settleDone(): void {
    for (const [key, w] of this.#waiters) {
      if (!w.done()) continue;
      this.#waiters.delete(key);
      w.resolve();
    }
  }

  async #dispatch(): Promise<void> {
    if (this.#dispatching) return;
    this.#dispatching = true;
    try {
      while (this.#waiters.size > 0) {
        // Read the doorbell before looking: a trap published after the look moves it, and the
        // wait below then returns at once.
        const seen = this.queue.published;
        this.#settleDone();
        if (this.#waiters.size === 0) break;
        await this.queue.waitDoorbellAsync(seen, BUDGETS.preemptMs, this.pid);
        this.#preemptLongest();
      }
    } catch (e) {
      const err = toSystrapError(e);
      const out = err.code === 'ESTUBDEAD' ? Errors.StubDead(this.pid, 'while running a context') : err;
      for (const w of this.#waiters.values()) w.reject(out);
      this.#waiters.clear();
    } finally {
      this.#dispatching = false;
    }
  }
}
