import { receiveMessageOnPort } from 'node:worker_threads';
import { native, type NativeMemoryFile } from '../../native.js';
import { ContextQueue } from '../../actors/contextQueue.js';
import { CONTEXT_QUEUE, ContextState, THREAD_CONTEXT } from '../../abi/sysmsg.js';
import { SYSCALL_ARG_REGS, REG } from '../../abi/registers.js';
import type { FileRange } from '../../memoryFile.js';
import { ProgramMemory } from './memory.js';
import { Task, type Substitute } from './task.js';
import { SignalTable, UNBLOCKABLE, makeSiginfo, setupFrame, sigbit, SA_RESTART, SA_RESETHAND, SA_NODEFER, SIG_DFL } from './signals.js';
import { FutexTable } from './futex.js';
import { emulate, type Outcome } from '../syscalls/table.js';
import type { SentryMail, SentryRequest, SentryResult, SentryTask } from '../protocol.js';
import { StracePrinter } from '../strace/printer.js';
import { Policy } from '../policy.js';

const SIGCHLD = 17;
const SIGILL = 4;
const SIGSYS = 31;
const SIGSEGV = 11;
const EINTR = 4n;
/** A context running this long while others wait is preempted (gVisor: 10 ms). */
const PREEMPT_MS = 10;
const ARG_IDX = SYSCALL_ARG_REGS.map((r) => REG[r]);

/** Writes a struct timespec of `ms` milliseconds (best effort: a bad pointer is the program's). */
function writeTimespec(mem: ProgramMemory, addr: bigint, ms: number): void {
  const b = new Uint8Array(16);
  const dv = new DataView(b.buffer);
  dv.setBigInt64(0, BigInt(Math.floor(ms / 1000)), true);
  dv.setBigInt64(8, BigInt(Math.floor((ms % 1000) * 1e6)), true);
  mem.write(addr, b);
}

/** The program ended (thrown out of the handlers to the loop). */
class GroupExit {
  constructor(readonly result: SentryResult) {}
}

/**
 * The sentry of one program (gVisor's kernel.Kernel + ThreadGroup, reduced to what running a
 * host program with passthrough needs). It runs on a runner worker and owns every task of the
 * program: it queues their contexts into the stub, waits for their traps (spin, then futex on
 * the stub's doorbell, never on the main thread), emulates what must be emulated, passes the
 * rest through the gadget, and delivers signals. Preconditions: the stub has the program's
 * seccomp filter, the image is loaded and `task.main` holds the entry registers.
 *
 * @example
 * ```ts
 * // workers/sentry.ts
 * export default (task: SentryTask) => new Kernel(task).run();
 * ```
 */
export class Kernel {
  readonly mem: ProgramMemory;
  readonly tgid: number;
  readonly signals = new SignalTable();
  readonly futexes = new FutexTable();
  readonly tasks = new Map<number, Task>();
  readonly strace: StracePrinter;
  readonly policy: Policy;
  /** Process-directed signals no thread could take yet. */
  readonly groupPending: Array<{ signo: number; info?: Uint8Array }> = [];
  brkStart: bigint;
  brk: bigint;
  /** What /proc/self/exe reads as (changes with execve). */
  exe: string;
  everThreaded = false;
  /** Syscalls and faults that trapped to this sentry (what tracing and emulation cost). */
  traps = 0;
  readonly #file: NativeMemoryFile;
  readonly #q: ContextQueue;
  readonly #bell: Uint32Array;
  readonly #doorbell: number;
  readonly #mail: Int32Array;
  #mailSeen = 0;
  #ready: Task[] = [];
  #nextTid: number;
  #req = 0;
  readonly #replies = new Map<number, SentryMail>();
  /** Host tids of sysmsg threads by slot (for interrupts). */
  readonly #threadTids = new Map<number, number>();
  #lastKick = 0;

