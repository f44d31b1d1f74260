import { ERRNO, FUTEX } from '../../abi/linux.js';
import { THREAD_CONTEXT } from '../../abi/sysmsg.js';
import type { FileRange } from '../../memoryFile.js';
import type { TaskEvent } from '../../machines/task.js';
import { ContextQueue } from '../../shm/contextQueue.js';
import { workerFile } from '../../shm/sharedFile.js';
import { stubGone } from '../../shm/stubDeath.js';
import type { WatchedWord } from '../../shm/watchedWord.js';
import type { NativeMemoryFile } from '../../native.js';
import { ProgramMemory } from './memory.js';
import { Task } from './task.js';
import { FutexTable } from './futex.js';
import { SignalDelivery } from './signalDelivery.js';
import { Scheduler } from './scheduler.js';
import { Mailbox } from './mailbox.js';
import { TrapHandler } from './trap.js';
import { GroupExit } from './groupExit.js';
import { ExecInProgress, type ExecArgs } from './execve.js';
import { StracePrinter } from '../strace/printer.js';
import { Policy, PolicyError } from '../policy.js';
import type { LoadedImage, SyscallKernel } from '../syscalls/context.js';
import type { SentryRequest, SentryResult, SentryTask } from '../protocol.js';

/** The pid of a sandbox's init in its namespace: a sandboxed program's parent. */
const SANDBOX_INIT_PID = 1;
/** Most task events sent to the main thread in one message. */
const MIRROR_BATCH = 256;

/** Writes a struct timespec of `ms` milliseconds (best effort: a bad pointer is the program's). */
function writeTimespec(mem: ProgramMemory, addr: bigint, ms: number): void {
  const b = new Uint8Array(16);
  const dv = new DataView(b.buffer);
  dv.setBigInt64(0, BigInt(Math.floor(ms / 1000)), true);
  dv.setBigInt64(8, BigInt(Math.floor((ms % 1000) * 1e6)), true);
  mem.write(addr, b);
}

/**
 * The sentry of one program (gVisor's kernel.Kernel + ThreadGroup, reduced to what running a
 * host program with passthrough needs). It owns every task of the program; its parts: the
 * scheduler (tasks in and out of the stub), the trap handler (what a trap comes to), signal
 * delivery, the futex table, the mailbox to the main thread. A sentry host (src/sentry/host.ts)
 * runs the kernels of several programs on one worker thread, turn after turn: a kernel never
 * blocks, and every trap is handled on that thread with no message per syscall.
 * Preconditions: the stub has the program's seccomp filter, the image is loaded and
 * `task.main` holds the entry registers.
 *
 * @example
 * ```ts
 * const k = new Kernel(task);
 * await k.start();
 * while (!k.result) if (!k.turn()) waitForTraps(k.watch);
 * ```
 */
export class Kernel implements SyscallKernel {
  readonly mem: ProgramMemory;
  readonly tgid: number;
  readonly parentPid: number;
  /** What si_pid says for signals from outside the program (the CLI forwarding SIGINT): Node's pid, 0 from outside a namespace. */
  readonly senderPid: number;
  readonly region: SentryTask['region'];
  readonly signals: SignalDelivery;
  readonly futexes = new FutexTable();
  readonly strace: StracePrinter;
  readonly policy: Policy;
  /** The live threads, by tid. */
  readonly tasks = new Map<number, Task>();
  brkStart: bigint;
  brk: bigint;
  /** What /proc/self/exe reads as (changes with execve). */
  exe: string;
  /** How the program ended, once it has. */
  result?: SentryResult;
  /** The execve under way, if any (see ExecInProgress). */
  execing?: ExecInProgress;
  readonly #spec: SentryTask;
  readonly #file: NativeMemoryFile;
  readonly #sched: Scheduler;
  readonly #mailbox: Mailbox;
  readonly #traps: TrapHandler;
  #nextTid: number;
  /** Task lifecycle events not yet sent to the main thread (only when mirroring). */
  #mirrored: Array<[number, TaskEvent['type']]> = [];

