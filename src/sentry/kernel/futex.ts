import type { Task } from './task.js';
import { FUTEX } from '../../abi/linux.js';

/** What FutexTable.wake needs of the kernel: the woken task's own process wakes it. */
interface Waker {
  wakeTask(t: Task, ret: bigint): void;
}

/**
 * Which futex a word is (Linux's futex_key): a private futex, or a shared one on private
 * memory, is the process's address (`PID:ADDR`); a shared one on a shared mapping is the file
 * page under it (`DEV:INODE:OFFSET`), the same in every process that maps it.
 */
export type FutexKey = string;

/** No task (what expired() answers while nobody waits). */
const NONE: readonly Task[] = Object.freeze([]);

/**
 * Futex waiters of one program tree, emulated in the sentry (gVisor's kernel/futex): a waiting
 * thread holds no sysmsg thread, so any number of threads may sleep in futex waits without
 * starving the others. Correct without atomics because every futex call of the program traps
 * here and the sentry handles traps one at a time: a waker's store precedes its FUTEX_WAKE, so
 * a wait handled after the wake sees the new value and fails with EAGAIN. Keys are Linux's
 * (see FutexKey), so processes sharing memory (multiprocessing's semaphores) wake each other.
 *
 * @example
 * ```ts
 * futexes.wait(t, `${pid}:${addr}`, FUTEX.BITSET_MATCH_ANY);
 * futexes.wake(tree, `${pid}:${addr}`, 1, FUTEX.BITSET_MATCH_ANY); // tree.wakeTask(t, 0n)
 * ```
 */
export class FutexTable {
  readonly #waiters = new Map<FutexKey, Task[]>();

  /** Parks `t` on `key`. Precondition: the caller checked the futex word. */
  wait(t: Task, key: FutexKey, bitset: number, deadline?: number): void {
    t.futex = { key, bitset, deadline };
    const q = this.#waiters.get(key);
    if (q) q.push(t);
    else this.#waiters.set(key, [t]);
  }

  /**
   * Wakes up to `n` waiters on `key` whose bitset meets `bitset`; returns how many. They leave
   * the table now; each is woken in its own process's turn (see Waker).
   */
  wake(w: Waker, key: FutexKey, n: number, bitset: number): number {
    const q = this.#waiters.get(key);
    if (!q) return 0;
    let woken = 0;
    for (const t of [...q]) {
      if (woken >= n) break;
      if ((t.futex!.bitset & bitset) === 0) continue;
      this.remove(t);
      w.wakeTask(t, 0n);
      woken++;
    }
    return woken;
  }

  /** Wakes up to `nWake` on `key`, moves up to `nMove` of the rest to `key2`; returns both counts. */
  requeue(w: Waker, key: FutexKey, key2: FutexKey, nWake: number, nMove: number): { woken: number; moved: number } {
    const woken = this.wake(w, key, nWake, FUTEX.BITSET_MATCH_ANY);
    const q = this.#waiters.get(key) ?? [];
    let moved = 0;
    while (q.length > 0 && moved < nMove) {
      const t = q.shift()!;
      this.wait(t, key2, t.futex!.bitset, t.futex!.deadline);
      moved++;
    }
    if (q.length === 0) this.#waiters.delete(key);
    return { woken, moved };
  }

  /** Forgets `t` (woken, exited, interrupted). */
  remove(t: Task): void {
    if (!t.futex) return;
    const q = this.#waiters.get(t.futex.key);
    if (q) {
      const i = q.indexOf(t);
      if (i >= 0) q.splice(i, 1);
      if (q.length === 0) this.#waiters.delete(t.futex.key);
    }
    t.futex = undefined;
  }

  /** The earliest timeout (performance.now() time), Infinity if none. */
  nextDeadline(): number {
    let d = Infinity;
    for (const q of this.#waiters.values()) for (const t of q) if (t.futex!.deadline !== undefined && t.futex!.deadline < d) d = t.futex!.deadline;
    return d;
  }

  /** Waiters whose timeout has passed. */
  expired(now: number): readonly Task[] {
    if (this.#waiters.size === 0) return NONE; // every turn: nothing made while no futex waits
    const out: Task[] = [];
    for (const q of this.#waiters.values()) for (const t of q) if (t.futex!.deadline !== undefined && t.futex!.deadline <= now) out.push(t);
    return out;
  }
}