  constructor(readonly task: SentryTask) {
    this.#file = new native.MemoryFile('systrap-memory', task.maxSize, task.fd);
    const mf = { view: (r: FileRange) => new Uint8Array(this.#file.buffer(r.start, r.end - r.start)), _file: this.#file };
    this.#q = new ContextQueue(task.queue, mf as never, false);
    this.#doorbell = task.queue.start + CONTEXT_QUEUE.numPublished;
    this.#bell = new Uint32Array(this.#file.buffer(this.#doorbell, 4));
    this.#mail = new Int32Array(task.mail);
    this.mem = new ProgramMemory(task.pid);
    this.tgid = task.pid;
    this.#nextTid = task.pid + 1;
    this.brkStart = task.brkStart;
    this.brk = task.brkStart;
    this.exe = task.exe;
    this.strace = new StracePrinter(task.trace, this.mem);
    this.policy = new Policy(task.trace);
    const t = this.newTask(task.main.id, task.main.slot, this.tgid);
    t.regs.set(task.main.regs);
  }

  /** A task over the context `id`; counted awake in the stub's queue. */
  newTask(id: number, slot: FileRange, tid: number): Task {
    const t = new Task(id, tid, this.#file.buffer(slot.start, slot.end - slot.start));
    this.tasks.set(tid, t);
    if (this.tasks.size > 1) this.everThreaded = true;
    this.#q.awake(1);
    this.#ready.push(t);
    return t;
  }

  allocTid(): number {
    return this.#nextTid++;
  }

  /** Runs the program to its end. */
  async run(): Promise<SentryResult> {
    await this.policy.init();
    let result: SentryResult;
    try {
      this.#loop();
    } catch (e) {
      if (!(e instanceof GroupExit)) throw e;
      result = e.result;
      this.strace.flush();
      const summary = this.strace.summaryText();
      return { ...result, traps: this.traps, ...(summary ? { summary } : {}) };
    }
    throw new Error('unreachable');
  }

  #loop(): never {
    for (;;) {
      this.#drainMail();
      this.#queueReady();
      const seen = Atomics.load(this.#bell, 0);
      let any = this.#scan();
      if (!any) {
        // Spin while a trap is likely soon; then sleep on the doorbell until a trap, mail or timer.
        const spinEnd = process.hrtime.bigint() + BigInt(this.task.spinNs);
        while (!any && process.hrtime.bigint() < spinEnd) {
          if (Atomics.load(this.#bell, 0) !== seen) any = this.#scan();
          else if (Atomics.load(this.#mail, 0) !== this.#mailSeen) break;
        }
        if (!any && Atomics.load(this.#mail, 0) === this.#mailSeen) {
          this.strace.flush();
          const timeout = Math.max(1, Math.min(20, this.#nextDeadline() - performance.now()));
          if (this.#q.waitDoorbell(seen, Math.ceil(timeout)) === 'timeout' && this.#running() && this.#stubGone())
            throw new GroupExit({ kind: 'error', code: 'ESTUBDEAD', message: `stub ${this.tgid} died while the program ran` });
          this.#scan();
        }
      }
      this.#wakeExpired(performance.now());
      this.#preempt();
    }
  }

  #running(): boolean {
    for (const t of this.tasks.values()) if (t.state === 'running') return true;
    return false;
  }

  #stubGone(): boolean {
    try {
      return native.waitidPeek(this.tgid) !== null;
    } catch {
      return true;
    }
  }

  /** Handles every task whose trap has been published; true if there was one. */
  #scan(): boolean {
    let any = false;
    for (const t of this.tasks.values()) {
      if (t.state !== 'running') continue;
      const st = Atomics.load(t.u32, THREAD_CONTEXT.state / 4);
      if (st === ContextState.None) continue;
      any = true;
      this.traps++;
      t.state = 'ready'; // not in the stub any more; handlers decide what comes next
      this.#trap(t, st);
    }
    return any;
  }

  #queueReady(): void {
    if (this.#ready.length === 0) return;
    const now = performance.now();
    for (const t of this.#ready) {
      if (t.state !== 'ready') continue;
      Atomics.store(t.u32, THREAD_CONTEXT.interrupt / 4, 0);
      Atomics.store(t.u32, THREAD_CONTEXT.state / 4, ContextState.None);
      t.state = 'running';
      t.since = now;
      t.interrupted = false;
      this.#q.resume(t.id, t.u32);
    }
    this.#ready = [];
    this.#q.wakeIfNeeded();
    // More contexts than threads awake: ask the main thread for another sysmsg thread.
    if (this.#q.numActiveContexts > this.#q.numActiveThreads && this.#threadTids.size < this.task.maxSysmsgThreads && now - this.#lastKick > 1) {
      this.#lastKick = now;
      this.post({ type: 'kick' });
    }
  }

  /** Makes a task runnable again (queued on the next loop turn). */
  ready(t: Task): void {
    t.state = 'ready';
    this.#ready.push(t);
  }

  /** Wakes a task sleeping in the sentry (futex, sigsuspend, nanosleep) with `ret` as its syscall result. */
  wake(t: Task, ret: bigint): void {
    if (t.state !== 'futex' && t.state !== 'suspended' && t.state !== 'sleeping') return;
    this.futexes.remove(t);
    if (t.sleep) {
      // Interrupted: the time left goes to `rem` (relative sleeps), as the kernel writes it.
      if (ret === -EINTR && t.sleep.rem !== 0n) writeTimespec(this.mem, t.sleep.rem, Math.max(0, t.sleep.deadline - performance.now()));
      t.sleep = undefined;
    }
    this.#q.awake(1);
    this.finish(t, ret);
  }

  /** Parks a task in the sentry (it leaves the stub's awake count). */
  park(t: Task, state: 'futex' | 'suspended' | 'sleeping'): void {
    t.state = state;
    this.#q.awake(-1);
  }

  /** The earliest wake-up of a task sleeping in the sentry (futex timeout or nanosleep). */
  #nextDeadline(): number {
    let d = this.futexes.nextDeadline();
    for (const t of this.tasks.values()) if (t.sleep && t.sleep.deadline < d) d = t.sleep.deadline;
    return d;
  }

  #wakeExpired(now: number): void {
    for (const t of this.futexes.expired(now)) this.wake(t, -110n); // ETIMEDOUT
    for (const t of [...this.tasks.values()]) if (t.sleep && t.sleep.deadline <= now) this.wake(t, 0n);
  }

  #preempt(): void {
    if (this.#q.waiting === 0) return;
    const now = performance.now();
    for (const t of this.tasks.values()) {
      if (t.state === 'running' && !t.interrupted && now - t.since > PREEMPT_MS) {
        t.preempted = true;
        this.interrupt(t);
        return;
      }
    }
  }

  /** Interrupt flag, then SIGCHLD to the sysmsg thread running the task (if any). */
  interrupt(t: Task): void {
    if (t.state !== 'running' || t.interrupted) return;
    t.interrupted = true;
    Atomics.store(t.u32, THREAD_CONTEXT.interrupt / 4, 1);
    const slot = Atomics.load(t.u32, THREAD_CONTEXT.threadId / 4);
    const tid = this.#threadTids.get(slot);
    if (tid === undefined) return; // in the queue: the flag bounces it back
    try {
      native.tgkill(tid, tid, SIGCHLD);
    } catch {
      // gone: the doorbell wait notices the stub's death
    }
  }

  // ---- traps -------------------------------------------------------------------------------

  #trap(t: Task, st: number): void {
    const { start, end, gadgetAddr } = this.task.region;
    const rip = t.reg('rip');
    if (st === ContextState.Syscall) {
      // A trap from stub code is the program jumping there (the gadget refuses sentry calls).
      if (rip - 2n >= start && rip - 2n < end) return this.killGroup(SIGSYS);
      if (t.pass) return this.killGroup(SIGSYS);
      return this.#syscall(t);
    }
    if (st !== ContextState.Fault) {
      throw new GroupExit({ kind: 'error', code: 'ECORRUPT', message: `context ${t.id}: impossible state ${st} in shared memory` });
    }
    const dv = new DataView(t.slot.buffer, t.slot.byteOffset);
    const signo = Number(dv.getBigInt64(THREAD_CONTEXT.signo, true));
    if (t.pass) {
      if (signo === SIGILL && rip === gadgetAddr + 2n) return this.#passDone(t);
      if (signo === SIGCHLD && (rip === gadgetAddr || rip === gadgetAddr + 2n)) return this.#interrupted(t);
      return this.killGroup(SIGSEGV);
    }
    if (rip >= start && rip < end) return this.killGroup(signo === SIGCHLD ? SIGSEGV : signo);
    if (signo === SIGCHLD) return this.#interrupted(t);
    // A fault or a signal the kernel raised for the program's own syscall (SIGPIPE, SIGXFSZ).
    const info = t.slot.slice(THREAD_CONTEXT.siginfo, THREAD_CONTEXT.siginfo + 128);
    const sync = signo !== 13 && signo !== 25;
    this.strace.signal(t.tid, signo, info);
    if (sync) {
      // A fault the program blocks or ignores kills it, as the kernel's force_sig does.
      const disp = this.signals.disposition(signo);
      if (disp !== 'handler' || (t.sigmask & sigbit(signo)) !== 0n) return this.killGroup(signo);
    }
    t.pending.unshift({ signo, info });
    this.#resume(t);
  }

  /** Back from an interrupt: signals to deliver, else straight back into the stub. */
  #interrupted(t: Task): void {
    t.preempted = false;
    this.#resume(t);
  }

  /** Delivers what is pending and deliverable, then queues the task. */
  #resume(t: Task): void {
    if (t.pass && this.#deliverable(t) !== undefined) this.#abandonPass(t);
    this.deliverSignals(t);
    if (t.state === 'ready') this.ready(t);
  }

  #syscall(t: Task): void {
    const sysno = Number(BigInt.asIntN(64, t.reg('orig_rax')));
    if (!t.reported) {
      // The context's actor hears of its first syscall only: lifecycle, not traffic.
      t.reported = true;
      this.post({ type: 'contextEvent', id: t.id, event: 'syscall', sysno });
    }
    const args = ARG_IDX.map((i) => t.regs[i]);
    const start = process.hrtime.bigint();
    let out: Outcome;
    const inj = this.policy.injected(sysno);
    if (inj !== undefined) out = inj;
    else {
      const pol = this.policy.decide(t.tid, sysno, args);
      if (pol === 'kill') return this.killGroup(SIGSYS);
      out = pol === 'pass' ? emulate(this, t, sysno, args) : pol;
    }
    this.#outcome(t, sysno, args, out, start);
  }

  #outcome(t: Task, sysno: number, args: bigint[], out: Outcome, start: bigint): void {
    if (out === 'pass') return this.#startPass(t, sysno, args, start, { sysno, args });
    if (typeof out === 'bigint') return this.finish(t, out, sysno, args, start);
    if (out === 'blocked') {
      t.blocked = { sysno, args, start };
      return;
    }
    if (out === 'exited') return;
    if (out === 'execed') {
      this.#resume(t);
      return;
    }
    if (out === 'noreturn') {
      // The registers are already what the program resumes with (rt_sigreturn, execve).
      this.strace.exit(t.tid, sysno, args, undefined, start);
      this.#resume(t);
      return;
    }
    this.#startPass(t, sysno, args, start, out);
  }

  /** Completes a syscall with `ret` (traced, counted), then signals, then back to the program. */
  finish(t: Task, ret: bigint, sysno?: number, args?: bigint[], start?: bigint): void {
    const b = t.blocked;
    t.blocked = undefined;
    if (sysno !== undefined) this.strace.exit(t.tid, sysno, args!, ret, start!);
    else if (b) this.strace.exit(t.tid, b.sysno, b.args, ret, b.start);
    t.setReg('rax', ret);
    t.state = 'ready';
    this.#resume(t);
  }

  /** Has the stub run `sub` for the task at the gadget (the program's registers kept aside). */
  #startPass(t: Task, sysno: number, args: bigint[], start: bigint, sub: Substitute): void {
    const savedArgs = ARG_IDX.map((i) => t.regs[i]);
    t.pass = { sysno, args, rip: t.reg('rip'), savedArgs, start, onDone: sub.onDone };
    this.#setCall(t, sub);
    this.ready(t);
  }

  #setCall(t: Task, sub: Substitute): void {
    ARG_IDX.forEach((r, i) => (t.regs[r] = BigInt.asUintN(64, sub.args[i] ?? 0n)));
    t.setReg('rax', BigInt(sub.sysno));
    t.setReg('rip', this.task.region.gadgetAddr);
  }

