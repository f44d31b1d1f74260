import { endSigwait, takeWaited, wakeExpired, writeTimespec } from './waits.js';
import { stubCpuTime, type CpuTime } from './cpuTime.js';
import { JobControl } from './jobControl.js';
import { ProcessTimers } from './timers.js';
import { TaskAttrs } from './taskAttrs.js';
import { ProcessCpuClock } from './cpuClock.js';
import { ERRNO, FUTEX, SIG } from '../../abi/linux.js';
import { CONTEXT_QUEUE, TASK_ATTRS, THREAD_CONTEXT } from '../../abi/sysmsg.js';
import type { FileRange } from '../../memoryFile.js';
import type { TaskEvent } from '../../machines/task.js';
import { ContextQueue } from '../../shm/contextQueue.js';
import { workerFile, type MemoryFileRef } from '../../shm/sharedFile.js';
import { stubGone } from '../../shm/stubDeath.js';
import type { WatchedWord } from '../../shm/watchedWord.js';
import type { NativeMemoryFile } from '../../native.js';
import { ProgramMemory } from './memory.js';
import { Task } from './task.js';
import type { FutexTable } from './futex.js';
import { futexKey } from './futexKey.js';
import { SignalDelivery } from './signalDelivery.js';
import { Scheduler } from './scheduler.js';
import { TrapHandler } from './trap.js';
import { ringEnd } from './traceRing.js';
import { GroupExit } from './groupExit.js';
import { ExecInProgress, type ExecArgs } from './execve.js';
import { execRequests } from './localExec.js';
import type { SyscallMsg } from './stubCalls.js';
import type { LoadedImage, SyscallKernel } from '../syscalls/context.js';
import type { SentryRequest } from '../protocol.js';
import type { Proc, ProcessEnd, TreeHost } from './process.js';
import type { UserTrap } from '../../shm/usertrap.js';
import type { ProcessSpec } from './processSpec.js';

export type { ProcessSpec };
export type { ProcessEnd };

/**
 * One process of the program tree (gVisor's kernel.ThreadGroup with its MM): its stub, its
 * threads (tasks), its signal actions and pending signals, its futexes (private to its address
 * space), its break and executable, and its place in the tree (parent, children, process group,
 * session). The tree (Kernel) owns the processes and everything between them: fork, wait,
 * signals to other processes. Handlers get a ThreadGroup as their kernel (SyscallKernel).
 * Preconditions: the stub has the program's seccomp filter; the caller sets the first task's
 * registers (an image's entry, or a copy of the forking thread's).
 *
 * @example
 * ```ts
 * const p = new ThreadGroup(tree, spec, parent);
 * p.mainTask.regs.set(entryRegs);
 * while (p.live) p.step();
 * ```
 */
