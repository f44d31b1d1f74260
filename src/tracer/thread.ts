import { readFileSync } from 'node:fs';
import { native, type WaitStatus } from '../native.js';
import { Errors, SystrapError } from '../errors.js';
import { REG, REGISTER_COUNT, SYSCALL_ARG_REGS } from '../abi/registers.js';
import { SIG } from '../abi/linux.js';
import { PTRACE_EVENT_EXIT, TRACER_OPTIONS, WNOHANG, WUNTRACED, __WALL, isRestart } from '../abi/ptrace.js';
import { abi } from '../abi/stub.js';
import type { SyscallLoop, TransactionFault, TransactionPoint, TransactionStep } from './protocol.js';

/** Width of the `syscall` instruction (gVisor's initRegsRipAdjustment). */
const SYSCALL_WIDTH = 2n;

/**
 * A stub thread as seen by the tracer worker that currently owns it (gVisor's `thread`).
 *
 * Precondition for every method but attach(): this OS thread attached the tracee and it is in a
 * ptrace-stop. Only tracer workers use this class.
 */
export class TracedThread {
  /** Attached by this OS thread and not yet detached (nor dead). */
  attached = false;
  #regs = new BigUint64Array(REGISTER_COUNT);
  #fault?: TransactionFault;

  /** Called with each step as it happens (the worker forwards it to the main thread). */
  static onStep?: (step: TransactionStep) => void;

  constructor(
    readonly tgid: number,
    readonly tid: number,
    fault?: TransactionFault,
  ) {
    this.#fault = fault;
  }

  /**
   * PTRACE_ATTACH, then the SIGSTOP stop it always produces (the kernel queues a SIGSTOP and
   * wakes the thread even from group-stop), then the tracer options.
   */
  attach(): void {
    this.faultPoint('attach');
    this.#ptrace(() => native.ptraceAttach(this.tid));
    this.attached = true;
    const s = this.wait();
    if (s.signal !== SIG.SIGSTOP) {
      throw Errors.Protocol(`attach to ${this.tid}: expected a SIGSTOP stop, got signal ${s.signal}`, this.tgid);
    }
    this.#ptrace(() => native.ptraceSetOptions(this.tid, TRACER_OPTIONS));
    // The injection path relies on SIGTRAP; a thread detached into its loop had signals blocked.
    this.#ptrace(() => native.ptraceSetSigmask(this.tid, 0n));
    this.attached = true;
    this.step('ATTACHED');
    this.faultPoint('attached');
  }

  /**
   * Waits for the next stop of this thread. An exit (PTRACE_EVENT_EXIT, or the thread already
   * gone) is the stub's unexpected death: the thread is reaped and ESTUBDEAD thrown.
   */
  wait(): WaitStatus & { kind: 'stopped' } {
    for (;;) {
      let s: WaitStatus | null;
      try {
        s = native.wait4(this.tid, __WALL);
      } catch (e) {
        if ((e as { code?: string }).code === 'ECHILD') throw this.#dead('reaped elsewhere');
        throw e;
      }
      if (s === null) continue;
      if (s.kind === 'stopped') {
        if (s.signal === 0) continue; // spurious
        if (s.signal === SIG.SIGTRAP && s.event === PTRACE_EVENT_EXIT) throw this.#dying();
        return s;
      }
      if (s.kind === 'exited') throw this.#dead(`exited with status ${s.status}`, true);
      if (s.kind === 'signaled') throw this.#dead(`killed by signal ${s.signal}`, true);
    }
  }

  /**
   * Takes over a thread cloned with CLONE_PTRACE by a thread this OS thread traces: it starts
   * traced by us with a SIGSTOP pending, and stops on it before running any instruction.
   */
  adoptClone(): void {
    this.attached = true;
    const s = this.wait();
    if (s.signal !== SIG.SIGSTOP) {
      throw Errors.Protocol(`new thread ${this.tid}: expected a SIGSTOP stop, got signal ${s.signal}`, this.tgid);
    }
    this.#ptrace(() => native.ptraceSetOptions(this.tid, TRACER_OPTIONS));
    this.step('ATTACHED');
    this.faultPoint('attached');
  }

  /** Registers at the initial SIGSTOP, moved back onto the `syscall` instruction, rsp = 0. */
  /** The registers as they are (to put back with {@link restoreRegs}). */
  saveRegs(): BigUint64Array {
    const r = new BigUint64Array(REGISTER_COUNT);
    this.#ptrace(() => native.ptraceGetRegs(this.tid, r));
    return r;
  }

