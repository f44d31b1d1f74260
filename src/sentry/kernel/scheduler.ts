import { interruptThread } from '../../shm/interrupt.js';
import { ContextState, INVALID_THREAD_ID, THREAD_CONTEXT } from '../../abi/sysmsg.js';
import type { ContextQueue } from '../../shm/contextQueue.js';
import { BUDGETS } from '../../shm/budgets.js';
import type { WatchedWord } from '../../shm/trapWait.js';
import type { Task } from './task.js';

const STATE = THREAD_CONTEXT.state / 4;
const INTERRUPT = THREAD_CONTEXT.interrupt / 4;
const THREAD_ID = THREAD_CONTEXT.threadId / 4;

/** What the scheduler needs of the kernel. */
export interface SchedulerHost {
  /** The program's live threads. */
  liveTasks(): Iterable<Task>;
  /** Asks the main thread for another sysmsg thread (more tasks runnable than threads awake). */
  needThread(): void;
  /** The process is stopped (job control): ready tasks stop instead of going to the stub. */
  stopped(): boolean;
}

/** What {@link Scheduler.lookBeforeWait} finds, as flags. */
export const WAIT_LOOK = { pending: 1, inStub: 2, woke: 4 } as const;

/**
 * Moves the program's tasks between the sentry and the stub (gVisor's task goroutines and the
 * platform's switch, folded into one loop on the sentry worker): queues runnable tasks into the
 * stub's context queue (or straight back to the stub thread spinning for one), finds the tasks
 * whose trap is published, interrupts tasks in the stub (signals, preemption); the sentry host
 * waits on the doorbells when nothing is ready (SentryHost). It keeps the queue's count of awake contexts in step
 * with the tasks: a task parked in the sentry holds no stub thread and does not count.
 *
 * @example
 * ```ts
 * sched.makeReady(t);            // after its trap was handled
 * sched.queueReady();            // into the stub
 * sched.scanTraps((t, st) => handle(t, st));
 * ```
 */
export class Scheduler {
  /** Tasks to hand to the stub on the next turn. */
  #ready: Task[] = [];
  /** Host tids of the stub's sysmsg threads by slot (for interrupts). From the main thread. */
  readonly #threadTids = new Map<number, number>();
  #lastThreadRequest = 0;

  constructor(
    readonly queue: ContextQueue,
    private readonly maxSysmsgThreads: number,
    private readonly host: SchedulerHost,
  ) {}