export class ThreadGroup implements SyscallKernel, Proc {
  readonly tree: TreeHost;
  readonly mem: ProgramMemory;
  /** Its pid as the program sees it (its namespace's). */
  readonly tgid: number;
  /** Its stub's pid as Node sees it. */
  readonly hostPid: number;
  readonly signals: SignalDelivery;
  readonly timers: ProcessTimers = new ProcessTimers(this);
  /** Credentials, limits, nice, affinity: the same on every stub thread (see TaskAttrs). */
  readonly attrs: TaskAttrs;
  readonly cpuClock = new ProcessCpuClock(() => [this.hostPid, ...this.#sched.hostTids()]);
  /** The live threads, by tid. */
  readonly tasks = new Map<number, Task>();
  /** Its parent in the tree; undefined: the tree's own parent (Node, or a sandbox's init). */
  parent?: Proc;
  readonly children = new Set<Proc>();
  pgid: number;
  sid: number;
  /** The signal its parent gets when it ends (clone's exit signal; 0 for none). */
  exitSignal: number = SIG.SIGCHLD;
  /** PR_SET_PDEATHSIG: the signal it gets when its parent ends (0: none). */
  pdeathSignal = 0;
  /** PR_SET_CHILD_SUBREAPER: orphans below it come to it, not to the tree's parent. */
  subreaper = false;
  /** Its parent's thread waiting for it to exec or exit (CLONE_VFORK). */
  vforkParent?: Task;
  /** How it ended (a zombie until its parent waits for it). */
  end?: ProcessEnd;
  /** See Proc.cpu and Proc.childCpu. Reaped: gone from the tree. Usertrap: its syscall patching, if on. */
  cpu?: CpuTime;
  childCpu?: CpuTime;
  reaped = false;
  usertrap?: UserTrap;
  brkStart: bigint;
  brk: bigint;
  /** What /proc/self/exe reads as (changes with execve). */
  exe: string;
  /** Stopped or running (SIGSTOP and friends, SIGCONT), and what its parent has yet to hear. */
  readonly job: JobControl;
  /** The execve under way, if any (see ExecInProgress). */
  execing?: ExecInProgress;
  readonly #spec: ProcessSpec;
  readonly file: NativeMemoryFile;
  /** `file`, when it is the process's own (a fork child's control memory: see EndedMemory). */
  readonly ownMemory?: MemoryFileRef;
  /** Its rules area in `file` (see ProcessSpec.rules). */
  readonly rules?: FileRange;
  /** A fork child's first sysmsg thread, while the sentry holds its loop for the answer (see PostedFirstThread). */
  firstThread?: { settle(waitMs?: number): void };
  readonly syscallMsg?: SyscallMsg;
  readonly #sched: Scheduler;
  /** See SyscallKernel.afterCall (the trap handler runs them when the call returns). */
  readonly afterCall = (fn: () => void): void => this.#traps.afterCall(fn);
  readonly #traps: TrapHandler;
  /** What others did to this process, to run in its turn (see defer). */
  readonly #deferred: Array<() => void> = [];

  constructor(tree: TreeHost, spec: ProcessSpec, parent?: Proc) {
    this.tree = tree;
    this.#spec = spec;
    this.file = workerFile(spec.memory, Math.max(ringEnd(spec.queue), spec.main.slot.end));
    if (spec.ownMemory) this.ownMemory = spec.memory;
    if (spec.rules) this.rules = spec.rules;
    this.mem = new ProgramMemory(spec.pid, tree.region);
    this.tgid = spec.nsPid;
    this.hostPid = spec.pid;
    this.syscallMsg = spec.syscallMsg;
    this.parent = parent;
    this.pgid = parent?.pgid ?? spec.nsPid;
    this.sid = parent?.sid ?? spec.nsPid;
    this.brkStart = this.brk = spec.brkStart;
    this.exe = spec.exe;
    this.signals = new SignalDelivery(this);
    this.attrs = new TaskAttrs(this.file.buffer(spec.queue.start + CONTEXT_QUEUE.attrs, TASK_ATTRS.size), parent?.attrs.values);
    this.#sched = new Scheduler(new ContextQueue(spec.queue, this.file, false), tree.maxSysmsgThreads, {
      liveTasks: () => this.tasks.values(),
      needThread: () => tree.post({ type: 'needThread', pid: this.tgid }),
      stopped: () => this.job.stopped,
    });
    this.#traps = new TrapHandler(this, this.#sched);
    this.job = new JobControl({
      liveTasks: () => this.tasks.values(),
      interrupt: (t) => this.#sched.interrupt(t),
      makeReady: (t) => this.#sched.makeReady(t),
      changed: () => tree.jobChanged(this),
    });
    const t = this.#newTask(this.tgid);
    this.#bind(t, spec.main.id, spec.main.slot);
  }

  get self(): ThreadGroup {
    return this;
  }

  /** The first thread (its registers are the caller's to set before the first turn). */
  get mainTask(): Task {
    return this.tasks.get(this.tgid)!;
  }

  /** Still running (not a zombie). */
  get live(): boolean {
    return this.end === undefined;
  }

  get strace() {
    return this.tree.strace;
  }

  traceSignal(tid: number, signo: number, info: Uint8Array): void {
    this.strace.signal(tid, signo, info);
  }

  /** The tree's futex table (keys say whose word: see FutexKey). */
  get futexes(): FutexTable {
    return this.tree.futexes;
  }

  get policy() {
    return this.tree.policy;
  }

  get region() {
    return this.tree.region;
  }

  /** What getppid answers: its parent, else the tree's parent (a sandbox's init, or Node). */
  get parentPid(): number {
    return this.parent?.tgid ?? this.tree.outsideParentPid;
  }

  /** Who signals from outside the program seem to come from. */
  get senderPid(): number {
    return this.tree.senderPid;
  }

  /** The stub's context queue (its doorbell is where the host sleeps). */
  get queue(): ContextQueue {
    return this.#sched.queue;
  }

  /** Syscalls and faults that trapped here. */
  get traps(): number {
    return this.#traps.count;
  }

  setThreadTids(tids: Array<[number, number]>): void {
    this.#sched.setThreadTids(tids, this.hostPid);
  }

