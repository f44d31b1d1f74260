import type { ProgramMemory } from './memory.js';
import type { Task } from './task.js';
import { NSIG, SIG, SA_ONSTACK, SIG_DFL, SIG_IGN, SS_DISABLE, SS_ONSTACK } from '../../abi/linux.js';

/** A program's signal disposition (the kernel's struct sigaction, x86-64 layout). */
export interface SigAction {
  handler: bigint;
  flags: bigint;
  restorer: bigint;
  mask: bigint;
}


/** Bit of a signal in a sigset. */
export const sigbit = (signo: number): bigint => 1n << BigInt(signo - 1);

/** Signals that can be neither caught nor blocked. */
export const UNBLOCKABLE = sigbit(SIG.SIGKILL) | sigbit(SIG.SIGSTOP);

/** Signals whose default action is to do nothing, and those whose default stops the process. */
const DEFAULT_IGNORE: ReadonlySet<number> = new Set([SIG.SIGCHLD, SIG.SIGCONT, SIG.SIGURG, SIG.SIGWINCH]);
const DEFAULT_STOP: ReadonlySet<number> = new Set([SIG.SIGSTOP, SIG.SIGTSTP, SIG.SIGTTIN, SIG.SIGTTOU]);

/**
 * What the default action of a signal is (signal(7)); core dumps count as terminate.
 *
 * @example
 * ```ts
 * defaultAction(SIG.SIGCHLD); // 'ignore'
 * ```
 */
export function defaultAction(signo: number): 'terminate' | 'ignore' | 'stop' {
  if (DEFAULT_IGNORE.has(signo)) return 'ignore';
  if (DEFAULT_STOP.has(signo)) return 'stop';
  return 'terminate';
}

/** The signal table shared by the program's threads (CLONE_SIGHAND). */
export class SignalTable {
  readonly #actions: SigAction[] = Array.from({ length: NSIG + 1 }, () => ({ handler: SIG_DFL, flags: 0n, restorer: 0n, mask: 0n }));

  get(signo: number): SigAction {
    return this.#actions[signo];
  }

  set(signo: number, a: SigAction): void {
    this.#actions[signo] = a;
  }

  /** execve: caught signals go back to their default; ignored ones stay ignored. */
  resetForExec(): void {
    for (let s = 1; s <= NSIG; s++) {
      const a = this.#actions[s];
      if (a.handler !== SIG_IGN) this.#actions[s] = { handler: SIG_DFL, flags: 0n, restorer: 0n, mask: 0n };
    }
  }

  /** The action a delivery takes now: ignore, the default's kind, or the handler. */
  disposition(signo: number): 'ignore' | 'terminate' | 'stop' | 'handler' {
    const a = this.#actions[signo];
    // SIGSTOP can be neither caught nor ignored: whatever sigaction said, it stops.
    if (signo === SIG.SIGSTOP) return 'stop';
    if (a.handler === SIG_IGN) return 'ignore';
    if (a.handler === SIG_DFL) return defaultAction(signo);
    return 'handler';
  }
}

/** Byte offsets of the x86-64 rt_sigframe: pretcode, ucontext, siginfo. */
const UC = 8;
const MCONTEXT = UC + 40;
const UC_SIGMASK = MCONTEXT + 256;
const INFO = UC + 304;
export const FRAME_SIZE = INFO + 128;

/** sigcontext register order (asm/sigcontext.h) mapped to user_regs_struct names. */
const SIGCONTEXT_REGS = ['r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rdi', 'rsi', 'rbp', 'rbx', 'rdx', 'rax', 'rcx', 'rsp', 'rip', 'eflags'] as const;

