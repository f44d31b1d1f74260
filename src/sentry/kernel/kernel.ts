import { ERRNO, SA_NOCLDSTOP, SIG } from '../../abi/linux.js';
import type { FileRange } from '../../memoryFile.js';
import type { TaskEvent } from '../../machines/task.js';
import type { WatchedWord } from '../../shm/watchedWord.js';
import type { NativeMemoryFile } from '../../native.js';
import type { ContextQueue } from '../../shm/contextQueue.js';
import { Task } from './task.js';
import { EndedMemory } from './endedMemory.js';
import { forkLocally, forkRules, setUpForkChild, type LocalForkKernel } from './forkChild.js';
import { Mailbox, type Reply, type RequestBody } from './mailbox.js';
import { GroupExit } from './groupExit.js';
import { ThreadGroup } from './threadGroup.js';
import type { ForkOptions, LocalExecState, Proc, ProcessEnd, TreeHost } from './process.js';
import { ProcessTable, childInfo, eventDetail } from './processTable.js';
import { jobInfo, signalFromOutside } from './jobControl.js';
import { FutexTable } from './futex.js';
import { StubSignals } from './stubSignals.js';
import type { StracePrinter } from '../strace/printer.js';
import { silentPrinter, tracePrinter } from './tracing.js';
import { Policy, PolicyError } from '../policy.js';
import type { RingStats, SentryMail, SentryRequest, SentryResult, SentryTask } from '../protocol.js';
import { startTraceRing } from '../traceRingSpec.js';
import { UserTrap } from '../../shm/usertrap.js';
import { fsgsbaseAllowed } from '../../shm/hostCpu.js';

/** The pid of a sandbox's init in its namespace (the tree's parent when sandboxed); most task events in one message. */
const SANDBOX_INIT_PID = 1;
const MIRROR_BATCH = 256;

/** A doorbell the host sleeps on: a word of a process's queue, in that process's file. */
export interface Doorbell {
  file: NativeMemoryFile;
  queue: ContextQueue;
}

/**
 * The sentry of one program: a tree of processes (gVisor's kernel.Kernel with its PIDNamespace
 * and TaskSet, reduced to what running host programs with passthrough needs). It owns the
 * processes (ThreadGroup, one stub each) and what lies between them: their table (pids, tids,
 * process groups), fork, exit and wait, signals from one to another and from outside, and the
 * mailbox to the main thread, tracing and policy, shared by all. A sentry host
 * (src/sentry/host.ts) runs the kernels of several programs on one worker thread, turn after
 * turn: a kernel never blocks, and every trap is handled on that thread with no message per
 * syscall. What one process does to another is deferred into the other's own turn
 * (ThreadGroup.defer): its handlers, its end, run there and nowhere else.
 *
 * The program ends when its last process has: its result is the first process's end (strace
 * -f waits for the whole tree the same way).
 *
 * @example
 * ```ts
 * const k = new Kernel(task);
 * await k.start();
 * while (!k.result) if (!k.turn()) waitForTraps(k.watch);
 * ```
 */
export class Kernel implements TreeHost, LocalForkKernel {
  /** Silent until start() gives the run's own (loaded only when the run traces or counts). */
  strace: StracePrinter = silentPrinter();
  readonly policy: Policy;
  readonly region: SentryTask['region'];
  /** See TreeHost.localExec. */
  readonly localExec?: LocalExecState;
  /** See LocalForkKernel.localFork and .forks. */
  readonly localFork: boolean;
  readonly forks = { sentry: 0, main: 0 };
  readonly maxSysmsgThreads: number;
  /** What the first process's getppid answers: a sandbox's init, or Node. */
  readonly outsideParentPid: number;
  /** What si_pid says for signals from outside the program (the CLI forwarding SIGINT): Node's pid, 0 from outside a namespace. */
  readonly senderPid: number;
  readonly sandboxed: boolean;
  /** Every process, live or zombie, and every thread (see ProcessTable). */
  readonly table: ProcessTable<ThreadGroup>;
  /** Futex waiters of every process (keys say whose word). */
  readonly futexes = new FutexTable();
  /** The controlling terminal's foreground group (see sys_tty.ts). Protected by: the worker's turn. */
  readonly terminal: { foreground?: number; device?: string } = {};
  /** The first process (whose end is the program's). */
  readonly root: ThreadGroup;
  /** How the program ended, once it has. */
  result?: SentryResult;
  /** Observed calls go through the stubs' trace rings (see startTraceRing): their size and counts. */
  readonly traceRing?: { readonly size: number; readonly calls: ReadonlySet<number>; readonly stats: RingStats };
  /** The process whose turn it is (what one process does to another waits for the other's turn). */
  current?: ThreadGroup;
  readonly #spec: SentryTask;
  readonly #mailbox: Mailbox;
  readonly #endedMemory = new EndedMemory(() => this.localExec?.pending ?? 0);
  /** Traps of processes that have ended (the total is reported at the end). */
  #pastTraps = 0;
  /** Task lifecycle events not yet sent to the main thread (only when mirroring). */
  #mirrored: Array<[number, TaskEvent['type']]> = [];
  /** Bumped when the set of doorbells changes (a process comes or goes): the host rebuilds its words. */
  watchVersion = 0;
  /** Signals sent to a stub while its process is parked (see StubSignals); taken through the main thread. */
  readonly #stubSignals = new StubSignals({ takeSignals: (p, set, then) => this.request({ type: 'takeSignals', pid: p.tgid, set }, 'signalsTaken', (r) => p.defer(() => then(r.signals))) });

