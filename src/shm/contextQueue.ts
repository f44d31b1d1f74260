import type { FileRange } from '../memoryFile.js';
import { CONTEXT_QUEUE, DIRECT, INVALID_CONTEXT_ID, THREAD_CONTEXT } from '../abi/sysmsg.js';
import { REG } from '../abi/registers.js';
import { MULTI_CPU } from './budgets.js';
import { fsgsbaseAllowed, xsaveoptAvailable } from './hostCpu.js';
import type { SharedFile } from './sharedFile.js';
import type { WatchedWord } from './watchedWord.js';

const SENTRY_FAST_PATH = THREAD_CONTEXT.sentryFastPath / 4;
const FAST_RAX = THREAD_CONTEXT.fastRax / 8;
const RAX = THREAD_CONTEXT.regs / 8 + REG.rax;

/**
 * The sentry side of one stub's context queue (gVisor's contextQueue): a ring of context ids
 * shared with the stub's sysmsg threads, and the counters both sides use to decide who wakes
 * whom. The stub writes `start`, `numActiveThreads` and decrements `numActiveContexts` (as the
 * queue takes over a context it published; a direct resume leaves the count alone): those
 * values are untrusted and only ever used as hints here.
 *
 * Threading: one object per thread that touches the queue (the main thread, which creates and
 * initialises it, and runner or sentry workers, which open their own view with `init` false);
 * every shared word is accessed with Atomics, so producers on several threads are safe.
 *
 * @example
 * ```ts
 * const q = new ContextQueue(range, platform.memoryFile.shared);   // main thread: initialises
 * const w = new ContextQueue(range, workerFile(task.memory, range.end), false); // a worker's view
 * if (!w.resume(id, slotWords)) w.wakeIfNeeded();
 * ```
 */
export class ContextQueue {
  readonly #u32: Uint32Array;
  readonly #u64: BigUint64Array;
  /** Cache of the direct-resume token (see #token); only this view's thread uses it. */
  #directToken = 0;
  /** The doorbell as a watched word (see waitForTrap): ready once it moves past `value`. */
  readonly doorbell: WatchedWord;

  constructor(
    readonly range: FileRange,
    private readonly file: SharedFile,
    init = true,
  ) {
    const buf = file.buffer(range.start, range.end - range.start);
    this.#u32 = new Uint32Array(buf, 0, CONTEXT_QUEUE.size / 4);
    this.#u64 = new BigUint64Array(buf, CONTEXT_QUEUE.ringbuffer, CONTEXT_QUEUE.entries);
    this.doorbell = { words: new Int32Array(buf, 0, CONTEXT_QUEUE.size / 4), index: CONTEXT_QUEUE.numPublished / 4, value: 0 };
    if (!init) return; // another thread's view of a queue already set up
    // Indices start near the top of the u32 range so that wrap-around happens early, as in
    // gVisor: 4096 divides 2^32, so slot = index % 4096 stays consistent across the wrap.
    const first = 0xffffffff - 4 * CONTEXT_QUEUE.entries;
    this.#store(CONTEXT_QUEUE.start, first);
    this.#store(CONTEXT_QUEUE.end, first);
    this.#u64.fill(BigInt(INVALID_CONTEXT_ID));
    // Stub threads spin for work only where another CPU can run the sentry meanwhile.
    this.#store(CONTEXT_QUEUE.fastPathDisabled, MULTI_CPU ? 0 : 1);
    this.#store(CONTEXT_QUEUE.fsgsbase, fsgsbaseAllowed() ? 1 : 0);
    this.#store(CONTEXT_QUEUE.xsaveopt, xsaveoptAvailable() ? 1 : 0);
    this.#store(CONTEXT_QUEUE.directToken, 1 + Math.floor(Math.random() * 0x3ffffffe));
  }