  /**
   * One turn of this process: what execve waits for, what is runnable into the stub, what
   * trapped, timers, preemption. True if there was work. A GroupExit ends the process (see
   * Kernel.processEnded); anything else thrown is the sentry's own failure.
   */
  step(now: number): boolean {
    this.firstThread?.settle();
    this.execing?.progress();
    // Traps first, answered into the stub at once; then timers, whose tasks go in this turn too.
    this.#sched.queueReady(now);
    let busy = this.#traps.scan();
    this.#sched.queueReady(now);
    busy = this.timers.expire(now) || busy;
    busy = wakeExpired(this, now) || busy;
    this.#sched.queueReady(now);
    this.#traps.takeDeferred();
    this.#sched.preempt();
    // The mark for the next scan and wait, read after the answers: a trap's publish has just
    // written the doorbell's line. What comes between the scan and it, lookBeforeWait finds.
    this.#sched.markDoorbell();
    return busy;
  }

  /** See Scheduler.lookBeforeWait (the signals stub threads deferred are the trap handler's). */
  lookBeforeWait(hot: WatchedWord[]): number {
    return this.#sched.lookBeforeWait(hot, this.#traps.deferredPending);
  }

  /** Whether some task of this process runs in its stub (and so may trap). */
  anyInStub(): boolean {
    return this.#sched.anyInStub();
  }

