import { ERRNO, FUTEX, SIG } from '../../abi/linux.js';
import { ContextState, THREAD_CONTEXT } from '../../abi/sysmsg.js';
import type { FileRange } from '../../memoryFile.js';
import type { TaskEvent } from '../../machines/task.js';
import { ContextQueue } from '../../shm/contextQueue.js';
import { workerFile } from '../../shm/sharedFile.js';
import { stubGone } from '../../shm/stubDeath.js';
import type { NativeMemoryFile } from '../../native.js';
import { ProgramMemory } from './memory.js';
import { Task } from './task.js';
import { FutexTable } from './futex.js';
import { SignalDelivery } from './signalDelivery.js';
import { Scheduler } from './scheduler.js';
import { Mailbox } from './mailbox.js';
import { TrapHandler } from './trap.js';
import { GroupExit } from './groupExit.js';
import { StracePrinter } from '../strace/printer.js';
import { Policy, PolicyError } from '../policy.js';
import type { ExecPort, SyscallKernel } from '../syscalls/context.js';
import type { SentryMail, SentryRequest, SentryResult, SentryTask } from '../protocol.js';

const STATE = THREAD_CONTEXT.state / 4;
/** Most task events sent to the main thread in one message. */
const MIRROR_BATCH = 256;
/** How long execve waits for the other threads to leave the stub before it gives up. */
const STOP_OTHERS_MS = 5000;

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
 * host program with passthrough needs). It runs on a runner worker and owns every task of the
 * program; its parts: the scheduler (tasks in and out of the stub), the trap handler (what a
 * trap comes to), signal delivery, the futex table, the mailbox to the main thread. Every trap
 * is handled here, on this thread, with no message per syscall. Preconditions: the stub has the
 * program's seccomp filter, the image is loaded and `task.main` holds the entry registers.
 *
 * @example
 * ```ts
 * // workers/sentry.ts
 * export default (task: SentryTask) => new Kernel(task).run();
 * ```
 */
export class Kernel implements SyscallKernel {
  readonly mem: ProgramMemory;
  readonly tgid: number;
  readonly parentPid: number;
  readonly region: SentryTask['region'];
  readonly signals: SignalDelivery;
  readonly futexes = new FutexTable();
  readonly strace: StracePrinter;
  readonly policy: Policy;
  readonly exec: ExecPort;
  /** The live threads, by tid. */
  readonly tasks = new Map<number, Task>();
  brkStart: bigint;
  brk: bigint;
  /** What /proc/self/exe reads as (changes with execve). */
  exe: string;
  readonly #file: NativeMemoryFile;
  readonly #sched: Scheduler;
  readonly #mailbox: Mailbox;
  readonly #traps: TrapHandler;
  #nextTid: number;
  /** Task lifecycle events not yet sent to the main thread (only when mirroring). */
  #mirrored: Array<[number, TaskEvent['type']]> = [];

  readonly #spec: SentryTask;

