import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import type { NativeMemoryFile } from '../native.js';
import { BUDGETS } from '../shm/budgets.js';
import { workerFile } from '../shm/sharedFile.js';
import type { WatchedWord } from '../shm/watchedWord.js';
import type { HostData, HostMessage, HostReply } from '../hostProtocol.js';
import { Kernel, type Doorbell } from './kernel/kernel.js';
import { bundleWarm } from '../bundleHooks.js';
import { SpinController } from '../shm/spinController.js';
import type { SentryTask } from './protocol.js';
import { WAIT_LOOK } from './kernel/scheduler.js';

/** Most futex words one sleep can watch (futex_waitv): the host's own and one per program. */
const MAX_WAIT_WORDS = 128;

/**
 * A sentry host: one worker thread that runs the kernels of many programs, turn after turn
 * (gVisor runs every task's sentry work on goroutines over a few OS threads). No program holds
 * a host thread of its own: a program that waits costs nothing but a word in the host's sleep,
 * and a busy one shares the thread with the others turn by turn. When no kernel has work the
 * host spins on every watched word, then sleeps once on all the programs' doorbells and its
 * own wake word together (futex_waitv).
 *
 * Messages from the main thread (new programs, close) come on `port`; the main thread bumps the
 * wake word in the memory file and wakes it, so the host notices them in any state.
 *
 * @example
 * ```ts
 * // workers/sentry.ts
 * new SentryHost(workerData as HostData).run();
 * ```
 */
export class SentryHost {
  readonly #file: NativeMemoryFile;
  readonly #port: MessagePort;
  readonly #wake: WatchedWord;
  readonly #wakeOffset: number;
  /** The programs, by the main thread's id for them. Protected by: this thread only. */
  readonly #kernels = new Map<number, Kernel>();
  /** Every watched word (the wake word, then each kernel's), rebuilt when kernels come and go. */
  #words?: WatchedWord[];
  /** The kernels' watch versions when #words was built (processes come and go inside a kernel). */
  #wordsVersion = -1;
  #closing = false;
  /** What a spin looks at every time (see #wait), rebuilt for each wait. Protected by: this thread. */
  readonly #hot: WatchedWord[] = [];
  /** What a sleep watches, built with #words. Protected by: this thread. */
  #sleepSet?: SleepSet;
  /** When the stubs were last looked at after a silent sleep (see #checkStubs). */
  #lastStubCheck = 0;
  /** How long to spin before sleeping (see SpinController). Protected by: this thread. */
  readonly #spinControl = new SpinController(BUDGETS.workerSpinNs);

  constructor(data: HostData) {
    this.#file = workerFile(data.memory, data.wake.end);
    this.#port = data.port;
    this.#wakeOffset = data.wake.start;
    this.#wake = { words: new Int32Array(this.#file.buffer(data.wake.start, 4)), index: 0, value: 0 };
  }