  constructor(spec: SentryTask) {
    this.#spec = spec;
    this.#file = workerFile(spec.memory, Math.max(spec.queue.end, spec.main.slot.end));
    this.mem = new ProgramMemory(spec.pid);
    // What the program sees: its namespace's pids (a sandbox's init is its parent, pid 1).
    this.tgid = spec.nsPid;
    this.parentPid = spec.sandboxed ? SANDBOX_INIT_PID : spec.nodePid;
    this.senderPid = spec.sandboxed ? 0 : spec.nodePid;
    this.region = spec.region;
    this.#nextTid = spec.nsPid + 1;
    this.brkStart = this.brk = spec.brkStart;
    this.exe = spec.exe;
    this.strace = new StracePrinter(spec.trace, this.mem);
    this.policy = new Policy(spec.trace);
    this.signals = new SignalDelivery(this);
    const mailbox = (this.#mailbox = new Mailbox(spec.port, spec.mail, {
      onThreads: (tids) => this.#sched.setThreadTids(tids),
      onSignal: (signo) => {
        this.strace.signal(undefined, signo, undefined);
        this.signals.sendGroup(signo);
      },
      onFailedRequest: (message) => {
        throw new GroupExit({ kind: 'error', code: 'ESENTRY', message });
      },
    }));
    this.#sched = new Scheduler(new ContextQueue(spec.queue, this.#file, false), spec.maxSysmsgThreads, {
      liveTasks: () => this.tasks.values(),
      needThread: () => mailbox.post({ type: 'needThread' }),
      mail: mailbox.counter,
      beforeSleep: () => this.flush(),
    });
    this.#traps = new TrapHandler(this, this.#sched);
    const t = this.#newTask(this.tgid);
    t.regs.set(spec.main.regs);
    this.#bind(t, spec.main.id, spec.main.slot);
  }

  /** Syscalls and faults that trapped to this sentry (what tracing and emulation cost). */
  get traps(): number {
    return this.#traps.count;
  }

  /** The words whose change means work for this kernel: the stub's doorbell, then its mail. */
  get watch(): readonly WatchedWord[] {
    return (this.#watch ??= [this.#sched.queue.doorbell, this.#mailbox.counter]);
  }

  #watch?: readonly WatchedWord[];

  /** The stub's context queue (its doorbell is where the host sleeps). */
  get queue(): ContextQueue {
    return this.#sched.queue;
  }

  /** Loads the policy module; false (and a result) if it cannot be used. */
  async start(): Promise<boolean> {
    try {
      await this.policy.init();
      return true;
    } catch (e) {
      const message = e instanceof PolicyError ? e.message : `the policy module ${this.#spec.trace.policy} cannot be loaded: ${(e as Error).message ?? e}`;
      this.result = { kind: 'error', code: 'EPOLICY', message };
      return false;
    }
  }

  /**
   * One turn: mail, then what execve waits for, then queue what is runnable, handle what
   * trapped, timers, preemption. True if there was work (the host sleeps only after a turn
   * without any). Sets `result` when the program ended.
   */
  turn(): boolean {
    if (this.result) return false;
    try {
      let busy = this.#mailbox.drain();
      this.execing?.progress();
      this.#sched.queueReady();
      this.#sched.markDoorbell();
      busy = this.#traps.scan() || busy;
      this.#wakeExpired(performance.now());
      this.#sched.preempt();
      return busy;
    } catch (e) {
      this.#end(e);
      return true;
    }
  }

  /**
   * After a sleep with nothing published: a silent stub with tasks in it may be a dead one (a
   * death rings no doorbell). Ends the program then.
   */
  checkStub(): void {
    if (this.result || !this.#sched.anyInStub() || !stubGone(this.#spec.pid)) return;
    this.#end(new GroupExit({ kind: 'error', code: 'ESTUBDEAD', message: `stub ${this.#spec.pid} died while the program ran` }));
  }

  /** Ends the program from outside (the host is closing). */
  abort(message: string): void {
    if (!this.result) this.#end(new GroupExit({ kind: 'error', code: 'ECLOSED', message }));
  }

  /**
   * The program ends: a GroupExit; a misbehaving policy (it fails closed, never "pass" by
   * default); or a fault of the sentry itself, which ends this program only, never the host and
   * the other programs on it.
   */
  #end(e: unknown): void {
    const end =
      e instanceof GroupExit
        ? e
        : e instanceof PolicyError
          ? new GroupExit({ kind: 'error', code: e.code, message: e.message })
          : new GroupExit({ kind: 'error', code: 'ESENTRY', message: `internal error of the sentry: ${(e as Error)?.stack ?? e}` });
    for (const t of this.tasks.values()) t.send('EXIT');
    this.flush();
    const summary = this.strace.summaryText();
    this.result = { ...end.result, traps: this.traps, ...(summary ? { summary } : {}) };
  }

  /** Output and mirrored events go out (before the host sleeps, and at the end). */
  flush(): void {
    this.strace.flush();
    if (this.#mirrored.length === 0) return;
    this.#mailbox.post({ type: 'taskEvents', events: this.#mirrored });
    this.#mirrored = [];
  }

  /** The earliest wake-up of a task parked with a deadline (futex timeout or nanosleep). */
  nextDeadline(): number {
    let d = this.futexes.nextDeadline();
    for (const t of this.tasks.values()) if (t.sleep && t.sleep.deadline < d) d = t.sleep.deadline;
    return d;
  }

  /** A message to the main thread (see SentryRequest). */
  post(msg: SentryRequest): void {
    this.#mailbox.post(msg);
  }

  /** A task with tid `tid`, over private memory until bound to a context (see Task). */
  #newTask(tid: number): Task {
    const observer = this.#spec.mirror ? (t: Task, e: TaskEvent['type']) => this.#mirror(t, e) : undefined;
    const t = new Task(-1, tid, new ArrayBuffer(THREAD_CONTEXT.allocatedSize), observer);
    this.tasks.set(tid, t);
    return t;
  }

  /** Gives `t` its context: it runs from the next turn on, counted awake in the stub's queue. */
  #bind(t: Task, id: number, slot: FileRange): void {
    t.bind(id, this.#file.buffer(slot.start, slot.end - slot.start));
    this.#sched.adopt(t);
  }

  #mirror(t: Task, e: TaskEvent['type']): void {
    this.#mirrored.push([t.tid, e]);
    if (this.#mirrored.length >= MIRROR_BATCH) this.flush();
  }

  // ---- SyscallKernel -----------------------------------------------------------------------

  task(tid: number): Task | undefined {
    return this.tasks.get(tid);
  }

  park(t: Task, why: 'WAIT_FUTEX' | 'SLEEP' | 'SUSPEND' | 'WAIT_EXEC'): void {
    this.#sched.park(t, why);
  }

  /** Wakes a task parked in the sentry (futex, sigsuspend, nanosleep, execve) with `ret` as its result. */
  wake(t: Task, ret: bigint): void {
    if (!t.parked) return;
    this.futexes.remove(t);
    if (t.sleep) {
      // Interrupted: the time left goes to `rem` (relative sleeps), as the kernel writes it.
      if (ret === -BigInt(ERRNO.EINTR) && t.sleep.rem !== 0n) writeTimespec(this.mem, t.sleep.rem, Math.max(0, t.sleep.deadline - performance.now()));
      t.sleep = undefined;
    }
    this.#sched.unpark(t);
    this.#traps.finish(t, ret);
  }

  /** Gets a task to where it can take a signal: out of the stub, or out of a sleep (not execve's). */
  interruptForSignal(t: Task): void {
    if (t.inStub) this.#sched.interrupt(t);
    else if (t.parked && t.state !== 'blocked.exec') this.wake(t, -BigInt(ERRNO.EINTR));
  }

  liveTasks(): Iterable<Task> {
    return this.tasks.values();
  }

  newThread(parent: Task): Task {
    const child = this.#newTask(this.#nextTid++);
    child.regs.set(parent.regs);
    child.setFpImage(parent.fpImage());
    child.sigmask = parent.sigmask;
    this.strace.newThread();
    this.#mailbox.request((req) => ({ type: 'newContext', req }), 'context', (r) => {
      if (this.tasks.get(child.tid) === child) this.#bind(child, r.id, r.slot);
      else this.post({ type: 'contextExit', id: r.id }); // gone before it ran (execve, exit_group)
    });
    return child;
  }

  execve(t: Task, args: ExecArgs, onLoaded: (img: LoadedImage) => void): void {
    this.park(t, 'WAIT_EXEC');
    const kernel = this;
    this.execing = new ExecInProgress(
      {
        liveTasks: () => this.tasks.values(),
        interrupt: (o) => this.#sched.interrupt(o),
        remove: (o) => this.#remove(o),
        wake: (o, ret) => {
          kernel.execing = undefined;
          this.wake(o, ret);
        },
        resumeExeced: (o) => {
          kernel.execing = undefined;
          o.blocked = undefined;
          this.#sched.unpark(o);
          this.#traps.resume(o);
        },
        killGroup: (signo) => this.killGroup(signo),
        check: (path, done) => this.#mailbox.request((req) => ({ type: 'execCheck', req, path }), 'execChecked', (r) => done(r.errno)),
        load: (a, done) =>
          this.#mailbox.request((req) => ({ type: 'execLoad', req, path: a.path, file: a.file, argv: a.argv, envp: a.envp }), 'execLoaded', (r) =>
            done(r.errno !== 0 ? r.errno : { entry: r.entry!, sp: r.sp!, brkStart: r.brkStart!, exe: r.exe! }),
          ),
      },
      t,
      args,
      onLoaded,
    );
  }

  exitThread(t: Task, status: number): void {
    this.#remove(t);
    if (t.clearChildTid !== 0n) {
      this.mem.writeU32(t.clearChildTid, 0);
      this.futexes.wake(this, t.clearChildTid, 1, FUTEX.BITSET_MATCH_ANY);
    }
    if (this.tasks.size === 0) this.exitGroup(status);
  }

  /** `t` is gone: out of the scheduler, the futex table and the task map; its context released. */
  #remove(t: Task): void {
    if (t.bound) this.#sched.forget(t);
    else t.send('EXIT');
    this.futexes.remove(t);
    this.tasks.delete(t.tid);
    if (t.bound) this.post({ type: 'contextExit', id: t.id });
  }

  killGroup(signo: number): never {
    this.strace.killed(signo);
    throw new GroupExit({ kind: 'killed', signal: signo });
  }

  exitGroup(status: number): never {
    this.strace.exited(status);
    throw new GroupExit({ kind: 'exited', status: status & 0xff }); // exit statuses are 8 bits
  }

  #wakeExpired(now: number): void {
    for (const t of this.futexes.expired(now)) this.wake(t, -BigInt(ERRNO.ETIMEDOUT));
    for (const t of [...this.tasks.values()]) if (t.sleep && t.sleep.deadline <= now) this.wake(t, 0n);
  }
}
