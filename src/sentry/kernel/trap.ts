import { ERRNO, SA_RESTART, SI_USER, SIG } from '../../abi/linux.js';
import { ContextState, FORWARDED_SIGNALS, THREAD_CONTEXT } from '../../abi/sysmsg.js';
import { SYS } from '../../abi/syscalls.js';
import { emulate } from '../syscalls/table.js';
import type { Outcome, SyscallKernel } from '../syscalls/context.js';
import type { Policy } from '../policy.js';
import type { SentryRequest } from '../protocol.js';
import { isSilent } from './silentPrinter.js';
import { syscallArgCount } from '../../abi/argCounts.js';
import { directRestart, endPass, interruptedCode, passResult, rerun, setCall, startPass } from './passthrough.js';
import type { Scheduler } from './scheduler.js';
import type { Substitute, Task } from './task.js';
import { GroupExit } from './groupExit.js';
import { sigbit } from './signals.js';
import type { UserTrap } from '../../shm/usertrap.js';
import { DeferredSignals } from './deferredSignals.js';
import type { SharedFile } from '../../shm/sharedFile.js';
import { TraceRing } from './traceRing.js';
import { RecordedCalls } from './recordedCalls.js';
import type { TreeHost } from './process.js';

/** Signals the kernel raises for the program's own syscall (not faults of its code). */
const KERNEL_RAISED: ReadonlySet<number> = new Set([SIG.SIGPIPE, SIG.SIGXFSZ]);
/** Signals sent to the stub's process that its threads hand over (see FORWARDED_SIGNALS). */
const FORWARDED: ReadonlySet<number> = new Set(FORWARDED_SIGNALS);
/** Bytes of the siginfo the stub's handler saved. */
const SIGINFO_SIZE = 128;
/** siginfo's si_code and si_pid (x86-64, see makeSiginfo). */
const SI_CODE = 8;
const SI_PID = 16;
/** The `syscall` instruction is 2 bytes: a trapped call's rip is just past it. */
const SYSCALL_INSN = 2n;
const EINTR = -BigInt(ERRNO.EINTR);
/** What strace shows for a call a signal interrupts and SA_RESTART restarts. */
const ERESTARTSYS = -BigInt(ERRNO.ERESTARTSYS);
/**
 * Recorded calls decoded between two looks for a trap (see scan): ~40 µs of the sentry's, within
 * a stub thread's spin for its answer (QUEUE_SPIN_CYCLES), so that a trap published meanwhile is
 * answered before its thread sleeps (a futex wake-up costs more than the slice; measured: 16
 * beat 8, 32, 64 and 256 on busybox find and a getuid loop).
 */
const DECODE_SLICE = 16;
/** Waits a signal ends with a plain EINTR, SA_RESTART or not (signal(7)): epoll's. */
const NEVER_RESTARTED: ReadonlySet<number> = new Set([SYS.epoll_wait, SYS.epoll_pwait, SYS.epoll_pwait2]);

/** What trap handling needs of the kernel besides the syscall kernel. */
export interface TrapHost extends SyscallKernel {
  readonly policy: Policy;
  readonly region: { readonly start: bigint; readonly end: bigint; readonly gadgetAddr: bigint };
  /** Reports to the main thread (the context actor hears of a task's first syscall). */
  post(msg: SentryRequest): void;
  /** An execve under way: past its checks, the other threads' traps are left alone (dropped). */
  readonly execing?: { readonly task: Task; readonly pastChecks: boolean };
  /** The process's syscall patching, when on (see usertrap.ts). */
  readonly usertrap?: UserTrap;
  /** The memory file its queue and its threads' Msg pages are in. */
  readonly file: SharedFile;
  /** Its live threads by tid (a recorded call names its context). */
  readonly tasks: ReadonlyMap<number, Task>;
  readonly tree: SyscallKernel['tree'] & Pick<TreeHost, 'traceRing'>;
}

/**
 * What a trap comes to (gVisor's task run loop after a platform switch: syscall, fault or
 * interrupt): a syscall goes to the policy, the injections and the emulation, and its outcome
 * to the program or to the passthrough gadget; a fault or a kernel-raised signal becomes a
 * pending signal; an interrupt lets pending signals in. Then the task runs again, or sleeps, or
 * is gone.
 *
 * @example
 * ```ts
 * const traps = new TrapHandler(kernel, scheduler);
 * traps.scan();               // handles every published trap
 * traps.finish(t, 0n);        // a woken task's call returns 0
 * ```
 */