  /**
   * Whether the stub is gone (a death rings no doorbell). Asked of every live process, also
   * when all its tasks are parked in the sentry (a sleep, a wait, a stop): the host's SIGKILL
   * of a sleeping process's stub ends it then, as Linux's would, not when it wakes.
   */
  stubDied(): boolean {
    return this.live && stubGone(this.#spec.pid);
  }

  /** The process ended: every task gone from the scheduler and the tree (its CPU time taken first, while its stub is there). */
  endTasks(): void {
    this.#traps.endRing();
    this.cpu ??= stubCpuTime(this.hostPid);
    for (const t of this.tasks.values()) {
      t.send('EXIT');
      this.futexes.remove(t);
      this.tree.forgetWaiter(t);
      this.tree.table.removeThread(t.tid);
      this.tree.policy.forget(t.tid);
    }
    this.tasks.clear();
    this.#deferred.length = 0;
  }

  /** Runs `fn` in this process's own turn: what another process (or the outside) does to it,
   * so that its handlers run, and it ends, in its own context (see Kernel.current). */
  defer(fn: () => void): void {
    if (!this.live) return;
    if (this.tree.current === this) fn();
    else this.#deferred.push(fn);
  }

  /** Runs what was deferred to this process's turn; true if there was any. Precondition: its turn. */
  runDeferred(): boolean {
    if (this.#deferred.length === 0) return false;
    for (const fn of this.#deferred.splice(0)) if (this.live) fn();
    return true;
  }

  /** The earliest wake-up of a task parked with a deadline (nanosleep; futex timeouts are the tree's) or of a timer. */
  nextDeadline(): number {
    let d = this.timers.nextDeadline();
    for (const t of this.tasks.values()) if (t.sleep && t.sleep.deadline < d) d = t.sleep.deadline;
    return d;
  }

  post(msg: SentryRequest): void {
    this.tree.post(msg);
  }

  /** A task with tid `tid`, over private memory until bound to a context (see Task). */
  #newTask(tid: number): Task {
    const t = new Task(-1, tid, new ArrayBuffer(THREAD_CONTEXT.allocatedSize), this.tree.taskObserver);
    this.tasks.set(tid, t);
    this.tree.table.addThread(t, this);
    return t;
  }

  /** Gives `t` its context: it runs from the next turn on, counted awake in the stub's queue. */
  #bind(t: Task, id: number, slot: FileRange): void {
    t.bind(id, this.file.buffer(slot.start, slot.end - slot.start));
    this.#sched.adopt(t);
  }

  // ---- SyscallKernel -----------------------------------------------------------------------

  task(tid: number): Task | undefined {
    return this.tasks.get(tid);
  }

  park(t: Task, why: 'WAIT_FUTEX' | 'SLEEP' | 'SUSPEND' | 'WAIT_EXEC'): void {
    this.#sched.park(t, why);
  }

  /** Wakes a task parked in the sentry (futex, sigsuspend, nanosleep, execve, wait) with `ret` as its result. */
  wake(t: Task, ret: bigint): void {
    if (!t.parked) return;
    this.futexes.remove(t);
    this.tree.forgetWaiter(t);
    endSigwait(t);
    if (t.sleep) {
      // Interrupted: the time left goes to `rem` (relative sleeps), as the kernel writes it.
      if (ret === -BigInt(ERRNO.EINTR) && t.sleep.rem !== 0n) writeTimespec(this.mem, t.sleep.rem, Math.max(0, t.sleep.deadline - performance.now()));
      t.sleep = undefined;
    }
    this.#sched.unpark(t);
    this.#traps.finish(t, ret);
  }

  /** Ends a park and restarts the call it sleeps in once the task runs again (SA_RESTART). */
  restart(t: Task): void {
    if (!t.parked) return;
    this.futexes.remove(t);
    this.tree.forgetWaiter(t);
    this.#sched.unpark(t);
    this.#traps.restart(t);
  }

  /** Gets a task to where it can take a signal: out of the stub, or out of a sleep (not execve's or vfork's). */
  interruptForSignal(t: Task): void {
    if (t.inStub || t.state === 'ready') this.#sched.interrupt(t);
    else if (t.parked && t.state !== 'blocked.exec') {
      if (t.sigwait) this.wake(t, takeWaited(this, t));
      else if (!this.signals.interrupts(t)) return; // only ignored ones: the sleep goes on
      else if (t.interruptedAs === ERRNO.ERESTARTSYS && this.signals.restarts(t)) this.restart(t);
      else this.wake(t, -BigInt(ERRNO.EINTR));
    }
  }

  liveTasks(): Iterable<Task> {
    return this.tasks.values();
  }

  newThread(parent: Task): Task {
    const child = this.#newTask(this.tree.allocateTid());
    child.regs.set(parent.regs);
    child.setFpImage(parent.fpImage());
    child.sigmask = parent.sigmask;
    child.comm = parent.comm;
    this.strace.attached(child.tid);
    this.tree.requestContext(this, (r) => {
      if (this.tasks.get(child.tid) === child) this.#bind(child, r.id, r.slot);
      else this.post({ type: 'contextExit', pid: this.tgid, id: r.id }); // gone before it ran (execve, exit_group)
    });
    return child;
  }

  /** The first thread of a forked process: a copy of the forking thread (see Kernel.fork). */
  adoptForkedThread(from: Task): Task {
    const t = this.mainTask;
    t.regs.set(from.regs);
    t.setFpImage(from.fpImage());
    t.sigmask = from.sigmask;
    t.altstack = { ...from.altstack };
    t.comm = from.comm;
    return t;
  }

  execve(t: Task, args: ExecArgs, onLoaded: (img: LoadedImage) => void): void {
    this.park(t, 'WAIT_EXEC');
    const tree = this.tree;
    this.execing = new ExecInProgress(
      {
        liveTasks: () => this.tasks.values(),
        interrupt: (o) => this.#sched.interrupt(o),
        remove: (o) => this.#remove(o),
        wake: (o, ret) => {
          this.execing = undefined;
          this.wake(o, ret);
        },
        resumeExeced: (o) => {
          this.execing = undefined;
          o.blocked = undefined;
          this.#sched.unpark(o);
          this.#traps.resume(o);
          tree.execed(this);
        },
        killGroup: (signo) => this.killGroup(signo),
        ...execRequests(this),
      },
      t,
      args,
      onLoaded,
    );
  }

  exitThread(t: Task, status: number): void {
    // strace -f's line for a thread that ends alone (the leader's waits for its whole process).
    if (t.tid !== this.tgid && this.tasks.size > 1) this.strace.exited(status, t.tid);
    this.#remove(t);
    if (t.clearChildTid !== 0n) {
      this.mem.writeU32(t.clearChildTid, 0);
      // The kernel's wake at thread exit is a shared one: the word's key, as futex() would make it.
      const key = futexKey(this, t.clearChildTid, true);
      if (key) this.futexes.wake(this.tree, key, 1, FUTEX.BITSET_MATCH_ANY);
    }
    if (this.tasks.size === 0) this.exitGroup(status);
  }

  /** `t` is gone: out of the scheduler, the futex table and the task maps; its context released. */
  #remove(t: Task): void {
    if (t.bound) this.#sched.forget(t);
    else t.send('EXIT');
    this.futexes.remove(t);
    this.tree.forgetWaiter(t);
    this.tasks.delete(t.tid);
    this.tree.table.removeThread(t.tid);
    this.tree.policy.forget(t.tid);
    if (t.bound) this.post({ type: 'contextExit', pid: this.tgid, id: t.id });
  }

  stopGroup(signo: number): void {
    // SIGTSTP, SIGTTIN and SIGTTOU do not stop an orphaned process group (nobody would continue it).
    if (signo !== SIG.SIGSTOP && this.tree.orphanedGroup(this.pgid)) return;
    this.job.stop(signo);
  }

  continueGroup(): void {
    this.job.continue();
  }

  killGroup(signo: number): never {
    throw new GroupExit({ kind: 'killed', signal: signo });
  }

  exitGroup(status: number): never {
    throw new GroupExit({ kind: 'exited', status: status & 0xff }); // exit statuses are 8 bits
  }

  /** Wakes the tasks whose futex timeout or sleep has ended; true if there was one. */
}

export type { TaskEvent };