  setThreadTids(tids: Array<[number, number]>, stubPid: number): void {
    for (const [slot, tid] of tids) this.#threadTids.set(slot, tid);
    this.#stubPid = stubPid;
    // Interrupts that found their task on a thread not known then: its signal now.
    for (const t of this.#unsignalled) this.#signal(t);
  }

  /**
   * Tasks interrupted while they ran on a sysmsg thread whose tid this worker did not know yet
   * (threads the stub made a moment ago: their tids come from the main thread every few ms). The
   * flag alone reaches a task only at its next trap, and one that makes no trapped call (a spin
   * on sched_yield while the threads it waits for are queued behind it) would never come back.
   * Protected by: the worker's turn.
   */
  readonly #unsignalled = new Set<Task>();

  /** The stub's pid (host view): the thread group of its sysmsg threads made by its loop. */
  #stubPid = 0;

  /** A new task counts as awake in the stub's queue from the start. */
  adopt(t: Task): void {
    this.queue.awake(1);
    this.#ready.push(t);
  }

  /** `t` runs again on the next turn (its machine said ready; a task without a context waits for it). */
  makeReady(t: Task): void {
    if (t.state === 'ready' && t.bound) this.#ready.push(t);
  }

  /**
   * Set when queueReady woke a sleeping stub thread: its trap cannot come before that thread
   * runs, and the scheduler tends to run it on the waker's CPU, so a sentry spinning for it only
   * delays it (see SentryHost's wait). Protected by: the worker's turn.
   */
  #wokeThread = false;

  /** Whether queueReady woke a stub thread since the last call; clears it. */
  takeWoke(): boolean {
    const w = this.#wokeThread;
    this.#wokeThread = false;
    return w;
  }
  /** Recent traps answered at once (0..1, see #answered). Protected by: the worker's turn. */
  #atOnce = 1;

  /** Hands every ready task to the stub; asks for another sysmsg thread when they all wait. */
  queueReady(now = performance.now()): void {
    if (this.#ready.length === 0) return;
    const stopped = this.host.stopped();
    for (const t of this.#ready) {
      if (t.state !== 'ready') continue;
      if (stopped) {
        t.send('STOP'); // JobControl.continue makes it ready again
        continue;
      }
      t.send(t.pass ? 'SWITCH_PASS' : 'SWITCH');
      // A locked write to the slot's handshake line only when the flag changes: the stub thread
      // spinning for this task's direct resume reads that line (see ThreadContext).
      const flag = t.interruptOnRun ? 1 : 0;
      if (Atomics.load(t.u32, INTERRUPT) !== flag) Atomics.store(t.u32, INTERRUPT, flag);
      if (t.interruptOnRun) t.send('KICK'); // the flag bounces it back before it runs
      t.interruptOnRun = false;
      // A plain store: the resume's locked swap below publishes it (x86 keeps stores in order, and
      // the JS memory model orders a write before a seq-cst one). Atomics.store is a locked xchg:
      // a second trip of the line between CPUs, the stub thread spinning on it reading between.
      t.u32[STATE] = ContextState.None;
      t.since = now;
      const result = t.takeResult();
      if (result === undefined) this.queue.resume(t.id, t.u32);
      else this.queue.resumeWithResult(t.id, t.u32, t.u64, result);
    }
    this.#ready = [];
    this.#kickThreads(now);
  }

  /** A sleeping stub thread woken, or another asked of the main thread, when contexts outnumber threads. */
  #kickThreads(now: number): void {
    if (this.queue.wakeIfNeeded()) this.#wokeThread = true;
    const q = this.queue;
    if (q.numActiveContexts > q.threadsComing && this.#threadTids.size < this.maxSysmsgThreads && now - this.#lastThreadRequest > 1) {
      this.#lastThreadRequest = now;
      this.host.needThread();
    }
  }

  /**
   * Marks the doorbell's position: a trap published after this moves it (see wait). Precondition
   * for a wait on that mark: no trap published before it is left unscanned (see lookBeforeWait).
   */
  markDoorbell(): void {
    this.queue.doorbell.value = this.queue.published;
  }

  /**
   * Calls `onTrap` for every task in the stub whose trap is published (after sending it TRAP);
   * true if there was one.
   */
  scanTraps(onTrap: (t: Task, state: number) => void): boolean {
    let any = false;
    for (const t of this.host.liveTasks()) {
      if (!t.inStub) continue;
      const st = Atomics.load(t.u32, STATE);
      if (st === ContextState.None) continue;
      any = true;
      t.send('TRAP');
      onTrap(t, st);
      this.#answered(t.state === 'ready');
    }
    return any;
  }

  /**
   * The stub fast path follows how this process's traps are answered: a stub thread spinning
   * for the direct resume of its trap pays when the sentry answers at once (getppid, a write),
   * and is waste when the task parks here instead (nanosleep, a futex wait, a blocking read):
   * on while at least half of the recent traps (an average of the last ~8) were answered in
   * the turn that saw them.
   */
  #answered(atOnce: boolean): void {
    this.#atOnce += ((atOnce ? 1 : 0) - this.#atOnce) / 8;
    this.queue.stubFastPath(this.#atOnce >= 0.5);
  }

  /**
   * True if some task is in the stub (a silent stub then means a dead one). With `hot`, each
   * such task's state word is pushed onto it: the host spins on those (see SentryHost's wait).
   */
  anyInStub(hot?: WatchedWord[]): boolean {
    let any = false;
    for (const t of this.host.liveTasks()) {
      if (!t.inStub) continue;
      if (!hot) return true;
      any = true;
      hot.push(t.stateWatch);
    }
    return any;
  }

  /**
   * Before the host's wait, flags of {@link WAIT_LOOK}: `pending` when a trap (or, `deferred`, a
   * signal a stub thread deferred) came after the last scan but before the doorbell's mark, which
   * then hides it (see ThreadGroup.step): a turn, no wait. Else `inStub` when a task runs in the
   * stub (its state word pushed onto `hot`), `woke` when a stub thread was woken since the last
   * look (see {@link takeWoke}; cleared).
   */
  lookBeforeWait(hot: WatchedWord[], deferred: boolean): number {
    if (deferred) return WAIT_LOOK.pending;
    for (const t of this.host.liveTasks()) if (t.inStub && Atomics.load(t.u32, STATE) !== ContextState.None) return WAIT_LOOK.pending;
    return (this.anyInStub(hot) ? WAIT_LOOK.inStub : 0) | (this.takeWoke() ? WAIT_LOOK.woke : 0);
  }

  /** Host tids of the stub's sysmsg threads known so far. */
  hostTids(): IterableIterator<number> {
    return this.#threadTids.values();
  }

  /** Slots of the stub's sysmsg threads known so far. */
  slots(): IterableIterator<number> {
    return this.#threadTids.keys();
  }

  /**
   * Interrupt flag, then SIGCHLD to the sysmsg thread running `t` (if any). Once per stay. A
   * task ready to run (its signals were delivered before it was made ready) goes in with the
   * flag set: a signal sent meanwhile would otherwise wait for its next trap, and a blocking
   * call it is about to make (a passthrough wait) would never end.
   */
  interrupt(t: Task): void {
    if (t.state === 'ready') t.interruptOnRun = true;
    if (!t.inStub || t.kicked) return;
    t.send('KICK');
    Atomics.store(t.u32, INTERRUPT, 1);
    this.#signal(t);
  }

  /**
   * SIGCHLD to the sysmsg thread running kicked task `t`, or, when that thread's tid is not
   * known yet, once it is (see #unsignalled). A task in the queue (no thread) needs none: the
   * flag bounces it back as it is taken.
   */
  #signal(t: Task): void {
    this.#unsignalled.delete(t);
    if (!t.inStub || !t.kicked) return; // back already
    const slot = Atomics.load(t.u32, THREAD_ID);
    if (slot === INVALID_THREAD_ID) return;
    const tid = this.#threadTids.get(slot);
    if (tid === undefined) this.#unsignalled.add(t);
    else interruptThread(this.#stubPid, tid);
  }

  /**
   * gVisor's preemption: when contexts wait in the queue (every stub thread busy), the first
   * task that has run longer than BUDGETS.preemptMs is interrupted and goes to the back.
   */
  preempt(now = performance.now()): void {
    if (this.queue.waiting === 0) return;
    // Contexts wait: make sure a thread comes for them. queueReady looked when it queued them,
    // but the counts it read then are partly stub-written and may have been high (a thread the
    // main thread was making counts as coming, and may fail): looked at again every turn.
    this.#kickThreads(now);
    for (const t of this.host.liveTasks()) {
      if (t.inStub && !t.kicked && now - t.since > BUDGETS.preemptMs) {
        this.interrupt(t);
        return;
      }
    }
  }

  /** Parks `t` in the sentry: it leaves the stub's awake count. */
  park(t: Task, why: 'WAIT_FUTEX' | 'SLEEP' | 'SUSPEND' | 'WAIT_EXEC'): void {
    t.send(why);
    this.queue.awake(-1);
  }

  /** Ends a park: back in the awake count, ready to run. */
  unpark(t: Task): void {
    t.send('WAKE');
    this.queue.awake(1);
  }

  /** `t` is gone: out of the awake count unless it was parked (it left it then). */
  forget(t: Task): void {
    if (!t.parked) this.queue.awake(-1);
    t.send('EXIT');
    this.#ready = this.#ready.filter((r) => r !== t);
  }
}