export class TrapHandler {
  /** Syscalls and faults that trapped to this sentry (what tracing and emulation cost). */
  count = 0;
  /** Bound once: the scheduler calls it per published trap. */
  readonly #onTrap = (t: Task, st: number): void => this.#trap(t, st);

  constructor(
    private readonly k: TrapHost,
    private readonly sched: Scheduler,
  ) {}

  /** Handles every task whose trap is published; true if there was one. */
  scan(): boolean {
    const recorded = this.#recorded;
    recorded?.collect(false);
    const any = this.sched.scanTraps(this.#onTrap);
    if (!recorded?.waiting) return any;
    // Decoded once the traps are answered and their tasks handed to the stub (they run
    // meanwhile), a slice at a time until a trap is published: it waits for one slice at most.
    this.sched.queueReady();
    const bell = this.sched.queue.doorbell;
    const seen = Atomics.load(bell.words, bell.index);
    do recorded.decode(DECODE_SLICE);
    while (recorded.waiting && Atomics.load(bell.words, bell.index) === seen);
    return any || recorded.waiting;
  }

  /**
   * Sends the signals the stub's threads took in the syshandler path (see DeferredSignals), if
   * any came since the last look. Their counter shares a cache line with the doorbell, which a
   * trap's publish has just written: looked at after the traps are answered, not before.
   */
  takeDeferred(): void {
    this.#deferred ??= new DeferredSignals(this.k.file, this.sched.queue.range, this.k.region.start);
    this.#deferred.take(this.sched.slots(), (signo, info) => this.k.signals.sendGroup(signo, info));
  }

  /** Whether a stub thread deferred a signal since the last {@link takeDeferred}. */
  get deferredPending(): boolean {
    return this.#deferred?.pending ?? false;
  }

  /** Signals the stub's threads took in the syshandler path (see DeferredSignals). */
  #deferred?: DeferredSignals;

  /** What the stub's threads recorded themselves (see RecordedCalls): made at the first look. */
  #recordedCalls?: RecordedCalls | null;

  /** The process's recorded calls, if the program has a trace ring. */
  get #recorded(): RecordedCalls | null {
    if (this.#recordedCalls === undefined) {
      const r = this.k.tree.traceRing;
      this.#recordedCalls = r ? new RecordedCalls(this.k, new TraceRing(this.k.file, this.sched.queue.range, r.size), r) : null;
    }
    return this.#recordedCalls;
  }

  /** The process ended: what its ring still holds is decoded, its counts go to the program's. */
  endRing(): void {
    this.#recorded?.end();
  }