  /** Puts registers saved by {@link saveRegs} back: the thread resumes where it stopped. */
  restoreRegs(r: BigUint64Array): void {
    this.#ptrace(() => native.ptraceSetRegs(this.tid, r));
  }

  /**
   * Attaches, and returns the injection template for `th`: its initRegs, or for a stub no
   * tracer held before, the thread's own registers with %rip at the stub's `syscall`
   * instruction (what a stop at the stub's SIGSTOP would have captured: the same code, segments
   * and flags; everything a syscall reads is set per injection).
   */
  attachFor(th: { initRegs?: BigUint64Array; syscallAddr: bigint }): BigUint64Array {
    this.attach();
    if (th.initRegs) return th.initRegs;
    const r = new BigUint64Array(REGISTER_COUNT);
    this.#ptrace(() => native.ptraceGetRegs(this.tid, r));
    r[REG.rip] = th.syscallAddr;
    r[REG.rsp] = 0n;
    return r;
  }

  grabInitRegs(): BigUint64Array {
    const r = new BigUint64Array(REGISTER_COUNT);
    this.#ptrace(() => native.ptraceGetRegs(this.tid, r));
    r[REG.rip] -= SYSCALL_WIDTH;
    r[REG.rsp] = 0n;
    return r;
  }

  /**
   * Injects one syscall (gVisor's thread.syscall): registers from initRegs, continue until the
   * stub's int3 (SIGTRAP), read rax. Other stops are signals meant for the stub: they are
   * swallowed (continued with signal 0), which makes the kernel restart an interrupted call.
   */
  syscall(
    initRegs: BigUint64Array,
    sysno: number,
    args: readonly bigint[],
    mode = abi.STUB_MODE_TRAP,
    counters = { signalStops: 0, restarts: 0 },
  ): bigint {
    const r = this.#regs;
    r.set(initRegs);
    r[REG.rax] = BigInt(sysno);
    r[REG.orig_rax] = BigInt(sysno);
    r[REG.rbx] = BigInt(mode);
    for (let i = 0; i < SYSCALL_ARG_REGS.length; i++) r[REG[SYSCALL_ARG_REGS[i]]] = BigInt.asUintN(64, args[i] ?? 0n);
    this.#ptrace(() => native.ptraceSetRegs(this.tid, r));
    for (;;) {
      this.#ptrace(() => native.ptraceCont(this.tid, 0));
      const s = this.wait();
      if (s.signal === SIG.SIGTRAP) break;
      counters.signalStops++;
      this.#ptrace(() => native.ptraceGetRegs(this.tid, r));
      if (isRestart(BigInt.asIntN(64, r[REG.rax]))) counters.restarts++;
    }
    this.#ptrace(() => native.ptraceGetRegs(this.tid, r));
    return BigInt.asIntN(64, r[REG.rax]);
  }

  /**
   * syscall() retried while the result is -ERESTARTSYS/-ERESTARTNOINTR/-ERESTARTNOHAND
   * (gVisor's syscallIgnoreInterrupt).
   */
  syscallIgnoreInterrupt(
    initRegs: BigUint64Array,
    sysno: number,
    args: readonly bigint[],
    counters = { signalStops: 0, restarts: 0 },
  ): bigint {
    this.step('INJECT');
    this.faultPoint('injecting');
    for (;;) {
      const ret = this.syscall(initRegs, sysno, args, abi.STUB_MODE_TRAP, counters);
      if (!isRestart(ret)) {
        this.step('INJECTED');
        return ret;
      }
      counters.restarts++;
    }
  }

  /** Detaches into group-stop: the thread stays parked until the next attach. */
  detachParked(): void {
    this.step('DETACH');
    this.faultPoint('detaching');
    this.#ptrace(() => native.ptraceDetach(this.tid, SIG.SIGSTOP));
    this.attached = false;
    this.step('DETACHED');
  }

  /**
   * Detaches with a signal to deliver: a sysmsg thread is started by a SIGSEGV its handler
   * recognises (Msg.state = Initializing), gVisor's fake-fault start.
   */
  detachWithSignal(signal: number): void {
    this.step('DETACH');
    this.faultPoint('detaching');
    this.#ptrace(() => native.ptraceDetach(this.tid, signal));
    this.attached = false;
    this.step('STARTED');
  }