  /**
   * Hands a context that just trapped in this stub back to it: straight to the stub thread that
   * spins for it when there is one (no queue, no shared counter), else through the
   * queue. Precondition: its registers are written and its state is None; `slot` is its
   * ThreadContext as 32-bit words. Returns true when it went direct.
   */
  resume(id: number, slot: Uint32Array): boolean {
    if (this.#direct(slot, DIRECT.resumed)) return true;
    this.add(id);
    return false;
  }

  /**
   * {@link resume} of a context that trapped for a syscall, with `rax` its result: a direct
   * resume hands the result over in the slot's handshake line (ThreadContext.fastRax, moved into
   * rax by the stub), so that answering a call touches no other cache line of the slot; through
   * the queue, it goes into rax itself. `words` is the whole slot as 64-bit words; the other
   * registers are as the caller left them in the slot.
   *
   * @example
   * ```ts
   * if (!q.resumeWithResult(id, slotWords, slotWords64, 7n)) q.wakeIfNeeded();
   * ```
   */
  resumeWithResult(id: number, slot: Uint32Array, words: BigUint64Array, rax: bigint): boolean {
    words[FAST_RAX] = rax;
    if (this.#direct(slot, DIRECT.resumedRax)) return true;
    words[RAX] = rax;
    this.add(id);
    return false;
  }

  /** The direct resume: SPINNING swapped to `resumed` (| the token). */
  #direct(slot: Uint32Array, resumed: number): boolean {
    for (let tries = 0; tries < 2; tries++) {
      const token = this.#token;
      if (token === 0) return false;
      const spinning = (token | DIRECT.spinning) >>> 0;
      const seen = Atomics.compareExchange(slot, SENTRY_FAST_PATH, spinning, (token | resumed) >>> 0);
      // Still counted active by the stub (it uncounts a context only when the queue takes it):
      // no shared counter is touched on this path.
      if (seen === spinning) return true;
      // No thread spins for it (none did, or it gave up), or one of this stub does but the swap
      // lost: the queue. Else the token this view read may be older than the queue's (set up
      // again since): once more with the one in memory.
      if (seen === DIRECT.none || seen >>> 2 === token >>> 2 || this.#refreshToken() === token) return false;
    }
    return false;
  }

  /**
   * This stub's direct-resume token (<< 2), read once: the stub rewrites the word that holds it
   * on every trap's neighbouring counters, so a load per resume moved that cache line to this
   * CPU and back each time. 0 until the queue is set up.
   */
  get #token(): number {
    return this.#directToken !== 0 ? this.#directToken : this.#refreshToken();
  }

  #refreshToken(): number {
    return (this.#directToken = (this.#load(CONTEXT_QUEUE.directToken) << 2) >>> 0);
  }

  /**
   * Futex-waits on the doorbell (numPublished) while it still reads `seen`, counted in
   * numSentryWaiters so that the stub wakes us (it skips the wake syscall when nobody waits).
   * Precondition: `seen` was read before the caller last looked at its contexts.
   */
  waitDoorbell(seen: number, timeoutMs: number): 'woken' | 'changed' | 'timeout' | 'interrupted' {
    Atomics.add(this.#u32, CONTEXT_QUEUE.numSentryWaiters / 4, 1);
    try {
      return this.file.futexWait(this.doorbellOffset, seen, timeoutMs);
    } finally {
      Atomics.sub(this.#u32, CONTEXT_QUEUE.numSentryWaiters / 4, 1);
    }
  }

  /**
   * Counts a sentry thread about to sleep on the doorbell by other means (a host's futex_waitv
   * over several doorbells): the stub wakes the doorbell only while someone is counted.
   * Precondition: paired with {@link removeSleeper} after the sleep.
   */
  addSleeper(): void {
    Atomics.add(this.#u32, CONTEXT_QUEUE.numSentryWaiters / 4, 1);
  }

  removeSleeper(): void {
    Atomics.sub(this.#u32, CONTEXT_QUEUE.numSentryWaiters / 4, 1);
  }

  /**
   * Turns the stub fast path on or off (its threads spin ~20 µs for the sentry's direct resume
   * of the context they published, or for work in the queue, before they sleep): gVisor's stub
   * fast path switch, decided by the sentry (see Scheduler.scanTraps). Either value is safe: a
   * stub thread that does not spin sleeps, and the sentry's resume then goes through the queue.
   * Always off on one CPU.
   */
  stubFastPath(on: boolean): void {
    const disabled = on && MULTI_CPU ? 0 : 1;
    if (this.#load(CONTEXT_QUEUE.fastPathDisabled) !== disabled) this.#store(CONTEXT_QUEUE.fastPathDisabled, disabled);
  }

  /**
   * The same wait as {@link waitDoorbell}, off the calling thread (libuv's pool), for the event
   * loop: resolves when the doorbell moves from `seen`, after `timeoutMs`, or rejects with
   * ESTUBDEAD once the stub `pid` has exited.
   */
  waitDoorbellAsync(seen: number, timeoutMs: number, pid: number): Promise<number> {
    return this.file.waitWordChange(this.doorbellOffset, seen, pid, timeoutMs, this.range.start + CONTEXT_QUEUE.numSentryWaiters);
  }

  /**
   * Rings the doorbell from the sentry side (mail for a sentry thread that may sleep on it).
   * The wake syscall only when a sleeper is counted, as the stub does: it costs tens of µs
   * here (an IPI to the sleeper's CPU), and a `systrap run` rings several times per fork and
   * exec. No wake-up is lost: a sleeper counts itself before it compares the doorbell with
   * what it saw, and this bumps the doorbell before it reads the count (both sequentially
   * consistent), so either the sleeper sees the new doorbell or this sees the sleeper. With
   * `wake` false the doorbell is only bumped: for a caller that woke the sleeper through another
   * doorbell of the same sleep (the sentry sleeps once on all its processes' doorbells). True
   * when it woke a sleeper.
   */
  ring(wake = true): boolean {
    Atomics.add(this.#u32, CONTEXT_QUEUE.numPublished / 4, 1);
    if (!wake || this.#load(CONTEXT_QUEUE.numSentryWaiters) === 0) return false;
    this.file.futexWake(this.doorbellOffset, 1 << 30);
    return true;
  }

  /** Contexts whose task is awake (queued, running, or handled by the sentry). */
  awake(delta: 1 | -1): void {
    Atomics.add(this.#u32, CONTEXT_QUEUE.numAwakeContexts / 4, delta);
  }

  /**
   * Queues a context (gVisor's add): one more active context, claim an index, write the entry.
   * Producers may be several threads (the main thread and runner workers): the index is taken
   * with an atomic add, and consumers wait for an entry tagged with their index.
   */
  add(id: number): void {
    Atomics.add(this.#u32, CONTEXT_QUEUE.numActiveContexts / 4, 1);
    const end = Atomics.add(this.#u32, CONTEXT_QUEUE.end / 4, 1);
    // The entry as two 32-bit stores, index (high word) first: until the id lands, the low word
    // still reads INVALID_CONTEXT_ID (what a consumer leaves), which consumers skip; no BigInt
    // per switch on the hot path.
    const word = (CONTEXT_QUEUE.ringbuffer + 8 * (end % CONTEXT_QUEUE.entries)) / 4;
    Atomics.store(this.#u32, word + 1, end);
    Atomics.store(this.#u32, word, id);
  }

  /**
   * Wakes a sleeping stub thread if fewer threads are active or already woken than contexts
   * (no creation). Why the woken ones count (gVisor's canKickSysmsgThread): a thread woken a
   * moment ago is not active yet; counting it as missing woke a second one every time, which
   * found nothing, spun and slept again, and asked Node for a new thread. True if it woke one.
   */
  wakeIfNeeded(): boolean {
    if (this.threadsComing >= this.numActiveContexts) return false;
    this.wakeOne();
    return true;
  }

  /** Threads active or woken and not yet active (a hint: both words are stub-written too). */
  get threadsComing(): number {
    return this.numActiveThreads + this.#load(CONTEXT_QUEUE.numThreadsToWakeup);
  }

  /** Contexts queued and not yet taken by a thread (a hint: `start` is stub-written). */
  get waiting(): number {
    return (this.#load(CONTEXT_QUEUE.end) - this.#load(CONTEXT_QUEUE.start)) >>> 0;
  }

  /**
   * Holds syscall patching of this stub's address space off (its try-lock, see UserTrap.shared)
   * while `fn` runs: a fork must not copy a half-written site. Waits for a runner that is
   * patching (a few writes) for at most 100 ms, then goes on regardless.
   */
  async withoutPatching<T>(fn: () => Promise<T>): Promise<T> {
    const lock = CONTEXT_QUEUE.usertrapLock / 4;
    const until = performance.now() + 100;
    let held = false;
    while (!(held = Atomics.compareExchange(this.#u32, lock, 0, 1) === 0) && performance.now() < until) await new Promise((r) => setImmediate(r));
    try {
      return await fn();
    } finally {
      if (held) Atomics.store(this.#u32, lock, 0);
    }
  }

  /** Contexts ever queued (the producer index, sentry-written): direct resumes do not count. */
  get enqueued(): number {
    return this.#load(CONTEXT_QUEUE.end);
  }

  /** The doorbell: bumped by the stub on every trap it publishes. */
  get published(): number {
    return this.#load(CONTEXT_QUEUE.numPublished);
  }

  /** File offset of the doorbell word (to futex-wait on it). */
  get doorbellOffset(): number {
    return this.range.start + CONTEXT_QUEUE.numPublished;
  }

  get numActiveThreads(): number {
    return this.#load(CONTEXT_QUEUE.numActiveThreads);
  }

  get numActiveContexts(): number {
    return this.#load(CONTEXT_QUEUE.numActiveContexts);
  }

  /** Counts a thread as active before it starts (it looks for work first thing). */
  threadStarting(): void {
    Atomics.add(this.#u32, CONTEXT_QUEUE.numActiveThreads / 4, 1);
  }

  /** Hands a sleeping thread a wake-up token and wakes one sleeper. */
  wakeOne(): void {
    Atomics.add(this.#u32, CONTEXT_QUEUE.numThreadsToWakeup / 4, 1);
    this.file.futexWake(this.range.start + CONTEXT_QUEUE.numThreadsToWakeup, 1);
  }

  #load(offset: number): number {
    return Atomics.load(this.#u32, offset / 4);
  }

  #store(offset: number, value: number): void {
    Atomics.store(this.#u32, offset / 4, value);
  }
}
