import { CONTEXT_QUEUE, DEFERRED_SIGNAL, FORWARDED_SIGNALS, MSG } from '../../abi/sysmsg.js';
import { PER_THREAD, QUEUE_OFFSET, threadSlotAddr } from '../../abi/stub.js';
import type { SharedFile } from '../../shm/sharedFile.js';
import type { FileRange } from '../../memoryFile.js';

/** Signals a stub hands over (FORWARDED_SIGNALS): nothing else is taken from a ring. */
const FORWARDED: ReadonlySet<number> = new Set(FORWARDED_SIGNALS);
/** Bytes of a siginfo. */
const SIGINFO_SIZE = 128;

/**
 * Signals sent to a stub's process (a kill from outside, a terminal's SIGINT, F_SETOWN's SIGIO)
 * that one of its threads took while it ran the syshandler path of a patched call site
 * (src/shm/usertrap.ts): with no context running to publish them with, the thread's
 * handler puts them in its Msg.deferred ring and bumps the queue's num_deferred
 * (native/stub/sysmsg.c `defer`). The sentry takes them from there and sends them to the
 * process, as it does with a forwarded signal a thread took while it ran program code.
 *
 * The rings are in memory the program can write: head and tail are taken as they are, at most
 * one ring's worth is read, and only signals of FORWARDED_SIGNALS are sent.
 *
 * @example
 * ```ts
 * const deferred = new DeferredSignals(file, queueRange, region.start);
 * deferred.take(scheduler.slots(), (signo, info) => signals.sendGroup(signo, info));
 * ```
 */
export class DeferredSignals {
  /** num_deferred at the last look. Protected by: the sentry thread. */
  #seen = 0;
  readonly #queue: Uint32Array;

  constructor(
    private readonly file: SharedFile,
    private readonly queue: FileRange,
    private readonly regionStart: bigint,
  ) {
    this.#queue = new Uint32Array(file.buffer(queue.start, CONTEXT_QUEUE.size));
  }

  /** Whether the counter moved since the last {@link take}. */
  get pending(): boolean {
    return Atomics.load(this.#queue, CONTEXT_QUEUE.numDeferred / 4) !== this.#seen;
  }

  /** Sends what the threads of `slots` deferred since the last look (nothing when the counter has not moved). */
  take(slots: Iterable<number>, send: (signo: number, info: Uint8Array) => void): void {
    const n = Atomics.load(this.#queue, CONTEXT_QUEUE.numDeferred / 4);
    if (n === this.#seen) return;
    this.#seen = n;
    for (const slot of slots) this.#takeFrom(slot, send);
  }

  #takeFrom(slot: number, send: (signo: number, info: Uint8Array) => void): void {
    const at = this.#msgOffset(slot);
    if (at === undefined) return;
    const msg = new Uint32Array(this.file.buffer(at, 4096));
    const tail = Atomics.load(msg, MSG.deferredTail / 4);
    let head = Atomics.load(msg, MSG.deferredHead / 4);
    if (((tail - head) >>> 0) > DEFERRED_SIGNAL.count) head = (tail - DEFERRED_SIGNAL.count) >>> 0;
    const bytes = new Uint8Array(msg.buffer, msg.byteOffset, 4096);
    const view = new DataView(msg.buffer, msg.byteOffset, 4096);
    for (; head !== tail; head = (head + 1) >>> 0) {
      const entry = MSG.deferred + (head % DEFERRED_SIGNAL.count) * DEFERRED_SIGNAL.size;
      const signo = view.getInt32(entry + DEFERRED_SIGNAL.signo, true);
      const info = bytes.slice(entry + DEFERRED_SIGNAL.info, entry + DEFERRED_SIGNAL.info + SIGINFO_SIZE);
      if (FORWARDED.has(signo)) send(signo, info);
    }
    Atomics.store(msg, MSG.deferredHead / 4, head);
  }

  /** The file offset of sysmsg thread `slot`'s Msg page (the control memory is one range, see ControlMemory.rangeAt). */
  #msgOffset(slot: number): number | undefined {
    const msgAddr = threadSlotAddr({ start: this.regionStart }, slot) + BigInt(PER_THREAD.sharedOffset + PER_THREAD.msgOffset);
    const offset = this.queue.start - Number(this.regionStart + BigInt(QUEUE_OFFSET) - msgAddr);
    return offset >= 0 && offset + 4096 <= this.queue.start ? offset : undefined;
  }
}
