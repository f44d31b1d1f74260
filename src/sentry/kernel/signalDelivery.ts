import { readFileSync } from 'node:fs';
import { NSIG, SA_NOCLDWAIT, SA_NODEFER, SA_RESETHAND, SA_RESTART, SIG, SIG_DFL, SIG_IGN } from '../../abi/linux.js';
import type { ProgramMemory } from './memory.js';
import type { Task } from './task.js';
import { SignalTable, UNBLOCKABLE, makeSiginfo, setupFrame, sigbit } from './signals.js';
import type { SignalfdTable } from './signalfd.js';

/** A signal waiting for delivery: its number and, when not a plain kill, its siginfo. */
export interface PendingSignal {
  signo: number;
  info?: Uint8Array;
  /** Its `--- SIG... ---` trace line is already printed (a fault, printed where it trapped). */
  shown?: boolean;
}

/** What signal delivery needs of the kernel. */
export interface SignalHost {
  readonly mem: ProgramMemory;
  /** Its stub's pid as Node sees it (for its RLIMIT_SIGPENDING). */
  readonly hostPid: number;
  /** Its pid (which signalfds it holds). */
  readonly tgid: number;
  /** The tree's signalfds (see SignalfdTable). */
  readonly tree: { readonly table: { readonly signalfds: SignalfdTable } };
  /** Who signals from outside the program seem to come from (Node, or 0 from outside its namespace). */
  readonly senderPid: number;
  /** The program's live threads. */
  liveTasks(): Iterable<Task>;
  /** Gets `t` to where it can take a signal: out of the stub, or out of a sleep (EINTR). */
  interruptForSignal(t: Task): void;
  killGroup(signo: number): never;
  /** A stop signal's default action: the whole process stops (see JobControl). */
  stopGroup(signo: number): void;
  /** SIGCONT was sent: a stopped process runs again (whatever SIGCONT's action). */
  continueGroup(): void;
  /**
   * A signal is taken by thread `tid` (strace's signal-delivery-stop: `--- SIGCHLD {...} ---`),
   * whatever its action, ignored by default included (a traced process's are not discarded).
   */
  traceSignal(tid: number, signo: number, info: Uint8Array): void;
}

/** Signals whose sending discards a pending SIGCONT, and the other way round (prepare_signal). */
const STOP_SIGNALS = sigbit(SIG.SIGSTOP) | sigbit(SIG.SIGTSTP) | sigbit(SIG.SIGTTIN) | sigbit(SIG.SIGTTOU);

/**
 * The program's signal state and delivery (gVisor's kernel signal code, reduced): the shared
 * sigaction table, process-directed signals no thread could take yet, and delivery of pending
 * signals to a thread about to run again, by building the handler's frame on its stack.
 *
 * @example
 * ```ts
 * const sigs = new SignalDelivery(kernel);
 * sigs.sendGroup(SIG.SIGINT);    // one thread that does not block it takes it
 * sigs.deliver(t);               // before t runs: handlers' frames, or the default action
 * ```
 */
export class SignalDelivery {
  readonly actions = new SignalTable();
  /** Process-directed signals no thread could take yet. */
  readonly groupPending: PendingSignal[] = [];

  /** The siginfos queued now (see isQueued). Protected by: the sentry worker. */
  readonly #queued = new WeakSet<Uint8Array>();
  /** RLIMIT_SIGPENDING of the process, read once (see full). */
  #limit?: number;

  /** Takers whose interrupt waits for {@link holdInterrupts} to end; undefined: interrupt at once. */
  #held?: Set<Task>;
  /** Ignored signals sent meanwhile, traced when {@link holdInterrupts} ends. Protected by: as #held. */
  #heldTraces: Array<() => void> = [];

  constructor(private readonly host: SignalHost) {}