  constructor(spec: SentryTask) {
    this.#spec = spec;
    this.region = spec.region;
    this.maxSysmsgThreads = spec.maxSysmsgThreads;
    if (spec.localExec) this.localExec = { pending: 0, here: 0, main: 0 };
    this.localFork = spec.localFork === true;
    this.sandboxed = spec.sandboxed;
    this.outsideParentPid = spec.sandboxed ? SANDBOX_INIT_PID : spec.nodePid;
    this.senderPid = spec.sandboxed ? 0 : spec.nodePid;
    this.table = new ProcessTable<ThreadGroup>();
    this.table.onReap = (p) => this.#processEvent(p, 'REAP');
    this.policy = new Policy(spec.trace);
    this.#mailbox = new Mailbox(spec.port, spec.mail, {
      onThreads: (pid, tids) => this.table.process(pid)?.setThreadTids(tids),
      onSignal: (signo) => signalFromOutside(this, signo),
      onStubDead: (pid) => this.#stubDead(pid),
      onFailedRequest: (message) => {
        throw new GroupExit({ kind: 'error', code: 'ESENTRY', message });
      },
    });
    this.root = this.adoptChild({ pid: spec.pid, nsPid: spec.nsPid, memory: spec.memory, queue: spec.queue, main: spec.main, brkStart: spec.brkStart, exe: spec.exe, ...(spec.syscallMsg ? { syscallMsg: spec.syscallMsg } : {}), ...(spec.rules ? { rules: spec.rules } : {}) }, undefined);
    this.root.mainTask.regs.set(spec.main.regs);
    if (spec.usertrap) this.root.usertrap = new UserTrap(spec.usertrap.table, new Set(spec.usertrap.calls), spec.usertrap.syshandler, fsgsbaseAllowed());
    this.root.mainTask.comm = spec.comm ?? '';
    this.traceRing = startTraceRing(spec);
  }

  /** Receives every task's lifecycle events when the platform is inspected. */
  get taskObserver(): ((t: Task, e: TaskEvent['type']) => void) | undefined {
    return this.#spec.mirror ? (t, e) => this.#mirror(t, e) : undefined;
  }

  /** The mail counter (a wait for traps stops when it moves). */
  get mailCounter(): WatchedWord {
    return this.#mailbox.counter;
  }

  /** Syscalls and faults that trapped to this sentry (what tracing and emulation cost). */
  get traps(): number {
    return [...this.table.live()].reduce((n, p) => n + p.traps, this.#pastTraps);
  }

  /** The words whose change means work for this kernel: each live process's doorbell, then the mail. */
  get watch(): readonly WatchedWord[] {
    return [...[...this.table.live()].map((p) => p.queue.doorbell), this.#mailbox.counter];
  }

  /** Every live process's doorbell (where the host sleeps). */
  doorbells(): Doorbell[] {
    return [...this.table.live()].map((p) => ({ file: p.file, queue: p.queue }));
  }

  /** Loads the policy module; false (and a result) if it cannot be used. */
  async start(): Promise<boolean> {
    this.strace = await tracePrinter(this.#spec.trace, this.table, () => this.root);
    // The exec systrap made before the program ran: strace's first line.
    this.strace.start(this.root.tgid, this.root.mainTask.reg('rsp'), this.#spec.loadNs);
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
   * One turn: mail, then each live process's turn (its deferred work first). True if there was
   * work (the host sleeps only after a turn without any). Sets `result` once the last has ended.
   */
  turn(): boolean {
    if (this.result) return false;
    let busy = false;
    try {
      busy = this.#mailbox.drain();
    } catch (e) {
      this.#fail(e);
      return true;
    }
    const now = performance.now();
    for (const p of this.table.live()) {
      this.current = p;
      try {
        busy = p.runDeferred() || busy;
        busy = p.step(now) || busy;
      } catch (e) {
        busy = true;
        if (e instanceof GroupExit && e.result.kind !== 'error') this.processEnded(p, e.result);
        else {
          this.current = undefined;
          this.#fail(e);
          return true;
        }
      }
      this.current = undefined;
      if (this.result) return true;
    }
    this.#stubSignals.poll(this.table.live(), now);
    if (!this.table.anyLive()) this.#finish();
    return busy;
  }

  /**
   * After a sleep with nothing published: a silent stub with tasks in it may be a dead one (a
   * death rings no doorbell). The first process's death ends the program with ESTUBDEAD (the
   * runtime lost it); another's is a SIGKILL (what the program sees when the host kills one).
   */
  checkStub(): void {
    for (const p of [...this.table.live()]) if (!this.result && p.stubDied()) this.#stubDead(p.tgid);
  }

  /** Process `pid`'s stub died (seen by checkStub, or under a request of the main thread's). */
  #stubDead(pid: number): void {
    const p = this.table.process(pid);
    if (!p || !p.live) return;
    if (p === this.root) this.#fail(new GroupExit({ kind: 'error', code: 'ESTUBDEAD', message: `stub ${p.hostPid} died while the program ran` }));
    else this.processEnded(p, { kind: 'killed', signal: SIG.SIGKILL });
    if (!this.result && !this.table.anyLive()) this.#finish();
  }

  /** Ends the program from outside (the host is closing). */
  abort(message: string): void {
    if (!this.result) this.#fail(new GroupExit({ kind: 'error', code: 'ECLOSED', message }));
  }

  /**
   * Process `p` ended (exit_group, a fatal signal, its stub's death): its tasks go, its stub
   * is released, it becomes a zombie for its parent (or is reaped at once when nobody will
   * wait), its children go to their new parent, and whoever waits for it hears of it.
   */
  processEnded(p: ThreadGroup, end: ProcessEnd): void {
    if (!p.live) return;
    if (end.kind === 'exited') this.strace.exited(end.status, p.tgid);
    else this.strace.killed(end.signal, p.tgid);
    this.#pastTraps += p.traps;
    p.end = end;
    this.#processEvent(p, 'EXIT');
    p.endTasks();
    this.table.signalfds.ended(p.tgid);
    this.watchVersion++;
    this.post({ type: 'processExit', pid: p.tgid });
    const vfork = p.vforkParent;
    if (vfork) {
      p.vforkParent = undefined;
      this.table.thread(vfork.tid)?.process.defer(() => this.table.thread(vfork.tid)?.process.wake(vfork, BigInt(p.tgid)));
    }
    this.table.reparentChildren(p, (orphan) => this.#notifyParent(orphan));
    this.#notifyParent(p);
    this.#endedMemory.add(p.ownMemory);
  }

  /** A process's exit reaches its parent: its exit signal, its waiters, or an immediate reap. */
  #notifyParent(p: Proc): void {
    if (p.live) return;
    const parent = p.parent;
    if (!parent || !parent.live) {
      // The tree's parent (Node, or the sandbox's init) reaps what is left to it.
      this.table.reap(p);
      return;
    }
    parent.defer(() => {
      if (p.reaped) return;
      const info = childInfo(p);
      if (p.exitSignal === SIG.SIGCHLD && parent.signals.autoReapsChildren()) this.table.reap(p);
      // A wait the child's end satisfies returns its pid (not EINTR), and takes the signal on its way back.
      parent.signals.holdInterrupts(() => {
        if (p.exitSignal !== 0) parent.signals.sendGroup(p.exitSignal, info);
        this.table.wakeWaiters(parent);
      });
    });
  }

  /**
   * An orphaned process group: no live member has its parent in another group of the same
   * session. The first process's parent is outside the tree (Node, or the sandbox's init: the
   * program's shell, as it were), so its group is never orphaned while it lives.
   */
  orphanedGroup(pgid: number): boolean {
    for (const q of this.table.live()) {
      if (q.pgid !== pgid) continue;
      if (q === this.root) return false;
      const parent = q.parent;
      if (parent && parent.live && parent.pgid !== pgid && parent.sid === q.sid) return false;
    }
    return true;
  }

  /** A child stopped or continued: its parent's SIGCHLD (unless SA_NOCLDSTOP) and waits. */
  jobChanged(p: Proc): void {
    this.#processEvent(p, p.job.stopped ? 'STOP' : 'CONTINUE');
    if (p === this.root) this.post({ type: 'rootStopped', stopped: p.job.stopped, signo: p.job.report?.signo ?? 0 });
    const parent = p.parent;
    if (!parent || !parent.live) return;
    const report = p.job.report;
    parent.defer(() => {
      parent.signals.holdInterrupts(() => {
        if (report && (parent.signals.actions.get(SIG.SIGCHLD).flags & SA_NOCLDSTOP) === 0n) parent.signals.sendGroup(SIG.SIGCHLD, jobInfo(p.tgid, report));
        this.table.wakeWaiters(parent);
      });
    });
  }

  /** The program ends as a whole: a sentry fault, a corrupted stub, a dead first stub. */
  #fail(e: unknown): void {
    const end =
      e instanceof GroupExit
        ? e
        : e instanceof PolicyError
          ? new GroupExit({ kind: 'error', code: e.code, message: e.message })
          : new GroupExit({ kind: 'error', code: 'ESENTRY', message: `internal error of the sentry: ${(e as Error)?.stack ?? e}` });
    for (const p of [...this.table.live()]) {
      this.#pastTraps += p.traps;
      p.end = { kind: 'killed', signal: SIG.SIGKILL };
      p.endTasks();
    }
    this.#result(end.result);
  }

  #finish = (): void => this.#result(this.root.end!);

  #result(r: SentryResult): void {
    this.table.signalfds.closeAll();
    this.flush();
    for (const p of this.table.live()) this.#endedMemory.add(p.ownMemory);
    this.#endedMemory.release(true);
    this.strace.close();
    const summary = this.strace.summaryText();
    this.result = { ...r, traps: this.traps, ...(summary ? { summary } : {}), ...(this.root.usertrap ? { patched: { ...this.root.usertrap.stats } } : {}), ...(this.traceRing ? { ring: { ...this.traceRing.stats } } : {}), ...(this.localExec ? { execs: { sentry: this.localExec.here, main: this.localExec.main } } : {}), forks: { ...this.forks } };
  }

  /**
   * Output, notices and mirrored events go out (before the host sleeps, and at the end): the
   * main thread's work for them (actors, a stub's release) then takes a CPU the program is not
   * waiting for (see Mailbox.notice).
   */
  flush(): void {
    this.strace.flush();
    this.#mailbox.flushNotices();
    if (this.#mirrored.length === 0) return;
    this.#mailbox.post({ type: 'taskEvents', events: this.#mirrored });
    this.#mirrored = [];
  }

  /** The earliest wake-up of a task parked with a deadline (futex timeout or nanosleep), or of the stub signal poll. */
  nextDeadline(): number {
    let d = Math.min(this.futexes.nextDeadline(), this.#stubSignals.nextDeadline());
    for (const p of this.table.live()) d = Math.min(d, p.nextDeadline());
    return d;
  }

  /** A message to the main thread (see SentryRequest); notices wait for the host's idle moment (see Mailbox.notice). */
  post(msg: SentryRequest): void {
    this.#mailbox.post(msg);
  }

  /** The host has nothing to do at once: ended processes' memory is let go (notices wait for its sleep, see flush). */
  idle(): void {
    this.#endedMemory.release();
  }

  /** A request to the main thread; `onReply` runs in the turn its reply arrives. */
  request<T extends SentryMail['type']>(body: RequestBody, replyType: T, onReply: (r: Reply<T>) => void): void {
    this.#mailbox.request(body, replyType, onReply);
  }

  /** A context for a new thread of `p` (see ThreadGroup.newThread). */
  requestContext(p: ThreadGroup, onReply: (r: { id: number; slot: FileRange }) => void): void {
    this.request({ type: 'newContext', pid: p.tgid }, 'context', (r) => p.defer(() => onReply(r)));
  }

  /** A tid for a new thread (see ProcessTable.allocateTid). */
  allocateTid(): number {
    return this.table.allocateTid();
  }

  /** Wakes `t` (a futex waiter) in its own process's turn. */
  wakeTask(t: Task, ret: bigint): void {
    const owner = this.table.thread(t.tid)?.process;
    owner?.defer(() => owner.wake(t, ret));
  }

  /** `t` no longer waits for children (it was woken, or it is gone). */
  forgetWaiter(t: Task): void {
    this.table.forgetWaiter(t);
  }

  /** Process `p` loaded a new image: a vfork parent waiting for it goes on. */
  execed(p: ThreadGroup): void {
    const t = p.vforkParent;
    if (!t) return;
    p.vforkParent = undefined;
    const parent = this.table.thread(t.tid)?.process;
    parent?.defer(() => parent.wake(t, BigInt(p.tgid)));
  }

  /** See LocalForkTree.knowsStub. */
  knowsStub(hostPid: number): boolean {
    return this.table.live().some((p) => p.hostPid === hostPid);
  }

  /** A process made from the main thread's answer (the first one, or a fork's child). */
  adoptChild(spec: ConstructorParameters<typeof ThreadGroup>[1], parent: Proc | undefined): ThreadGroup {
    const p = new ThreadGroup(this, spec, parent);
    this.table.add(p);
    this.#processEvent(p, 'START');
    if (parent) this.strace.attached(p.tgid);
    this.watchVersion++;
    return p;
  }

  /**
   * fork, vfork, clone of a process (not CLONE_THREAD): the main thread forks `p`'s stub (the
   * kernel's copy-on-write copy of its address space); the child's first thread is a copy of `t`,
   * returning 0. `t` waits parked meanwhile (no signal interrupts a fork), and with CLONE_VFORK
   * until the child execs or ends. Returns 'blocked'; `t` gets the child's pid, or EAGAIN.
   */
  fork(p: ThreadGroup, t: Task, o: ForkOptions): 'blocked' {
    p.park(t, 'WAIT_EXEC');
    const patching = p.usertrap; // no site of p patched while the kernel copies its memory (PreFork/PostFork)
    patching?.hold();
    if (forkLocally(this, p, t, o, () => patching?.release())) return 'blocked';
    this.forks.main++;
    this.request({ type: 'fork', pid: p.tgid, pidfd: o.pidfdAt !== undefined, ...(p.attrs.gen > 0 ? { attrs: { gen: p.attrs.gen, values: p.attrs.values } } : {}) }, 'forked', (r) => {
      patching?.release();
      if (r.errno !== 0 || r.pid === undefined) return p.defer(() => p.wake(t, -BigInt(r.errno || ERRNO.EAGAIN)));
      if (!p.live || this.result) {
        // The parent ended meanwhile: its child never runs.
        this.post({ type: 'processExit', pid: r.pid });
        return;
      }
      const parent = o.sameParent ? p.parent : p;
      const child = this.adoptChild({ pid: r.hostPid!, nsPid: r.pid, memory: r.memory!, queue: r.queue!, main: r.main!, brkStart: p.brkStart, exe: p.exe, ownMemory: true, rules: forkRules(this.region), ...(r.syscallMsg ? { syscallMsg: r.syscallMsg } : {}) }, parent);
      setUpForkChild(p, child, t, o, r.pidfd);
    });
    return 'blocked';
  }

  /** A process's lifecycle for its `process` actor, when the platform is inspected. */
  #processEvent(p: Proc, event: 'START' | 'STOP' | 'CONTINUE' | 'EXIT' | 'REAP'): void {
    if (!this.#spec.mirror) return;
    this.flush(); // its tasks' events first
    this.post({ type: 'processEvent', pid: p.tgid, parent: p.parent?.tgid ?? 0, event, ...eventDetail(p, event) });
  }

  #mirror(t: Task, e: TaskEvent['type']): void {
    this.#mirrored.push([t.tid, e]);
    if (this.#mirrored.length >= MIRROR_BATCH) this.flush();
  }
}