  constructor(spec: SentryTask) {
    const task = spec;
    this.#spec = spec;
    this.#file = workerFile(task.memory, Math.max(task.queue.end, task.main.slot.end));
    this.mem = new ProgramMemory(task.pid);
    this.tgid = task.pid;
    this.parentPid = task.nodePid;
    this.region = task.region;
    this.#nextTid = task.pid + 1;
    this.brkStart = this.brk = task.brkStart;
    this.exe = task.exe;
    this.strace = new StracePrinter(task.trace, this.mem);
    this.policy = new Policy(task.trace);
    this.signals = new SignalDelivery(this);
    this.#mailbox = new Mailbox(task.port, task.mail, {
      onThreads: (tids) => this.#sched.setThreadTids(tids),
      onSignal: (signo) => {
        this.strace.signal(undefined, signo, undefined);
        this.signals.sendGroup(signo);
      },
      onFailedRequest: (message) => {
        throw new GroupExit({ kind: 'error', code: 'ESENTRY', message });
      },
    });
    const mailbox = this.#mailbox;
    this.#sched = new Scheduler(new ContextQueue(task.queue, this.#file, false), task.maxSysmsgThreads, {
      liveTasks: () => this.tasks.values(),
      needThread: () => mailbox.post({ type: 'needThread' }),
      mail: mailbox.counter,
      beforeSleep: () => this.#flush(),
    });
    this.exec = {
      check: (path) => this.#mailbox.request<Extract<SentryMail, { type: 'execChecked' }>>((req) => ({ type: 'execCheck', req, path })).errno,
      load: (path, argv, envp) => {
        const r = this.#mailbox.request<Extract<SentryMail, { type: 'execLoaded' }>>((req) => ({ type: 'execLoad', req, path, argv, envp }));
        return r.errno !== 0 ? r.errno : { entry: r.entry!, sp: r.sp!, brkStart: r.brkStart!, exe: r.exe! };
      },
    };
    this.#traps = new TrapHandler(this, this.#sched);
    const t = this.#newTask(task.main.id, task.main.slot, this.tgid);
    t.regs.set(task.main.regs);
  }

  /** Syscalls and faults that trapped to this sentry (what tracing and emulation cost). */
  get traps(): number {
    return this.#traps.count;
  }

  /** A task over the context `id`, runnable at once. */
  #newTask(id: number, slot: FileRange, tid: number): Task {
    const observer = this.#spec.mirror ? (t: Task, e: TaskEvent['type']) => this.#mirror(t, e) : undefined;
    const t = new Task(id, tid, this.#file.buffer(slot.start, slot.end - slot.start), observer);
    this.tasks.set(tid, t);
    this.#sched.adopt(t);
    return t;
  }

  #mirror(t: Task, e: TaskEvent['type']): void {
    this.#mirrored.push([t.tid, e]);
    if (this.#mirrored.length >= MIRROR_BATCH) this.#flushMirror();
  }

  #flushMirror(): void {
    if (this.#mirrored.length === 0) return;
    this.#mailbox.post({ type: 'taskEvents', events: this.#mirrored });
    this.#mirrored = [];
  }

  /** Output and mirrored events go out before the worker sleeps or ends. */
  #flush(): void {
    this.strace.flush();
    this.#flushMirror();
  }

  /** Runs the program to its end. */
  async run(): Promise<SentryResult> {
    try {
      await this.policy.init();
    } catch (e) {
      const message = e instanceof PolicyError ? e.message : `the policy module ${this.#spec.trace.policy} cannot be loaded: ${(e as Error).message ?? e}`;
      return { kind: 'error', code: 'EPOLICY', message };
    }
    try {
      this.#loop();
    } catch (e) {
      // A policy that misbehaves ends the program: it fails closed, never "pass" by default.
      const end = e instanceof PolicyError ? new GroupExit({ kind: 'error', code: e.code, message: e.message }) : e;
      if (!(end instanceof GroupExit)) throw e;
      for (const t of this.tasks.values()) t.send('EXIT');
      this.#flush();
      const summary = this.strace.summaryText();
      return { ...end.result, traps: this.traps, ...(summary ? { summary } : {}) };
    }
  }

  /** Mail, then queue what is runnable, handle what trapped, else wait; timers; preemption. */
  #loop(): never {
    for (;;) {
      this.#mailbox.drain();
      this.#sched.queueReady();
      this.#sched.markDoorbell();
      if (!this.#traps.scan()) {
        const r = this.#sched.wait(this.#nextDeadline() - performance.now());
        if (r === 'ready') this.#traps.scan();
        else if (r === 'timeout' && this.#sched.anyInStub() && stubGone(this.tgid))
          throw new GroupExit({ kind: 'error', code: 'ESTUBDEAD', message: `stub ${this.tgid} died while the program ran` });
      }
      this.#wakeExpired(performance.now());
      this.#sched.preempt();
    }
  }

  /** A message to the main thread (see SentryRequest). */
  post(msg: SentryRequest): void {
    this.#mailbox.post(msg);
  }

  // ---- SyscallKernel -----------------------------------------------------------------------

  task(tid: number): Task | undefined {
    return this.tasks.get(tid);
  }

  park(t: Task, why: 'WAIT_FUTEX' | 'SLEEP' | 'SUSPEND'): void {
    this.#sched.park(t, why);
  }

  /** Wakes a task parked in the sentry (futex, sigsuspend, nanosleep) with `ret` as its result. */
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

  /** Gets a task to where it can take a signal: out of the stub, or out of a sleep. */
  interruptForSignal(t: Task): void {
    if (t.inStub) this.#sched.interrupt(t);
    else if (t.parked) this.wake(t, -BigInt(ERRNO.EINTR));
  }

  liveTasks(): Iterable<Task> {
    return this.tasks.values();
  }

  newThread(parent: Task): Task {
    const reply = this.#mailbox.request<Extract<SentryMail, { type: 'context' }>>((req) => ({ type: 'newContext', req }));
    const child = this.#newTask(reply.id, reply.slot, this.#nextTid++);
    child.regs.set(parent.regs);
    child.setFpImage(parent.fpImage());
    child.sigmask = parent.sigmask;
    this.strace.newThread();
    return child;
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
    this.#sched.forget(t);
    this.futexes.remove(t);
    this.tasks.delete(t.tid);
    this.#mailbox.post({ type: 'contextExit', id: t.id });
  }

  /** Stops every task but `keep` (execve): interrupts those in the stub and waits for them. */
  stopOthers(keep: Task): void {
    const deadline = performance.now() + STOP_OTHERS_MS;
    for (;;) {
      this.#sched.markDoorbell();
      let left = 0;
      for (const t of this.tasks.values()) {
        if (t === keep || !t.inStub || Atomics.load(t.u32, STATE) !== ContextState.None) continue;
        this.#sched.interrupt(t);
        left++;
      }
      if (left === 0) break;
      if (performance.now() > deadline) this.killGroup(SIG.SIGKILL);
      this.#sched.sleepOnDoorbell(5);
    }
    for (const t of [...this.tasks.values()]) if (t !== keep) this.#remove(t);
  }

  killGroup(signo: number): never {
    this.strace.killed(signo);
    throw new GroupExit({ kind: 'killed', signal: signo });
  }

  exitGroup(status: number): never {
    this.strace.exited(status);
    throw new GroupExit({ kind: 'exited', status: status & 0xff }); // exit statuses are 8 bits
  }

  // ---- timers ------------------------------------------------------------------------------

  /** The earliest wake-up of a task parked with a deadline (futex timeout or nanosleep). */
  #nextDeadline(): number {
    let d = this.futexes.nextDeadline();
    for (const t of this.tasks.values()) if (t.sleep && t.sleep.deadline < d) d = t.sleep.deadline;
    return d;
  }

  #wakeExpired(now: number): void {
    for (const t of this.futexes.expired(now)) this.wake(t, -BigInt(ERRNO.ETIMEDOUT));
    for (const t of [...this.tasks.values()]) if (t.sleep && t.sleep.deadline <= now) this.wake(t, 0n);
  }
}
