import { ERRNO } from '../../abi/linux.js';
import { SYSCALL_ARG_REGS, REG } from '../../abi/registers.js';
import { SYS } from '../../abi/syscalls.js';
import type { Substitute, Task } from './task.js';
import type { PatchMemory, UserTrap } from '../../shm/usertrap.js';

/** Register indices of the six syscall arguments. */
export const ARG_IDX = SYSCALL_ARG_REGS.map((r) => REG[r]);

/**
 * The passthrough gadget (native/stub/sysmsg.c: `syscall; ud2` in the stub code): the sentry
 * has the stub thread make a call with the program's registers, and the `ud2` right after
 * traps back with the result. These functions move a task in and out of it; the program's own
 * registers are kept aside meanwhile. Preconditions: the caller owns the task (sentry worker)
 * and sends the task machine its events.
 *
 * @example
 * ```ts
 * startPass(t, gadget, { sysno, args, start }, { sysno, args });  // then queue it (SWITCH_PASS)
 * // … it traps with SIGILL at gadget + 2:
 * const next = passResult(t);   // bigint: done (endPass), or another Substitute to run
 * ```
 */
export function startPass(t: Task, gadget: bigint, call: { sysno: number; args: bigint[]; start: bigint }, sub: Substitute): void {
  t.pass = { sysno: call.sysno, args: call.args, rip: t.reg('rip'), savedArgs: ARG_IDX.map((i) => t.regs[i]), start: call.start, onDone: sub.onDone };
  setCall(t, gadget, sub);
}

/** Points the task at the gadget with `sub` as the call to make. */
export function setCall(t: Task, gadget: bigint, sub: Substitute): void {
  if (t.pass) t.pass.current = sub;
  ARG_IDX.forEach((r, i) => (t.regs[r] = BigInt.asUintN(64, sub.args[i] ?? 0n)));
  t.setReg('rax', BigInt(sub.sysno));
  t.setReg('rip', gadget);
}

/**
 * The gadget's call returned: the program's result, or the next substitute call to make (its
 * continuation is then the pass's). Precondition: the task is in passthrough and trapped at
 * gadget + 2.
 */
export function passResult(t: Task): bigint | Substitute {
  const p = t.pass!;
  const ret = BigInt.asIntN(64, t.reg('rax'));
  if (!p.onDone) return ret;
  const next = p.onDone(ret);
  if (typeof next !== 'bigint') p.onDone = next.onDone;
  return next;
}

/** The program's registers back as after its own `syscall` (rcx = return address, r11 = flags). */
export function endPass(t: Task): void {
  const p = t.pass!;
  t.pass = undefined;
  ARG_IDX.forEach((r, i) => (t.regs[r] = p.savedArgs[i]));
  t.setReg('rip', p.rip);
  t.setReg('rcx', p.rip);
  t.setReg('r11', t.reg('eflags'));
}

/**
 * Timeouts in milliseconds that Linux counts down across a restart (poll's restart block), by
 * call and argument index. select, pselect6 and ppoll keep theirs in program memory, which the
 * kernel updates as the call ends, so running them again waits only what is left.
 */
const MS_TIMEOUTS: Readonly<Record<number, number>> = { [SYS.poll]: 2, [SYS.epoll_wait]: 3, [SYS.epoll_pwait]: 3 };

/**
 * Runs the stub's current call again: a signal the program does not take (it blocks or ignores
 * it) interrupted it, which natively would not have happened (the stub thread takes the signals
 * the program blocks, to forward them). A countdown timeout is what is left of the program's.
 * Precondition: the task is in passthrough, its call ended with EINTR.
 *
 * @example
 * ```ts
 * rerun(t, gadget, process.hrtime.bigint()); // poll(fds, 1, 5000) 2 s in: poll(fds, 1, 3000)
 * ```
 */