  #passDone(t: Task): void {
    const p = t.pass!;
    let ret = BigInt.asIntN(64, t.reg('rax'));
    if (p.onDone) {
      const next = p.onDone(ret);
      if (typeof next !== 'bigint') {
        p.onDone = next.onDone;
        this.#setCall(t, next);
        this.ready(t);
        return;
      }
      ret = next;
    }
    this.#endPass(t);
    this.finish(t, ret, p.sysno, p.args, p.start);
  }

  /** The program's registers back as after its own `syscall` (rcx = return address, r11 = flags). */
  #endPass(t: Task): void {
    const p = t.pass!;
    t.pass = undefined;
    ARG_IDX.forEach((r, i) => (t.regs[r] = p.savedArgs[i]));
    t.setReg('rip', p.rip);
    t.setReg('rcx', p.rip);
    t.setReg('r11', t.reg('eflags'));
  }

  /**
   * A signal arrived while the stub ran the task's call at the gadget. If the kernel rewound the
   * call (rip at the gadget), the program sees it restarted (SA_RESTART) or EINTR; if the call
   * returned (rip past it), the program sees its result.
   */
  #abandonPass(t: Task): void {
    const p = t.pass!;
    const rewound = t.reg('rip') === this.task.region.gadgetAddr;
    const ret = BigInt.asIntN(64, t.reg('rax'));
    this.#endPass(t);
    if (!rewound) {
      this.strace.exit(t.tid, p.sysno, p.args, p.onDone ? -EINTR : ret, p.start);
      t.setReg('rax', p.onDone ? -EINTR : ret);
      return;
    }
    const sig = this.#deliverable(t)!;
    if ((this.signals.get(sig).flags & SA_RESTART) !== 0n) {
      t.setReg('rip', p.rip - 2n);
      t.setReg('rax', BigInt(p.sysno));
      this.strace.exit(t.tid, p.sysno, p.args, -512n, p.start); // ERESTARTSYS, as strace shows
    } else {
      t.setReg('rax', -EINTR);
      this.strace.exit(t.tid, p.sysno, p.args, -EINTR, p.start);
    }
  }

  // ---- signals -----------------------------------------------------------------------------

  /** The first pending signal the task may take now (thread-directed first). */
  #deliverable(t: Task): number | undefined {
    for (const p of t.pending) if ((t.sigmask & sigbit(p.signo)) === 0n) return p.signo;
    for (const p of this.groupPending) if ((t.sigmask & sigbit(p.signo)) === 0n) return p.signo;
    return undefined;
  }

  /** Runs the program's handlers for deliverable signals (frames nest as the kernel's do). */
  deliverSignals(t: Task): void {
    for (;;) {
      let idx = t.pending.findIndex((p) => (t.sigmask & sigbit(p.signo)) === 0n);
      let sig: { signo: number; info?: Uint8Array } | undefined;
      if (idx >= 0) sig = t.pending.splice(idx, 1)[0];
      else {
        idx = this.groupPending.findIndex((p) => (t.sigmask & sigbit(p.signo)) === 0n);
        if (idx < 0) return;
        sig = this.groupPending.splice(idx, 1)[0];
      }
      const disp = this.signals.disposition(sig.signo);
      if (disp === 'ignore') continue;
      if (disp === 'terminate') return this.killGroup(sig.signo);
      const act = this.signals.get(sig.signo);
      const oldMask = t.savedMask ?? t.sigmask;
      t.savedMask = undefined;
      const info = sig.info ?? makeSiginfo(sig.signo, 0, { pid: this.task.nodePid });
      if (!setupFrame(t, this.mem, sig.signo, act, info, oldMask)) return this.killGroup(SIGSEGV);
      t.sigmask |= act.mask | ((act.flags & SA_NODEFER) !== 0n ? 0n : sigbit(sig.signo));
      t.sigmask &= ~UNBLOCKABLE;
      if ((act.flags & SA_RESETHAND) !== 0n) this.signals.set(sig.signo, { handler: SIG_DFL, flags: 0n, restorer: 0n, mask: 0n });
    }
  }

  /** A signal to the whole program (kill, the CLI forwarding SIGINT): one thread takes it. */
  sendGroupSignal(signo: number, info?: Uint8Array): void {
    if (signo === 0) return;
    if (signo === 9) return this.killGroup(9);
    const disp = this.signals.disposition(signo);
    if (disp === 'ignore') return;
    const tasks = [...this.tasks.values()].filter((t) => t.state !== 'exited');
    const taker = tasks.find((t) => (t.sigmask & sigbit(signo)) === 0n);
    if (!taker) {
      this.groupPending.push({ signo, info });
      return;
    }
    if (disp === 'terminate') return this.killGroup(signo);
    taker.pending.push({ signo, info });
    this.#kick(taker);
  }

  /** A signal to one thread (tgkill). */
  sendThreadSignal(t: Task, signo: number, info?: Uint8Array): void {
    if (signo === 0) return;
    if (signo === 9) return this.killGroup(9);
    if (this.signals.disposition(signo) === 'ignore') return;
    t.pending.push({ signo, info });
    if ((t.sigmask & sigbit(signo)) === 0n) this.#kick(t);
  }

  /** Gets a task to a point where it can take a signal: out of the stub, or out of a sleep. */
  #kick(t: Task): void {
    if (t.state === 'running') this.interrupt(t);
    else if (t.state === 'futex' || t.state === 'suspended' || t.state === 'sleeping') this.wake(t, -EINTR);
  }

  killGroup(signo: number): never {
    this.strace.killed(signo);
    throw new GroupExit({ kind: 'killed', signal: signo });
  }

  exitGroup(status: number): never {
    this.strace.exited(status);
    throw new GroupExit({ kind: 'exited', status: status & 0xff });
  }

  /** A thread ends (exit): clear_child_tid and its futex wake, then the group if it was the last. */
  exitTask(t: Task, status: number): void {
    t.state = 'exited';
    this.futexes.remove(t);
    this.#q.awake(-1);
    this.tasks.delete(t.tid);
    if (t.clearChildTid !== 0n) {
      this.mem.writeU32(t.clearChildTid, 0);
      this.futexes.wake(this, t.clearChildTid, 1, 0xffffffff);
    }
    this.post({ type: 'contextExit', id: t.id });
    if (this.tasks.size === 0) this.exitGroup(status);
  }

  /** Stops every task but `keep` (execve): interrupts those in the stub and waits for them. */
  stopOthers(keep: Task): void {
    const deadline = performance.now() + 5000;
    const parked = new Set([...this.tasks.values()].filter((t) => t.state === 'futex' || t.state === 'suspended' || t.state === 'sleeping'));
    for (;;) {
      let left = 0;
      for (const t of this.tasks.values()) {
        if (t === keep) continue;
        if (t.state === 'running') {
          if (Atomics.load(t.u32, THREAD_CONTEXT.state / 4) !== ContextState.None) {
            t.state = 'exited';
            continue;
          }
          this.interrupt(t);
          left++;
        } else t.state = 'exited';
      }
      if (left === 0) break;
      if (performance.now() > deadline) this.killGroup(9);
      this.#q.waitDoorbell(Atomics.load(this.#bell, 0), 5);
    }
    for (const t of [...this.tasks.values()]) {
      if (t === keep) continue;
      this.futexes.remove(t);
      this.tasks.delete(t.tid);
      if (!parked.has(t)) this.#q.awake(-1); // parked ones left the awake count already
      this.post({ type: 'contextExit', id: t.id });
    }
    this.#ready = this.#ready.filter((t) => t === keep);
  }

  // ---- the main thread ---------------------------------------------------------------------

  post(msg: SentryRequest): void {
    this.task.port.postMessage(msg);
  }

  /** A request the main thread answers; blocks this worker until it does. */
  request<T extends SentryMail>(make: (req: number) => SentryRequest): T {
    const req = ++this.#req;
    this.post(make(req));
    for (;;) {
      this.#drainMail();
      const r = this.#replies.get(req);
      if (r) {
        this.#replies.delete(req);
        if (r.type === 'failed') throw new GroupExit({ kind: 'error', code: 'ESENTRY', message: r.message });
        return r as T;
      }
      Atomics.wait(this.#mail, 0, this.#mailSeen, 50);
    }
  }

  #drainMail(): void {
    const now = Atomics.load(this.#mail, 0);
    if (now === this.#mailSeen) return;
    this.#mailSeen = now;
    for (let m = receiveMessageOnPort(this.task.port); m; m = receiveMessageOnPort(this.task.port)) {
      const mail = m.message as SentryMail;
      switch (mail.type) {
        case 'threads':
          for (const [slot, tid] of mail.tids) this.#threadTids.set(slot, tid);
          break;
        case 'signal':
          this.strace.signal(undefined, mail.signo, undefined);
          this.sendGroupSignal(mail.signo);
          break;
        default:
          this.#replies.set(mail.req, mail);
      }
    }
  }

}
