import { abi } from '../../abi/stub.js';
import type { NativeMemoryFile } from '../../native.js';
import { SyscallThreadLock } from '../../shm/syscallThreadLock.js';

/** Each sleep of a blocking settle, between looks at the clock. */
const LOOK_MS = 5;

/**
 * The first sysmsg thread of a child the sentry forked itself (see localFork.ts): its request
 * posted in the child's message before the child ran, the loop held for the sentry until the
 * answer comes. Settled here, on the sentry's thread: the answer read (the new thread's tid, or
 * -errno), the loop let go of, the answer handed on (`answered`: to the main thread, whose
 * actors adopt the thread, see SysmsgThreads.adoptFirst). Why here and not on the main thread:
 * the child's execve, which the sentry makes itself, must have the loop, and the main thread may
 * hear of the child only later (see Mailbox.notice). Protected by: the worker's turn.
 *
 * @example
 * ```ts
 * child.firstThread = new PostedFirstThread(file, msgOffset, first.state, (ret) => post(ret));
 * child.firstThread.settle();   // each turn: at once if answered
 * child.firstThread.settle(20); // before the child's execve takes the loop
 * ```
 */
export class PostedFirstThread {
  #settled = false;

  constructor(
    private readonly file: NativeMemoryFile,
    private readonly msgOffset: number,
    private readonly state: number,
    private readonly answered: (ret: bigint) => void,
  ) {}

  /** Whether it is settled (answered, the loop let go of). */
  get settled(): boolean {
    return this.#settled;
  }

  /**
   * Settles it if the loop has answered, waiting up to `waitMs` on this thread for the answer
   * (0: only a look). A closed file (the child's memory let go of) settles nothing.
   */
  settle(waitMs = 0): void {
    if (this.#settled) return;
    let words: Uint32Array;
    try {
      words = new Uint32Array(this.file.buffer(this.msgOffset, abi.SYSMSG_SIZE));
    } catch {
      return;
    }
    const done = abi.SYSMSG_DONE / 4;
    const until = performance.now() + waitMs;
    for (;;) {
      const now = Atomics.load(words, done);
      if (now === this.state) break;
      if (performance.now() >= until) return;
      this.file.futexWait(this.msgOffset + abi.SYSMSG_DONE, now, LOOK_MS);
    }
    this.#settled = true;
    const ret = BigInt.asIntN(64, new BigUint64Array(words.buffer, words.byteOffset + abi.SYSMSG_REPLY, 1)[0]);
    new SyscallThreadLock(this.file, this.msgOffset).release();
    this.answered(ret);
  }
}
