import { availableParallelism } from 'node:os';
import { abi } from '../abi/stub.js';

/**
 * Whether another CPU can run the other side while one side spins. On one CPU every spin only
 * delays the party it waits for, so every spin budget below is 0 there.
 */
export const MULTI_CPU = availableParallelism() > 1;

/**
 * Every spin and preemption budget of the shared-memory protocols, in one place, with the reason
 * for its value. Spinning trades a core for latency: a futex wake-up across CPUs costs tens of
 * microseconds in the VMs this runs on, a spinning waiter sees the word change in about one.
 * Budgets in the stub's C code (TSC cycles) are listed here for reference; they live in
 * native/stub/stub_abi.h because the stub cannot read JS.
 *
 * @example
 * ```ts
 * import { BUDGETS } from './budgets.js';
 * if (!spinUntil(trapped, BUDGETS.switchSpinNs)) await waitOffThread();
 * ```
 */
export const BUDGETS = {
  /**
   * `as.syscall` spins this long on the event loop thread for the syscall thread's reply
   * before the wait moves to libuv's pool: long enough for a stub that spins too (its loop
   * spins SYSMSG_SPIN_CYCLES, ~20 µs) to answer, short enough never to stall the event loop.
   */
  syscallThreadSpinNs: MULTI_CPU ? 20_000 : 0,
  /**
   * `switchToApp` spins this long on the event loop thread for the trap before one wait per
   * stub takes over on libuv's pool: the same bound as above, for the same reason.
   */
  switchSpinNs: MULTI_CPU ? 20_000 : 0,
  /**
   * Runner and sentry workers spin this long for a trap before they sleep on the doorbell.
   * Longer than on the event loop: the worker has nothing else to do, and it must outlast a stub
   * thread's wake-up (tens of µs across CPUs in a VM) for both sides to stay on the fast path.
   */
  workerSpinNs: MULTI_CPU ? 300_000 : 0,
  /**
   * A context that has run this long while others wait in its stub's queue is interrupted and
   * requeued (gVisor's value): the wait on the doorbell wakes at least this often to check.
   */
  preemptMs: 10,
  /**
   * Longest sleep of a worker on a stub's doorbell before it looks again (timers, a stub that
   * died without a trap: its death never rings the doorbell).
   */
  doorbellSleepMs: 20,
  /**
   * The syscall thread's loop in the stub spins this many TSC cycles (~20 µs) for the next
   * request before it futex-sleeps (written into its message page; 0 on one CPU).
   */
  stubSyscallSpinCycles: MULTI_CPU ? abi.SYSMSG_SPIN_CYCLES : 0,
  /**
   * The same spin while the sentry holds the loop for a burst of requests (an execve's load:
   * five or so, with ~50 µs of the sentry's own work between them): long enough to bridge that
   * work, so that each request finds the loop awake (a futex wake-up and the stub thread's trip
   * back onto a CPU cost 50-90 µs each here). Back to the default as the sentry lets go.
   */
  stubSyscallBurstSpinCycles: MULTI_CPU ? 10 * abi.SYSMSG_SPIN_CYCLES : 0,
  /**
   * A sysmsg thread spins this many TSC cycles for a context in the queue, or for the sentry's
   * direct resume of the context it published, before it sleeps. A compile-time constant of
   * the stub (QUEUE_SPIN_CYCLES, 50,000 cycles, ~20 µs); the queue's fastPathDisabled word turns
   * the spinning off on one CPU (see ContextQueue).
   */
  stubQueueSpinsOnThisMachine: MULTI_CPU,
} as const;

/**
 * Polls `cond()` for up to `ns` nanoseconds; true as soon as it holds. The clock is read once
 * per 64 looks: reading it costs more than a look.
 *
 * @example
 * ```ts
 * if (!spinUntil(() => Atomics.load(u32, i) !== 0, BUDGETS.switchSpinNs)) sleep();
 * ```
 */
export function spinUntil(cond: () => boolean, ns: number): boolean {
  if (cond()) return true;
  if (ns <= 0) return false;
  const end = performance.now() + ns / 1e6;
  for (;;) {
    for (let i = 0; i < 64; i++) if (cond()) return true;
    if (performance.now() >= end) return cond();
  }
}