export function rerun(t: Task, gadget: bigint, nowNs: bigint): void {
  const p = t.pass!;
  const sub = p.current ?? { sysno: p.sysno, args: p.args };
  const at = MS_TIMEOUTS[sub.sysno];
  let args = sub.args;
  if (at !== undefined && sub.sysno === p.sysno && BigInt.asIntN(32, p.args[at]) >= 0n) {
    const left = BigInt.asIntN(32, p.args[at]) - (nowNs - p.start) / 1_000_000n;
    args = args.map((v, i) => (i === at ? (left > 0n ? left : 0n) : v));
  }
  setCall(t, gadget, { ...sub, args });
}

/**
 * What Linux's call ended with when a signal interrupted it and a handler runs (the program
 * sees EINTR; strace shows this): poll's restart block when it has a timeout, "restart if no
 * handler" for the select and poll family, EINTR for the rest that end so (epoll_wait).
 *
 * @example
 * ```ts
 * interruptedCode(SYS.poll, [fds, 1n, 100n]); // -ERESTART_RESTARTBLOCK
 * ```
 */
export function interruptedCode(sysno: number, args: bigint[]): bigint {
  if (sysno === SYS.poll) return -BigInt(BigInt.asIntN(32, args[2]) >= 0n ? ERRNO.ERESTART_RESTARTBLOCK : ERRNO.ERESTARTNOHAND);
  if (sysno === SYS.select || sysno === SYS.pselect6 || sysno === SYS.ppoll) return -BigInt(ERRNO.ERESTARTNOHAND);
  return -BigInt(ERRNO.EINTR);
}

/** `mov $imm32, %eax; syscall`: how glibc's wrappers make their calls. */
const MOV_EAX = 0xb8;

/**
 * A call the program made itself (not at the gadget) ended with EINTR for a signal it does not
 * take (one it blocks or ignores, which the stub thread took to forward): when the call is a
 * wait that runs again with nothing lost, the task is set to make it again, and true. Its
 * number is gone from the registers (the kernel put EINTR in rax), so it is read from the
 * code: the `mov $N, %eax` right before the `syscall`, as glibc's wrappers make every call.
 * Waits of the poll family only, and only those whose timeout is none or is kept up to date by
 * the kernel in memory (select, pselect6, ppoll): a poll or epoll_wait with a timeout in
 * milliseconds would wait it anew, and keeps its EINTR, as a signal with a handler would give.
 *
 * @example
 * ```ts
 * if (directRestart(t, mem)) resume(t); // poll(fds, 3, -1) runs again
 * ```
 */
export function directRestart(t: Task, mem: PatchMemory, usertrap?: UserTrap): boolean {
  if (BigInt.asIntN(64, t.reg('rax')) !== -BigInt(ERRNO.EINTR)) return false;
  const rip = t.reg('rip');
  // A patched site's number is the sentry's (the code is the jump now); it restarts at the site.
  const patchedNo = usertrap?.sysnoAt(mem, rip);
  let sysno = patchedNo;
  if (sysno === undefined) {
    const code = mem.read(rip - 7n, 7);
    if (!code || code[0] !== MOV_EAX || code[5] !== 0x0f || code[6] !== 0x05) return false;
    sysno = new DataView(code.buffer, code.byteOffset, 7).getUint32(1, true);
  }
  const patched = patchedNo !== undefined;
  const untimed = (reg: 'rdx' | 'r10') => BigInt.asIntN(32, t.reg(reg)) < 0n;
  const again =
    sysno === SYS.select || sysno === SYS.pselect6 || sysno === SYS.ppoll
      ? true
      : sysno === SYS.poll
        ? untimed('rdx')
        : sysno === SYS.epoll_wait || sysno === SYS.epoll_pwait
          ? untimed('r10')
          : sysno === SYS.epoll_pwait2 && t.reg('r10') === 0n;
  if (!again) return false;
  t.setReg('rax', BigInt(sysno));
  t.setReg('rip', patched ? rip - 7n : rip - 2n);
  return true;
}