/** Builds a siginfo for a signal sent by a process (kill), or with a fault address. */
export function makeSiginfo(signo: number, code: number, pidOrAddr: { pid?: number; uid?: number; addr?: bigint }): Uint8Array {
  const b = new Uint8Array(128);
  const dv = new DataView(b.buffer);
  dv.setInt32(0, signo, true);
  dv.setInt32(8, code, true);
  if (pidOrAddr.addr !== undefined) dv.setBigUint64(16, pidOrAddr.addr, true);
  else {
    dv.setInt32(16, pidOrAddr.pid ?? 0, true);
    dv.setInt32(20, pidOrAddr.uid ?? 0, true);
  }
  return b;
}

/**
 * Sets up a signal frame on the task's stack (or alternate stack) the way the kernel does, and
 * points the task at the handler. `oldMask` is the mask the frame restores. Returns false when
 * the frame cannot be written (the kernel then kills with SIGSEGV).
 */
export function setupFrame(t: Task, mem: ProgramMemory, signo: number, act: SigAction, info: Uint8Array, oldMask: bigint): boolean {
  const rsp = t.reg('rsp');
  const onAlt = t.altstack.flags !== SS_DISABLE && rsp > t.altstack.sp && rsp <= t.altstack.sp + t.altstack.size;
  let sp = (act.flags & SA_ONSTACK) !== 0n && t.altstack.flags !== SS_DISABLE && !onAlt ? t.altstack.sp + t.altstack.size : rsp - 128n;
  sp = ((sp - BigInt(FRAME_SIZE)) & ~15n) - 8n;
  const f = new Uint8Array(FRAME_SIZE);
  const dv = new DataView(f.buffer);
  dv.setBigUint64(0, act.restorer, true);
  // uc_stack: the alternate stack as it is.
  dv.setBigUint64(UC + 16, t.altstack.sp, true);
  dv.setInt32(UC + 24, onAlt ? SS_ONSTACK : t.altstack.flags, true);
  dv.setBigUint64(UC + 32, t.altstack.size, true);
  SIGCONTEXT_REGS.forEach((r, i) => dv.setBigUint64(MCONTEXT + i * 8, t.reg(r), true));
  dv.setUint16(MCONTEXT + 144, Number(t.reg('cs')), true);
  dv.setUint16(MCONTEXT + 150, Number(t.reg('ss')), true);
  dv.setBigUint64(MCONTEXT + 184, 0n, true); // fpstate: kept by the sentry (Task.fpStack)
  dv.setBigUint64(UC_SIGMASK, oldMask, true);
  f.set(info, INFO);
  if (!mem.write(sp, f)) return false;
  t.fpStack.push(t.fpImage());
  if (t.fpStack.length > 64) t.fpStack.shift(); // handlers left by longjmp never return
  t.setReg('rdi', BigInt(signo));
  t.setReg('rsi', sp + BigInt(INFO));
  t.setReg('rdx', sp + BigInt(UC));
  t.setReg('rax', 0n);
  t.setReg('rsp', sp);
  t.setReg('rip', act.handler);
  t.setReg('eflags', t.reg('eflags') & ~0x50500n); // clear TF, DF, RF, NT as the kernel does
  return true;
}

/** rt_sigreturn: restores registers, mask and FP state from the frame at rsp; false on a fault. */
export function restoreFrame(t: Task, mem: ProgramMemory): boolean {
  const uc = t.reg('rsp'); // the restorer's `syscall` runs after `ret` popped pretcode
  const b = mem.read(uc, INFO - UC); // the ucontext: everything up to the siginfo
  if (!b) return false;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const m = MCONTEXT - UC;
  const flagsMask = 0x40dd5n; // CF PF AF ZF SF TF DF OF AC: what user code may set
  SIGCONTEXT_REGS.forEach((r, i) => {
    const v = dv.getBigUint64(m + i * 8, true);
    if (r === 'eflags') t.setReg('eflags', (t.reg('eflags') & ~flagsMask) | (v & flagsMask));
    else t.setReg(r, v);
  });
  t.setReg('orig_rax', -1n);
  t.sigmask = dv.getBigUint64(UC_SIGMASK - UC, true) & ~UNBLOCKABLE;
  const fp = t.fpStack.pop();
  if (fp) t.setFpImage(fp);
  return true;
}
