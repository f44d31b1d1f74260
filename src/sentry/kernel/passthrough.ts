import { SYSCALL_ARG_REGS, REG } from '../../abi/registers.js';
import type { Substitute, Task } from './task.js';

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
