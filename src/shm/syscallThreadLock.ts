import { abi } from '../abi/stub.js';
import type { SharedFile } from './sharedFile.js';

/** Who holds a stub's syscall thread (the SYSMSG_OWNER word). */
export const SyscallThreadOwner = {
  /** Nobody: the next request may be posted by either side. */
  None: 0,
  /** The main thread (the SyscallThread actor's queue). */
  Main: 1,
  /** A sentry worker (an execve it loads itself, see src/sentry/kernel/stubCalls.ts). */
  Sentry: 2,
} as const;
export type SyscallThreadOwner = (typeof SyscallThreadOwner)[keyof typeof SyscallThreadOwner];

/** Each of acquireAsync's waits on libuv's pool (it ends at once when the holder lets go). */
const ACQUIRE_SLICE_MS = 20;

/**
 * Mutual exclusion between Node's threads over one stub's syscall thread (its message serves
 * one request at a time, and a sequence such as a fork's request, reply and acknowledgement, or
 * an execve's unmap and load, must not interleave with another's). The main thread's
 * SyscallThread and a sentry worker both post requests; the word lives in the message's page 0,
 * which only Node writes (the stub maps it read-only and never reads these words), so a program
 * cannot take or drop it.
 *
 * The main thread never blocks: it tries, and when the sentry holds the thread it waits off
 * the event loop ({@link acquireAsync}) for the word to change. A sentry waits on its own
 * thread a bounded time ({@link acquireWithin}: the main thread's operations are short) and,
 * when the main thread still holds it, asks the main thread to do the work instead (the path
 * every request took before). Whoever lets go wakes the waiters counted in
 * SYSMSG_OWNER_WAITERS (the wake syscall only then).
 *
 * Protected by: the word itself (compare-and-exchange; sequentially consistent).
 *
 * @example
 * ```ts
 * const lock = new SyscallThreadLock(file, msg.range.start);
 * if (lock.acquireWithin(SyscallThreadOwner.Sentry, 2)) try { … } finally { lock.release(); }
 * ```
 */
export class SyscallThreadLock {
  readonly #words: Int32Array;

  /** `msgOffset`: the message's offset in `file` (its page 0 holds the words). */
  constructor(
    private readonly file: SharedFile,
    private readonly msgOffset: number,
  ) {
    this.#words = new Int32Array(file.buffer(msgOffset + abi.SYSMSG_OWNER, 8));
  }

  /** Who holds it now (a hint: it may change at once). */
  get owner(): number {
    return Atomics.load(this.#words, 0);
  }

  /** Takes it for `who` if nobody holds it; true when taken. Never blocks. */
  tryAcquire(who: SyscallThreadOwner): boolean {
    return Atomics.compareExchange(this.#words, 0, SyscallThreadOwner.None, who) === SyscallThreadOwner.None;
  }

  /**
   * Takes it for `who`, waiting on this thread at most `ms` while another holds it (a worker's
   * thread: never the event loop's); true when taken. The main thread holds it for one request
   * at a time, whose end it hears through its event loop: a short wait here usually spares
   * the round trip through the main thread that giving up would mean.
   */
  acquireWithin(who: SyscallThreadOwner, ms: number): boolean {
    if (this.tryAcquire(who)) return true;
    const end = performance.now() + ms;
    Atomics.add(this.#words, 1, 1); // counted: the holder's release wakes this thread
    try {
      for (;;) {
        const seen = Atomics.load(this.#words, 0);
        if (seen === SyscallThreadOwner.None) {
          if (this.tryAcquire(who)) return true;
          continue;
        }
        const left = end - performance.now();
        if (left <= 0) return false;
        this.file.futexWait(this.msgOffset + abi.SYSMSG_OWNER, seen, Math.max(1, Math.ceil(left)));
      }
    } finally {
      Atomics.sub(this.#words, 1, 1);
    }
  }

  /**
   * Takes it for `who`, waiting (on libuv's pool, never the calling thread) while another
   * holds it; rejects with ESTUBDEAD if the stub `pid` dies meanwhile.
   * Precondition: the caller does not hold it.
   */
  async acquireAsync(who: SyscallThreadOwner, pid: number): Promise<void> {
    while (!this.tryAcquire(who)) {
      const seen = this.owner;
      if (seen === SyscallThreadOwner.None) continue;
      // Counted by the wait itself, so that the holder's release wakes it. In slices: libuv's
      // pool is small and shared, and the holder (a sentry awaiting a slow stub) may need one
      // of its threads to finish and let go.
      await this.file.waitWordChange(this.msgOffset + abi.SYSMSG_OWNER, seen, pid, ACQUIRE_SLICE_MS, this.msgOffset + abi.SYSMSG_OWNER_WAITERS);
    }
  }

  /**
   * Frees it if `from` holds it (an owner that ended without letting go), waking whoever waits.
   * Precondition: `from` will never use it again.
   */
  reclaim(from: SyscallThreadOwner): void {
    if (Atomics.compareExchange(this.#words, 0, from, SyscallThreadOwner.None) === from) this.release();
  }

  /** Lets go, waking whoever waits. Precondition: the caller holds it. */
  release(): void {
    Atomics.store(this.#words, 0, SyscallThreadOwner.None);
    if (Atomics.load(this.#words, 1) !== 0) this.file.futexWake(this.msgOffset + abi.SYSMSG_OWNER, 1 << 30);
  }
}