  /**
   * Detaches the syscall thread into its service loop (gVisor's syscallThread.detach): signals
   * blocked, RBX = loop mode, R12 = message, R13 = the last state served, RIP just past the
   * `syscall` instruction; then out of group-stop with SIGCONT.
   */
  detachIntoLoop(initRegs: BigUint64Array, loop: SyscallLoop): void {
    this.step('DETACH');
    this.faultPoint('detaching');
    const r = this.#regs;
    r.set(initRegs);
    r[REG.rbx] = BigInt(abi.STUB_MODE_RUN_SYSCALL_LOOP);
    r[REG.r12] = loop.msgAddr;
    r[REG.r13] = BigInt(loop.state >>> 0);
    r[REG.rip] = initRegs[REG.rip] + SYSCALL_WIDTH;
    r[REG.orig_rax] = 0xffffffffffffffffn; // not in a syscall: no restart on resume
    this.#ptrace(() => native.ptraceSetSigmask(this.tid, 0xffffffffffffffffn));
    this.#ptrace(() => native.ptraceSetRegs(this.tid, r));
    this.#ptrace(() => native.ptraceDetach(this.tid, SIG.SIGSTOP));
    this.attached = false;
    native.tgkill(this.tgid, this.tid, SIG.SIGCONT);
    this.step('DETACHED');
  }

  /** Reports a step of the transaction (the worker sends it to the actor at once). */
  step(type: TransactionStep['type']): void {
    TracedThread.onStep?.({ tid: this.tid, type });
  }

  /** Runs the fault planned for this point, if any (scenario tests). */
  faultPoint(at: TransactionPoint): void {
    const f = this.#fault;
    if (!f || f.at !== at) return;
    this.#fault = undefined;
    if (f.action === 'kill') native.kill(this.tgid, SIG.SIGKILL);
    else if (f.action === 'delay') Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, f.ms ?? 0);
    else if (f.action === 'fail') throw Errors.Syscall('ptrace', f.errno ?? 1, this.tgid);
  }

  /** Runs a ptrace request; ESRCH on a dead thread becomes ESTUBDEAD (and the thread is reaped). */
  #ptrace(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      // PTRACE_ATTACH to a process that is exiting or a zombie says EPERM: a death, not a refusal.
      if ((e as { code?: string }).code === 'EPERM' && !this.attached && exitingOrGone(this.tid)) throw this.#dead('exited before the attach');
      if ((e as { code?: string }).code !== 'ESRCH') throw e;
      // ESRCH: gone, or not in a ptrace-stop (being killed). Wait for what happened.
      this.wait();
      throw e;
    }
  }

  /** The thread reported PTRACE_EVENT_EXIT: let it finish exiting, reap it. */
  #dying(): SystrapError {
    let detail = 'exiting';
    try {
      const status = native.ptraceGetEventMsg(this.tid);
      detail = (status & 0x7f) !== 0 ? `killed by signal ${status & 0x7f}` : `exited with status ${(status >> 8) & 0xff}`;
      native.ptraceCont(this.tid, 0);
    } catch {
      // already gone
    }
    return this.#dead(detail);
  }

  #dead(detail: string, reaped = false): SystrapError {
    this.attached = false;
    this.step('EXITED');
    if (!reaped) reap(this.tid);
    return Errors.StubDead(this.tgid, detail);
  }
}

/** Reaps a dead thread: blocks until it is gone (it is already exiting). */
export function reap(tid: number): void {
  for (;;) {
    try {
      const s = native.wait4(tid, __WALL);
      if (s === null || s.kind === 'exited' || s.kind === 'signaled') return;
      if (s.kind === 'stopped') native.ptraceCont(tid, 0); // still traced on its way out
    } catch {
      return; // ECHILD: reaped
    }
  }
}

/** Waits for an untraced child to reach group-stop (after it stopped itself with SIGSTOP). */
/** True when `tid` is a zombie, exiting (state Z or X) or gone. */
function exitingOrGone(tid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${tid}/stat`, 'utf8');
    return /^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return true;
  }
}

export function waitGroupStop(pid: number): void {
  for (;;) {
    let s: WaitStatus | null;
    try {
      s = native.wait4(pid, __WALL | WUNTRACED);
    } catch (e) {
      throw Errors.StubDead(pid, `vanished before its first stop (${(e as Error).message})`);
    }
    if (s === null) continue;
    if (s.kind === 'stopped' && s.signal === SIG.SIGSTOP) return;
    if (s.kind === 'exited') throw Errors.StubDead(pid, `exited with status ${s.status} before its first stop`);
    if (s.kind === 'signaled') throw Errors.StubDead(pid, `killed by signal ${s.signal} before its first stop`);
    throw Errors.Protocol(`stub ${pid}: unexpected first stop ${JSON.stringify(s)}`, pid);
  }
}

export { WNOHANG };