  /** Runs until the main thread closes the host. */
  async run(): Promise<void> {
    let yielded = false;
    // Turns with nothing to do since the last busy one (see TURNS_BEFORE_WAIT).
    let idleTurns = 0;
    while (!this.#closing || this.#kernels.size > 0) {
      // Mail is rare (a new program, close): looked at without a promise per turn.
      if (Atomics.load(this.#wake.words, 0) !== this.#wake.value) await this.#drainMessages();
      let busy = false;
      let asyncWork = false;
      for (const [id, k] of this.#kernels) {
        busy = k.turn() || busy;
        asyncWork ||= (k.localExec?.pending ?? 0) > 0;
        if (k.result) this.#finish(id, k);
      }
      // A kernel's own work in promises (an execve it loads) goes on once this turn's stack is
      // gone: let every microtask run (a macrotask) before anything sleeps. Work still under
      // way after that waits off this thread (a stub slow to answer, see StubCalls): short
      // sleeps on the doorbells between the event loop's looks, so that it costs no core.
      if (asyncWork) {
        if (yielded && !busy) this.#wait(ASYNC_LOOK_MS);
        await new Promise<void>((resolve) => setImmediate(resolve));
        yielded = true;
      } else {
        yielded = false;
        if (busy) idleTurns = 0;
        else if (idleTurns++ >= TURNS_BEFORE_WAIT) {
          for (const k of this.#kernels.values()) k.idle();
          this.#wait();
        }
      }
    }
  }

  /** New programs (their kernels start here: the policy module loads), close. */
  async #drainMessages(): Promise<void> {
    const now = Atomics.load(this.#wake.words, 0);
    if (now === this.#wake.value) return;
    this.#wake.value = now;
    for (let m = receiveMessageOnPort(this.#port); m; m = receiveMessageOnPort(this.#port)) {
      const msg = m.message as HostMessage<SentryTask>;
      if (msg.type === 'close') {
        this.#closing = true;
        for (const k of this.#kernels.values()) k.abort('the platform closed');
        continue;
      }
      if (this.#kernels.size >= MAX_WAIT_WORDS - 1) {
        this.#reply({ type: 'result', id: msg.id, result: { kind: 'error', code: 'EBUSY', message: 'this sentry host runs its most programs' } });
        continue;
      }
      let k: Kernel;
      try {
        k = new Kernel(msg.task);
      } catch (e) {
        this.#reply({ type: 'result', id: msg.id, result: { kind: 'error', code: 'ESENTRY', message: `the sentry cannot start: ${(e as Error).message ?? e}` } });
        continue;
      }
      if (await k.start()) {
        this.#kernels.set(msg.id, k);
        this.#words = undefined;
        // The first program's start compiled what a run needs first: a first host saves the
        // code cache now (once), not at the end, which Node's exit may cut short.
        bundleWarm();
      } else this.#reply({ type: 'result', id: msg.id, result: k.result! });
    }
  }

  #finish(id: number, k: Kernel): void {
    this.#kernels.delete(id);
    this.#words = undefined;
    this.#reply({ type: 'result', id, result: k.result! });
  }

  #reply(r: HostReply): void {
    this.#port.postMessage(r);
  }

  /**
   * Spin on every watched word (as long as the spin controller says it pays), then one sleep
   * on every doorbell and the wake word. How long the wait lasted teaches the controller.
   */
  #wait(maxMs: number = BUDGETS.doorbellSleepMs): void {
    // Per wait, so per trap: no array made.
    let version = this.#kernels.size;
    for (const k of this.#kernels.values()) version += k.watchVersion;
    if (version !== this.#wordsVersion) this.#words = undefined;
    this.#wordsVersion = version;
    if (!this.#words) {
      this.#words = [this.#wake, ...[...this.#kernels.values()].flatMap((k) => k.watch)];
      this.#sleepSet = undefined;
    }
    const words = this.#words;
    // No task in a stub: no trap can come (every task is parked here), so no spin. The spin
    // looks at the state words of the tasks in stubs (and the mail), the doorbells only every
    // 64 looks: a trap's state word moves before its stub rings the doorbell, and the doorbell's
    // cache line, written by the stub's locked add, costs a second trip between CPUs.
    const hot = this.#hot;
    hot.length = 0;
    hot.push(this.#wake);
    let canTrap = false;
    let woke = false;
    for (const k of this.#kernels.values()) {
      hot.push(k.mailCounter);
      for (const p of k.table.live()) {
        const look = p.lookBeforeWait(hot);
        // Published after its last scan, before its doorbell's mark (which then hides it): no
        // wait, the next turn takes it.
        if (look & WAIT_LOOK.pending) return;
        canTrap ||= (look & WAIT_LOOK.inStub) !== 0;
        woke ||= (look & WAIT_LOOK.woke) !== 0;
      }
    }
    // A stub thread woken in this turn: no spin, the wake-up would wait for it (the woken thread
    // tends to run on this CPU); and such a wait measures the wake-up, not the program.
    const start = performance.now();
    try {
      this.#waitFor(words, hot.length <= MAX_HOT_WORDS ? hot : words, woke ? 0 : this.#spinControl.budget(canTrap), maxMs);
    } finally {
      if (canTrap && !woke) this.#spinControl.record((performance.now() - start) * 1e6);
    }
  }

  /** The wait itself: spin `spinNs` (on `hot`, see #spin), then sleep until a trap, mail, a timer, or `maxMs` at most. */
  #waitFor(words: readonly WatchedWord[], hot: readonly WatchedWord[], spinNs: number, maxMs: number): void {
    if (this.#spin(words, hot, spinNs)) return;
    // Closing: the aborted kernels end in their next turns, and Node may be waiting to end this
    // thread (its exit terminates workers, which a futex sleep delays): no long sleep then.
    let deadline = performance.now() + (this.#closing ? 1 : maxMs);
    for (const k of this.#kernels.values()) deadline = Math.min(deadline, k.nextDeadline());
    if (deadline <= performance.now()) return; // a timer is due: the next turn wakes its task
    for (const k of this.#kernels.values()) k.flush();
    const { bells, offsets, expected, files } = (this.#sleepSet ??= this.#makeSleepSet());
    expected[0] = this.#wake.value;
    for (let i = 0; i < bells.length; i++) {
      expected[i + 1] = bells[i].queue.doorbell.value;
      bells[i].queue.addSleeper();
    }
    try {
      // A trap published after the last look moved its doorbell: futex_waitv returns at once.
      if (changed(words)) return;
      const ms = Math.max(1, Math.ceil(deadline - performance.now()));
      if (this.#file.futexWaitv(offsets, expected, ms, files) === -1) this.#checkStubs();
    } finally {
      for (const b of bells) b.queue.removeSleeper();
    }
  }

  /** Each process's doorbell, in the file its queue is in (a forked process's is its own), for futex_waitv. */
  #makeSleepSet(): SleepSet {
    const bells = [...this.#kernels.values()].flatMap((k) => k.doorbells()).slice(0, MAX_WAIT_WORDS - 1);
    const offsets = new Uint32Array(bells.length + 1);
    offsets[0] = this.#wakeOffset;
    bells.forEach((b, i) => (offsets[i + 1] = b.queue.doorbellOffset));
    const files = [undefined, ...bells.map((b) => (b.file === this.#file ? undefined : b.file))];
    return { bells, offsets, expected: new Uint32Array(bells.length + 1), files };
  }

  /**
   * A sleep ended with no doorbell rung: a stub may have died (a death rings none). Looked at
   * once per doorbell timeout at most: sleeps that end at a task's timer (every millisecond
   * for a program sleeping 1 ms at a time) would otherwise look every time.
   */
  #checkStubs(): void {
    const now = performance.now();
    if (now - this.#lastStubCheck < BUDGETS.doorbellSleepMs) return;
    this.#lastStubCheck = now;
    for (const k of this.#kernels.values()) k.checkStub();
  }

  /**
   * Spins up to `ns`; true as soon as a watched word changed: `hot` at every look, all `words`
   * (the doorbells: a trap of a task not in `hot`, a signal a stub thread deferred) every 64.
   */
  #spin(words: readonly WatchedWord[], hot: readonly WatchedWord[], ns: number): boolean {
    if (ns <= 0) return changed(words);
    const end = performance.now() + ns / 1e6;
    for (;;) {
      for (let i = 0; i < 64; i++) if (changed(hot)) return true;
      if (changed(words)) return true;
      if (performance.now() >= end) return false;
    }
  }
}

/** The most words #spin looks at every time (the wake word, each kernel's mail, tasks in stubs); past it, all words. */
const MAX_HOT_WORDS = 16;

/**
 * Turns that found nothing, after one that did, before the host's wait: a task answered a moment
 * ago traps again within a few turns' time (a program making calls back to back), and a turn
 * finds that trap sooner than a wait, whose set-up (the words to spin on, the spin budget, the
 * clock) costs more than a turn's looks. `systrap run` of a getppid loop, interleaved runs, ns per
 * call: 0 extra turns median ~1740, 2 ~1400, 4 ~1420, 8 ~1330 (this VM; s29).
 */
const TURNS_BEFORE_WAIT = 4;

/** How long the host sleeps between looks at a kernel's work that waits off its thread (see run). */
const ASYNC_LOOK_MS = 1;

/** The doorbells a sleep watches and futex_waitv's arguments for them (the wake word first). */
interface SleepSet {
  bells: Doorbell[];
  offsets: Uint32Array;
  /** Filled before each sleep: the values last seen. */
  expected: Uint32Array;
  files: Array<NativeMemoryFile | undefined>;
}

function changed(words: readonly WatchedWord[]): boolean {
  for (let k = 0; k < words.length; k++) {
    const w = words[k];
    if (Atomics.load(w.words, w.index) !== w.value) return true;
  }
  return false;
}