  #inStubCode(addr: bigint): boolean {
    return addr >= this.k.region.start && addr < this.k.region.end;
  }

  #trap(t: Task, st: number): void {
    this.count++;
    // The thread's recorded calls come before this one (see RecordedCalls.collect).
    this.#recorded?.collect(true);
    const exec = this.k.execing;
    if (exec?.pastChecks && exec.task !== t) return; // another thread's execve drops this one
    // SyscallTrap: from a patched call site, through the syshandler (src/shm/usertrap.ts), as
    // the same call would have trapped unpatched (rip past the site, orig_rax its number). A
    // call's rip, number and arguments are read from the slot's call and handshake lines, not
    // from regs (see ThreadContext).
    const call = st === ContextState.Syscall || st === ContextState.SyscallTrap;
    const rip = call ? t.callRip : t.reg('rip');
    if (call) {
      // From stub code (the program jumped there), or at the gadget (which refuses the
      // sentry's own calls): never a call of the program's to handle.
      if (this.#inStubCode(rip - SYSCALL_INSN) || t.pass) return this.k.killGroup(SIG.SIGSYS);
      // Through a signal: its site is patched now if it can be, so that the next call from it
      // takes none (the task is stopped here; its rip stays past the site either way).
      if (st === ContextState.Syscall) this.k.usertrap?.tryPatch(this.k.mem, rip, t.callSysno);
      else if (this.k.usertrap) this.k.usertrap.stats.calls++;
      return this.#syscall(t);
    }
    if (st !== ContextState.Fault) {
      throw new GroupExit({ kind: 'error', code: 'ECORRUPT', message: `context ${t.id}: impossible state ${st} in shared memory` });
    }
    const signo = Number(new DataView(t.slot.buffer, t.slot.byteOffset).getBigInt64(THREAD_CONTEXT.signo, true));
    if (t.pass) return this.#passTrap(t, signo, rip);
    if (signo === SIG.SIGILL && this.#rewound(t, rip)) return this.resume(t);
    if (this.#inStubCode(rip)) return this.k.killGroup(signo === SIG.SIGCHLD ? SIG.SIGSEGV : signo);
    if (signo === SIG.SIGCHLD) return this.resume(t); // interrupted: let pending signals in
    this.#signal(t, signo);
  }

  /**
   * A SIGILL (the kernel's) on the 0x06 of a patched site: the thread ran the site's old `mov`
   * while it was being patched, or restarts its call at the `syscall`'s place. It goes back to
   * the site, whose jump makes the call.
   */
  #rewound(t: Task, rip: bigint): boolean {
    const site = this.k.usertrap?.rewind(this.k.mem, rip);
    if (site === undefined || new DataView(t.slot.buffer, t.slot.byteOffset).getInt32(THREAD_CONTEXT.siginfo + SI_CODE, true) <= 0) return false;
    t.setReg('rip', site);
    return true;
  }

  /** Where the call that trapped at `rip` (past its `syscall`, or its patched site) runs again. */
  #restartAt(rip: bigint): bigint {
    return this.k.usertrap?.restartAddr(this.k.mem, rip) ?? rip - SYSCALL_INSN;
  }

  /**
   * A trap while the stub ran the task's call at the gadget: its end (SIGILL past the
   * `syscall`), an interrupt, or the signal the kernel raised for the call itself (a traced
   * write to a closed pipe: EPIPE and SIGPIPE, as for a call made from program code). Anything
   * else is the stub's fault, and the program's end.
   */
  #passTrap(t: Task, signo: number, rip: bigint): void {
    const gadget = this.k.region.gadgetAddr;
    const at = rip === gadget || rip === gadget + SYSCALL_INSN;
    if (signo === SIG.SIGILL && rip === gadget + SYSCALL_INSN) return this.#passDone(t);
    if ((signo === SIG.SIGCHLD || FORWARDED.has(signo)) && at) {
      // SIGCHLD is the sentry's own interrupt; the others are sent to the program.
      if (signo !== SIG.SIGCHLD) this.#forwarded(t, signo);
      if (rip === gadget) return this.resume(t); // rewound: it runs again unless a signal is taken
      if (BigInt.asIntN(64, t.reg('rax')) === EINTR && !this.k.signals.interrupts(t)) {
        rerun(t, gadget, process.hrtime.bigint());
        t.send('RETURN');
        return this.sched.makeReady(t);
      }
      // Interrupted for a signal it takes: strace shows the code Linux's call ended with.
      if (BigInt.asIntN(64, t.reg('rax')) === EINTR) t.interruptedAs = Number(-interruptedCode(t.pass!.sysno, t.pass!.args));
      return signo === SIG.SIGCHLD ? this.resume(t) : this.#passDone(t);
    }
    if (KERNEL_RAISED.has(signo) && at) {
      this.#kernelRaised(t, signo);
      // Returned (the usual case): the call ends with its result, then the signal is taken.
      return rip === gadget ? this.resume(t) : this.#passDone(t);
    }
    this.k.killGroup(SIG.SIGSEGV);
  }

  /** A fault of the program's code, or a signal the kernel raised for its syscall (SIGPIPE). */
  #signal(t: Task, signo: number): void {
    if (FORWARDED.has(signo)) {
      this.#forwarded(t, signo);
      // A wait it blocked in ended EINTR for a signal it does not take: it waits on, as natively.
      if (!this.k.signals.interrupts(t)) directRestart(t, this.k.mem, this.k.usertrap);
      return this.resume(t);
    }
    if (KERNEL_RAISED.has(signo)) {
      this.#kernelRaised(t, signo);
      return this.resume(t);
    }
    const info = t.slot.slice(THREAD_CONTEXT.siginfo, THREAD_CONTEXT.siginfo + SIGINFO_SIZE);
    this.k.strace.signal(t.tid, signo, info);
    // A fault the program blocks or ignores kills it, as the kernel's force_sig does.
    if (this.k.signals.actions.disposition(signo) !== 'handler' || (t.sigmask & sigbit(signo)) !== 0n) return this.k.killGroup(signo);
    t.pending.unshift({ signo, info, shown: true });
    this.resume(t);
  }

  /**
   * A signal sent to the stub's process (F_SETOWN's SIGIO, a kill of its pid from outside),
   * which the stub thread running `t` took: the program's process gets it, as a kill to it.
   */
  #forwarded(t: Task, signo: number): void {
    this.k.signals.sendGroup(signo, t.slot.slice(THREAD_CONTEXT.siginfo, THREAD_CONTEXT.siginfo + SIGINFO_SIZE));
  }

  /**
   * A signal the kernel raised for the task's own call (SIGPIPE, SIGXFSZ), made pending for it
   * as Linux's send_sig(current): traced when it is taken (also when the program ignores it, as
   * strace shows it), then its handler, its default action or nothing. The kernel sent it from
   * the stub thread: the sender the program sees is itself.
   */
  #kernelRaised(t: Task, signo: number): void {
    const info = t.slot.slice(THREAD_CONTEXT.siginfo, THREAD_CONTEXT.siginfo + SIGINFO_SIZE);
    const view = new DataView(info.buffer, info.byteOffset, info.byteLength);
    if (view.getInt32(SI_CODE, true) === SI_USER) view.setInt32(SI_PID, this.k.tgid, true);
    t.pending.unshift({ signo, info });
  }

  #syscall(t: Task): void {
    const sysno = t.callSysno;
    if (!t.reported) {
      // The context's actor hears of its first syscall only: lifecycle, not traffic.
      t.reported = true;
      this.k.post({ type: 'contextEvent', pid: this.k.tgid, id: t.id, event: 'syscall', sysno });
    }
    const silent = isSilent(this.k.strace);
    // All six for a printer or a policy module; else those the call takes (a call of up to four
    // reads no line of the slot but the handshake line, see ThreadContext).
    const args = t.callArgs(silent && !this.k.policy.hasModule ? syscallArgCount(sysno) : 6);
    // Its entry time only when a printer shows or counts it (a clock read and a BigInt per call).
    const start = silent ? 0n : process.hrtime.bigint();
    this.k.strace.enter(t.tid, sysno, args);
    const refused = this.k.policy.denied(sysno);
    if (refused !== undefined) return this.finish(t, refused, { sysno, args, start });
    const injected = this.k.policy.injected(t.tid, sysno);
    if (injected !== undefined) return this.finish(t, injected, { sysno, args, start, injected: true });
    const decision = this.k.policy.decide(t.tid, sysno, args);
    if (decision === 'kill') return this.k.killGroup(SIG.SIGSYS);
    const out: Outcome = decision === 'pass' ? emulate(this.k, t, sysno, args) : decision;
    this.#outcome(t, { sysno, args, start }, out);
    // A call that did not return at once (blocked, passed to the kernel) runs them now.
    this.#runAfterCall();
  }

  #outcome(t: Task, call: { sysno: number; args: bigint[]; start: bigint }, out: Outcome): void {
    if (typeof out === 'bigint') return this.finish(t, out, call);
    switch (out) {
      case 'pass':
        // To the kernel as made: every argument register, whatever the call is said to take.
        call.args = t.callArgs();
        return this.#startPass(t, call, { sysno: call.sysno, args: call.args });
      case 'blocked':
        t.blocked = call;
        return;
      case 'exited':
        return;
      case 'execed':
        return this.resume(t);
      case 'restart':
        t.blocked = call;
        return this.restart(t);
      case 'noreturn':
        // The registers are already what the program resumes with (rt_sigreturn): strace shows
        // the mask it restores (from the frame at the entry's stack pointer, the call line's rsp,
        // which the new registers do not change) and the rax it does.
        this.k.strace.exit(t.tid, call.sysno, call.args, t.reg('rax'), call.start, { sp: t.callRsp });
        return this.resume(t);
      default:
        return this.#startPass(t, call, out);
    }
  }

  /** Completes a syscall with `ret` (traced, counted), then signals, then back to the program. */
  finish(t: Task, ret: bigint, call?: { sysno: number; args: bigint[]; start: bigint; injected?: boolean }): void {
    const c = call ?? t.blocked;
    t.blocked = undefined;
    // An interrupted call's EINTR is, to strace, the code Linux's call ended with (`= ? ERESTARTNOHAND`).
    const shown = ret === EINTR && t.interruptedAs !== undefined ? -BigInt(t.interruptedAs) : ret;
    t.interruptedAs = undefined;
    if (c) this.k.strace.exit(t.tid, c.sysno, c.args, shown, c.start, { injected: call?.injected });
    t.setResult(ret);
    this.#runAfterCall();
    this.resume(t);
  }

  /** See SyscallKernel.afterCall. Protected by: the worker's turn (one call handled at a time). */
  readonly #afterCall: Array<() => void> = [];

  afterCall(fn: () => void): void {
    this.#afterCall.push(fn);
  }

  #runAfterCall(): void {
    if (this.#afterCall.length === 0) return; // most calls: no array made
    for (const fn of this.#afterCall.splice(0)) fn();
  }

  /**
   * A call the task slept in is restarted (a signal whose handler has SA_RESTART interrupted
   * it): the task runs its handler, then the same `syscall` again, as Linux's ERESTARTSYS.
   */
  restart(t: Task): void {
    const c = t.blocked;
    t.blocked = undefined;
    t.interruptedAs = undefined;
    if (c) {
      this.k.strace.exit(t.tid, c.sysno, c.args, ERESTARTSYS, c.start);
      t.setReg('rax', BigInt(c.sysno));
      t.setReg('rip', this.#restartAt(t.reg('rip')));
    }
    this.resume(t);
  }

  /** Delivers what is pending and deliverable, then the task runs again. */
  resume(t: Task): void {
    if (t.pass && this.k.signals.deliverable(t) !== undefined) this.#abandonPass(t);
    this.k.signals.deliver(t);
    t.send('RETURN');
    this.sched.makeReady(t);
  }

  /** Has the stub run `sub` for the task at the gadget (the program's registers kept aside). */
  #startPass(t: Task, call: { sysno: number; args: bigint[]; start: bigint }, sub: Substitute): void {
    startPass(t, this.k.region.gadgetAddr, call, sub);
    t.send('RETURN');
    this.sched.makeReady(t);
  }

  #passDone(t: Task): void {
    const next = passResult(t);
    if (typeof next !== 'bigint') {
      setCall(t, this.k.region.gadgetAddr, next);
      t.send('RETURN');
      this.sched.makeReady(t);
      return;
    }
    const p = t.pass!;
    endPass(t);
    this.finish(t, next, p);
  }

  /**
   * A signal arrived while the stub ran the task's call at the gadget. If the kernel rewound the
   * call (rip at the gadget), the program sees it restarted (SA_RESTART) or EINTR; if the call
   * returned (rip past it), the program sees its result.
   */
  #abandonPass(t: Task): void {
    const p = t.pass!;
    const rewound = t.reg('rip') === this.k.region.gadgetAddr;
    const ret = BigInt.asIntN(64, t.reg('rax'));
    endPass(t);
    if (!rewound) {
      const result = p.onDone ? EINTR : ret;
      this.k.strace.exit(t.tid, p.sysno, p.args, result === EINTR ? interruptedCode(p.sysno, p.args) : result, p.start);
      t.setReg('rax', result);
      return;
    }
    const sig = this.k.signals.deliverable(t)!;
    // SA_RESTART restarts what Linux ends with ERESTARTSYS, not the poll family's waits.
    if ((this.k.signals.actions.get(sig).flags & SA_RESTART) !== 0n && interruptedCode(p.sysno, p.args) === EINTR && !NEVER_RESTARTED.has(p.sysno)) {
      t.setReg('rip', this.#restartAt(p.rip));
      t.setReg('rax', BigInt(p.sysno));
      this.k.strace.exit(t.tid, p.sysno, p.args, ERESTARTSYS, p.start);
    } else {
      // Rewound (or never run: interrupted before it): the program gets EINTR; strace shows the
      // code Linux's call would have ended with.
      t.setReg('rax', EINTR);
      const code = interruptedCode(p.sysno, p.args);
      this.k.strace.exit(t.tid, p.sysno, p.args, code === EINTR && !NEVER_RESTARTED.has(p.sysno) ? ERESTARTSYS : code, p.start);
    }
  }
}
