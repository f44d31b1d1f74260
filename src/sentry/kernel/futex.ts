import type { Task } from './task.js';
import { FUTEX } from '../../abi/linux.js';

/** What FutexTable.wake needs of the kernel. */
interface Waker {
  wake(t: Task, ret: bigint): void;
}

/**
 * Futex waiters of one program, emulated in the sentry (gVisor's kernel/futex): a waiting
 * thread holds no sysmsg thread, so any number of threads may sleep in futex waits without
 * starving the others. Correct without atomics because every futex call of the program traps
 * here and the sentry handles traps one at a time: a waker's store precedes its FUTEX_WAKE, so
 * a wait handled after the wake sees the new value and fails with EAGAIN.
 *
 * @example
 * ```ts
 * futexes.wait(t, addr, FUTEX.BITSET_MATCH_ANY);
 * futexes.wake(kernel, addr, 1, FUTEX.BITSET_MATCH_ANY); // kernel.wake(t, 0n)
 * ```
 */
export class FutexTable {
  readonly #waiters = new Map<bigint, Task[]>();

  /** Parks `t` on `addr`. Precondition: the caller checked the futex word. */
  wait(t: Task, addr: bigint, bitset: number, deadline?: number): void {
    t.futex = { addr, bitset, deadline };
    const q = this.#waiters.get(addr);
    if (q) q.push(t);
    else this.#waiters.set(addr, [t]);
  }

  /** Wakes up to `n` waiters on `addr` whose bitset meets `bitset`; returns how many. */
  wake(k: Waker, addr: bigint, n: number, bitset: number): number {
    const q = this.#waiters.get(addr);
    if (!q) return 0;
    let woken = 0;
    for (const t of [...q]) {
      if (woken >= n) break;
      if ((t.futex!.bitset & bitset) === 0) continue;
      k.wake(t, 0n);
      woken++;
    }
    return woken;
  }

  /** Wakes up to `nWake` on `addr`, moves up to `nMove` of the rest to `addr2`; returns both counts. */
  requeue(k: Waker, addr: bigint, addr2: bigint, nWake: number, nMove: number): { woken: number; moved: number } {
    const woken = this.wake(k, addr, nWake, FUTEX.BITSET_MATCH_ANY);
    const q = this.#waiters.get(addr) ?? [];
    let moved = 0;
    while (q.length > 0 && moved < nMove) {
      const t = q.shift()!;
      this.wait(t, addr2, t.futex!.bitset, t.futex!.deadline);
      moved++;
    }
    if (q.length === 0) this.#waiters.delete(addr);
    return { woken, moved };
  }

  /** Forgets `t` (woken, exited, interrupted). */
  remove(t: Task): void {
    if (!t.futex) return;
    const q = this.#waiters.get(t.futex.addr);
    if (q) {
      const i = q.indexOf(t);
      if (i >= 0) q.splice(i, 1);
      if (q.length === 0) this.#waiters.delete(t.futex.addr);
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
  expired(now: number): Task[] {
    const out: Task[] = [];
    for (const q of this.#waiters.values()) for (const t of q) if (t.futex!.deadline !== undefined && t.futex!.deadline <= now) out.push(t);
    return out;
  }
}