  /**
   * Runs `fn` with the interrupts of the signals it sends held back, then interrupts only the
   * takers that have not taken their signal on the way. A child's end wakes its parent's wait
   * with the child's pid, and the SIGCHLD sent with it is taken as that wait returns, as on
   * Linux (where the wait, satisfied, does not fail with EINTR, and the signal is delivered on
   * the way back to user space). An ignored SIGCHLD is traced after the wait's result too, as
   * strace shows Linux's: taken on that same way back.
   */
  holdInterrupts(fn: () => void): void {
    if (this.#held) return fn();
    const held = (this.#held = new Set());
    try {
      fn();
    } finally {
      this.#held = undefined;
      for (const t of held) if (this.deliverable(t) !== undefined) this.host.interruptForSignal(t);
      for (const trace of this.#heldTraces.splice(0)) trace();
    }
  }

  #interrupt(t: Task): void {
    if (this.#held) this.#held.add(t);
    else this.host.interruptForSignal(t);
  }

  /** The first pending signal the task may take now (thread-directed first). */
  deliverable(t: Task): number | undefined {
    for (const p of t.pending) if ((t.sigmask & sigbit(p.signo)) === 0n) return p.signo;
    for (const p of this.groupPending) if ((t.sigmask & sigbit(p.signo)) === 0n) return p.signo;
    return undefined;
  }

  /**
   * Before a waiting `t` is woken for its signals (asleep in the sentry, or its wait in the
   * kernel ended EINTR): takes those it would only ignore (a signal ignored by default that
   * another thread blocks is kept for the process, and this one takes it), traced as strace
   * shows them, and says whether another remains that it acts on. Linux restarts a wait such a
   * signal interrupts, with the time left: staying asleep, or waiting again, is the same.
   */
  interrupts(t: Task): boolean {
    for (let sig = this.deliverable(t); sig !== undefined; sig = this.deliverable(t)) {
      if (this.actions.disposition(sig) !== 'ignore') return true;
      const taken = this.#take(t)!;
      this.host.traceSignal(t.tid, taken.signo, this.#infoOf(taken.signo, taken.info));
    }
    return false;
  }

  /** True when the signal `t` takes next has a handler with SA_RESTART (the call it sleeps in restarts). */
  restarts(t: Task): boolean {
    const sig = this.deliverable(t);
    return sig !== undefined && this.actions.disposition(sig) === 'handler' && (this.actions.get(sig).flags & SA_RESTART) !== 0n;
  }

  /** A child that ends is reaped at once, never a zombie (SIGCHLD ignored, or SA_NOCLDWAIT). */
  autoReapsChildren(): boolean {
    const a = this.actions.get(SIG.SIGCHLD);
    return a.handler === SIG_IGN || (a.flags & SA_NOCLDWAIT) !== 0n;
  }

  /**
   * What a forked process starts with: a copy of its parent's actions, and its parent's
   * signalfds (their fds are inherited); pending signals are not copied.
   */
  forkFrom(other: SignalDelivery): void {
    for (let s = 1; s <= NSIG; s++) this.actions.set(s, { ...other.actions.get(s) });
    this.host.tree.table.signalfds.forked(other.host.tgid, this.host.tgid, this.host.hostPid);
  }

  /**
   * Moves the pending signals that a signalfd of the process reads, and that wait blocked, into
   * it (see SignalfdTable): a group signal every thread blocks, a thread's signal it blocks,
   * none that rt_sigtimedwait waits for. Called whenever such a signal may have become pending:
   * as it is sent, and when a signalfd is made or its mask changed.
   */
  toSignalfds(): void {
    const table = this.host.tree.table.signalfds;
    const watched = table.size === 0 ? 0n : table.watched(this.host.tgid);
    if (watched === 0n) return;
    const tasks = [...this.host.liveTasks()];
    const move = (list: PendingSignal[], blocked: (signo: number) => boolean) => {
      for (let i = 0; i < list.length; ) {
        const p = list[i];
        if ((watched & sigbit(p.signo)) !== 0n && blocked(p.signo) && table.write(this.host.tgid, p.signo, this.#infoOf(p.signo, p.info))) {
          list.splice(i, 1);
          if (p.info) this.#queued.delete(p.info);
        } else i++;
      }
    };
    move(this.groupPending, (signo) => tasks.every((t) => (t.sigmask & sigbit(signo)) !== 0n && !this.#waitedBy(t, signo)));
    for (const t of tasks) move(t.pending, (signo) => (t.sigmask & sigbit(signo)) !== 0n && !this.#waitedBy(t, signo));
  }

  /** Signals pending for `t` (its own and the group's), as a sigset. */
  pendingSet(t: Task): bigint {
    let set = 0n;
    for (const p of t.pending) set |= sigbit(p.signo);
    for (const p of this.groupPending) set |= sigbit(p.signo);
    return set;
  }

  /**
   * Takes a pending signal of `set` for `t` (thread-directed first, then the process's, lowest
   * number first as Linux's next_signal), blocked or not, with its siginfo: what
   * rt_sigtimedwait returns instead of delivering it.
   */
  dequeue(t: Task, set: bigint): { signo: number; info: Uint8Array } | undefined {
    for (const list of [t.pending, this.groupPending]) {
      let best = -1;
      for (let i = 0; i < list.length; i++) if ((set & sigbit(list[i].signo)) !== 0n && (best < 0 || list[i].signo < list[best].signo)) best = i;
      if (best >= 0) {
        const [sig] = list.splice(best, 1);
        if (sig.info) this.#queued.delete(sig.info);
        return { signo: sig.signo, info: this.#infoOf(sig.signo, sig.info) };
      }
    }
    return undefined;
  }

  /** Takes the next signal `t` may take now, thread-directed first. */
  #take(t: Task): PendingSignal | undefined {
    if (t.pending.length === 0 && this.groupPending.length === 0) return undefined; // every return to the program: nothing made
    const i = t.pending.findIndex((p) => (t.sigmask & sigbit(p.signo)) === 0n);
    const j = i >= 0 ? -1 : this.groupPending.findIndex((p) => (t.sigmask & sigbit(p.signo)) === 0n);
    const taken = i >= 0 ? t.pending.splice(i, 1)[0] : j >= 0 ? this.groupPending.splice(j, 1)[0] : undefined;
    if (taken?.info) this.#queued.delete(taken.info);
    return taken;
  }

  /**
   * Runs the program's handlers for every deliverable signal (frames nest as the kernel's do),
   * or their default action. Precondition: `t` is out of the stub (its registers are the
   * sentry's to change).
   */
  deliver(t: Task): void {
    for (let sig = this.#take(t); sig; sig = this.#take(t)) {
      const disp = this.actions.disposition(sig.signo);
      const info = this.#infoOf(sig.signo, sig.info);
      if (!sig.shown) this.host.traceSignal(t.tid, sig.signo, info);
      if (disp === 'ignore') continue;
      if (disp === 'terminate') this.host.killGroup(sig.signo);
      if (disp === 'stop') {
        this.host.stopGroup(sig.signo); // taken when it was blocked: it stops now
        continue;
      }
      const act = this.actions.get(sig.signo);
      const oldMask = t.savedMask ?? t.sigmask;
      t.savedMask = undefined;
      if (!setupFrame(t, this.host.mem, sig.signo, act, info, oldMask)) this.host.killGroup(SIG.SIGSEGV);
      t.sigmask |= act.mask | ((act.flags & SA_NODEFER) !== 0n ? 0n : sigbit(sig.signo));
      t.sigmask &= ~UNBLOCKABLE;
      if ((act.flags & SA_RESETHAND) !== 0n) this.actions.set(sig.signo, { handler: SIG_DFL, flags: 0n, restorer: 0n, mask: 0n });
    }
    // A wait's temporary mask (sigsuspend, ppoll's) that no handler's frame took: the call is
    // over, the caller's mask is back (Linux's restore_saved_sigmask when no handler runs).
    if (t.savedMask !== undefined && !t.pass && !t.blocked) {
      t.sigmask = t.savedMask;
      t.savedMask = undefined;
    }
  }

  /** A signal's siginfo: the one it was sent with, or a plain kill's from outside. */
  #infoOf(signo: number, info: Uint8Array | undefined): Uint8Array {
    return info ?? makeSiginfo(signo, 0, { pid: this.host.senderPid });
  }

  /**
   * A signal ignored at its sending goes nowhere, but strace still shows it taken: a traced
   * process's ignored signals are generated for the tracer to see (Linux's sig_ignored is false
   * under ptrace), SIG_IGN as well as ignored by default.
   */
  #ignored(t: Task, signo: number, info: Uint8Array | undefined): void {
    const trace = () => this.host.traceSignal(t.tid, signo, this.#infoOf(signo, info));
    if (this.#held) this.#heldTraces.push(trace);
    else trace();
  }

  /**
   * Whether an ignored signal is still queued for `t` (Linux's sig_ignored is false for a
   * blocked signal, and for one rt_sigtimedwait waits for: it may be taken before it is ignored).
   */
  #keptFor(t: Task, signo: number): boolean {
    const bit = sigbit(signo);
    return (t.sigmask & bit) !== 0n || (t.sigwait !== undefined && (t.sigwait.set & bit) !== 0n);
  }

  /** True when rt_sigtimedwait in `t` waits for `signo`: it takes it, nothing else happens. */
  #waitedBy(t: Task, signo: number): boolean {
    return t.sigwait !== undefined && (t.sigwait.set & sigbit(signo)) !== 0n;
  }

  /** A signal to the whole program (kill, the CLI forwarding SIGINT): one thread takes it. */
  sendGroup(signo: number, info?: Uint8Array): void {
    if (signo === 0) return;
    if (signo === SIG.SIGKILL) this.host.killGroup(SIG.SIGKILL);
    this.#jobControl(signo);
    const disp = this.actions.disposition(signo);
    const tasks = [...this.host.liveTasks()];
    if (disp === 'ignore' && !tasks.some((t) => this.#keptFor(t, signo))) {
      if (tasks.length > 0) this.#ignored(tasks[0], signo, info); // the first thread: strace shows one
      return;
    }
    // A thread waiting for it in rt_sigtimedwait first, then any that does not block it.
    const taker = tasks.find((t) => this.#waitedBy(t, signo)) ?? tasks.find((t) => (t.sigmask & sigbit(signo)) === 0n);
    if (!taker) {
      this.#queue(this.groupPending, signo, info);
      this.toSignalfds();
      return;
    }
    if (!this.#waitedBy(taker, signo)) {
      if (disp === 'terminate') {
        // Fatal at its sending, as Linux's complete_signal: strace still sees the thread take it.
        this.host.traceSignal(taker.tid, signo, this.#infoOf(signo, info));
        this.host.killGroup(signo);
      }
      if (disp === 'stop') return this.host.stopGroup(signo);
    }
    this.#queue(taker.pending, signo, info);
    this.#interrupt(taker);
  }

  /** Queues a signal: a standard one only once; a real-time one only while the process is not {@link full}. */
  #queue(list: PendingSignal[], signo: number, info: Uint8Array | undefined): void {
    if (signo < SIGRTMIN ? list.some((p) => p.signo === signo) : this.full()) return;
    list.push({ signo, info });
    if (info) this.#queued.add(info);
  }

  /**
   * Whether this very siginfo is still queued, for the process or one of its threads (a timer's
   * overrun counts in it then). A set, not a scan: a timer asks at every expiry, and up to
   * RLIMIT_SIGPENDING signals may be queued. Entries of a thread that is gone stay (the timer
   * of a thread checks that it lives).
   */
  isQueued(info: Uint8Array): boolean {
    return this.#queued.has(info);
  }

  /**
   * Whether the process has as many signals queued as it may (Linux's RLIMIT_SIGPENDING, which
   * counts per user; here per process, read from its stub's limits): sigqueue then fails with
   * EAGAIN, and a real-time signal sent anyway is not queued. Without the bound a program
   * queueing signals it blocks would grow the sentry's memory without end.
   */
  full(): boolean {
    let n = this.groupPending.length;
    for (const t of this.host.liveTasks()) n += t.pending.length;
    return n >= (this.#limit ??= sigpendingLimit(this.host.hostPid));
  }

  /** A signal to one thread (tgkill). */
  sendThread(t: Task, signo: number, info?: Uint8Array): void {
    if (signo === 0) return;
    if (signo === SIG.SIGKILL) this.host.killGroup(SIG.SIGKILL);
    this.#jobControl(signo);
    const disp = this.actions.disposition(signo);
    if (disp === 'ignore' && !this.#keptFor(t, signo)) return this.#ignored(t, signo, info);
    if (disp === 'stop' && (t.sigmask & sigbit(signo)) === 0n && !this.#waitedBy(t, signo)) return this.host.stopGroup(signo);
    this.#queue(t.pending, signo, info);
    if ((t.sigmask & sigbit(signo)) === 0n) this.#interrupt(t);
    else this.toSignalfds();
  }

  /**
   * What sending a job-control signal does before any delivery (Linux's prepare_signal): a stop
   * signal discards a pending SIGCONT; SIGCONT discards pending stop signals and resumes a
   * stopped process, even when SIGCONT is blocked or ignored.
   */
  #jobControl(signo: number): void {
    const drop = signo === SIG.SIGCONT ? STOP_SIGNALS : (STOP_SIGNALS & sigbit(signo)) !== 0n ? sigbit(SIG.SIGCONT) : 0n;
    if (drop === 0n) return;
    const keep = (p: PendingSignal) => {
      const kept = (drop & sigbit(p.signo)) === 0n;
      if (!kept && p.info) this.#queued.delete(p.info);
      return kept;
    };
    for (const t of this.host.liveTasks()) t.pending.splice(0, t.pending.length, ...t.pending.filter(keep));
    this.groupPending.splice(0, this.groupPending.length, ...this.groupPending.filter(keep));
    if (signo === SIG.SIGCONT) this.host.continueGroup();
  }

  /** Forgets what execve discards: caught signals back to default (ignored ones stay). */
  resetForExec(): void {
    this.actions.resetForExec();
  }
}

/** The first real-time signal: below it, a signal pending already is not queued again (Linux's legacy_queue). */
const SIGRTMIN = 32;

/**
 * RLIMIT_SIGPENDING of stub `pid` (its soft limit, from /proc/PID/limits); Linux's usual
 * default when it cannot be read.
 */
function sigpendingLimit(pid: number): number {
  try {
    const m = /^Max pending signals\s+(\d+|unlimited)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
    if (m) return m[1] === 'unlimited' ? Infinity : Number(m[1]);
  } catch {
    // gone: it queues nothing more anyway
  }
  return 4096;
}
