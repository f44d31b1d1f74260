/**
 * The terminal's job-control ioctls (gVisor's TTY foreground process group, reduced): the
 * stubs are in sessions of their own without a controlling terminal, so the terminal's
 * foreground group is the sentry's. Every terminal the program's first session holds counts as
 * its controlling terminal: TIOCGPGRP answers the foreground group (the first process's group
 * until someone sets another), TIOCSPGRP sets it to a group of the session, TIOCGSID answers the
 * session. A process that left the session (setsid) has no controlling terminal: ENOTTY. Signals
 * that reach the program from outside (the CLI forwards Ctrl-C, Ctrl-Z, Ctrl-\ from the real
 * terminal) go to the foreground group, as the terminal's would. The filter traps only these
 * three commands; every other ioctl passes. With the program's stdin a terminal, its reads of
 * fd 0 trap too: a background job's read gets SIGTTIN (see readTerminal), and the commands that
 * change the terminal trap from program code: a background job's gets SIGTTOU (TTY_CHECKED).
 */
import { readlinkSync } from 'node:fs';
import { ERRNO, SA_RESTART, SIG } from '../../abi/linux.js';
import { makeSiginfo } from '../kernel/signals.js';
import type { Task } from '../kernel/task.js';
import { err, type Handler, type Outcome, type SyscallKernel } from './context.js';

/** tcgetpgrp, tcsetpgrp, tcgetsid (asm-generic/ioctls.h). */
export const TIOCGPGRP = 0x540fn;
export const TIOCSPGRP = 0x5410n;
export const TIOCGSID = 0x5429n;
export const TTY_SENTRY: readonly bigint[] = [TIOCGPGRP, TIOCSPGRP, TIOCGSID];
/**
 * Makes the terminal the caller's session's controlling terminal (login_tty, forkpty): only a
 * session leader's, as the program sees sessions. Trapped from program code only: it passes
 * through the gadget once checked.
 */
export const TIOCSCTTY = 0x540en;
/**
 * The commands that change the terminal (tcsetattr's TCSETS*, TCSETA*, termios2's TCSETS*2,
 * tcflush, tcflow): from a background job they raise SIGTTOU (Linux's tty_check_change). They
 * trap from program code only: the sentry lets them pass through the gadget once checked.
 */
export const TTY_CHECKED: readonly bigint[] = [0x5402n, 0x5403n, 0x5404n, 0x5406n, 0x5407n, 0x5408n, 0x402c542bn, 0x402c542cn, 0x402c542dn, 0x540bn, 0x540an];

const TERMINAL = /^\/dev\/(pts\/\d+|tty\w*|console|ptmx)$/;

/** The terminal fd `fd` of stub `pid` names, if it names one (its /proc link). */
function terminalOf(pid: number, fd: number): string | undefined {
  if (fd < 0) return undefined;
  try {
    const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    return TERMINAL.test(target) ? target : undefined;
  } catch {
    return undefined;
  }
}

/** The fd is a terminal (its /proc link names a tty or a pseudo-terminal). */
function isTerminal(k: SyscallKernel, fd: number): boolean {
  return terminalOf(k.self.hostPid, fd) !== undefined;
}

/**
 * The fd is the program's controlling terminal: the terminal the first process's stdio named
 * when the sentry first looked (a pseudo-terminal the program made itself, `script` or `expect`
 * style, is not: no job-control signal for it, as Linux's tty_check_change).
 */
function isControlling(k: SyscallKernel, fd: number): boolean {
  const term = k.tree.terminal;
  term.device ??= [0, 1, 2].map((n) => terminalOf(k.tree.root.hostPid, n)).find((d) => d !== undefined) ?? '';
  return term.device !== '' && terminalOf(k.self.hostPid, fd) === term.device;
}

/**
 * ioctl: the terminal's job-control commands (see the file's doc); others pass.
 *
 * @example
 * ```ts
 * ioctl(k, t, [0n, TIOCGPGRP, addr]); // writes the foreground group at addr
 * ```
 */
export const ioctl: Handler = (k, t, a) => {
  const [fdArg, cmdArg, arg] = a;
  const cmd = BigInt.asUintN(32, cmdArg);
  const fd = Number(BigInt.asIntN(32, fdArg));
  if (TTY_CHECKED.includes(cmd)) return k.sid === k.tree.root.sid && isControlling(k, fd) ? jobCheck(k, t, SIG.SIGTTOU) : 'pass';
  // Only a session leader may take a controlling terminal: the program's (its stub leads one
  // in the kernel too once the program called setsid, see sys_process.ts); the kernel decides the rest.
  if (cmd === TIOCSCTTY) return k.sid === k.tgid ? 'pass' : err(ERRNO.EPERM);
  if (!TTY_SENTRY.includes(cmd)) return 'pass';
  if (!isTerminal(k, fd)) return err(fd < 0 ? ERRNO.EBADF : ERRNO.ENOTTY);
  const session = k.tree.root.sid;
  // Another session's terminal (a pty it made its controlling one) is the kernel's to answer.
  if (k.sid !== session) return isControlling(k, fd) ? err(ERRNO.ENOTTY) : 'pass';
  const term = k.tree.terminal;
  switch (cmd) {
    case TIOCGPGRP:
      return k.mem.writeU32(arg, term.foreground ?? k.tree.root.pgid) ? 0n : err(ERRNO.EFAULT);
    case TIOCGSID:
      return k.mem.writeU32(arg, session) ? 0n : err(ERRNO.EFAULT);
    default: {
      const check = isControlling(k, fd) ? jobCheck(k, t, SIG.SIGTTOU) : 'pass'; // tcsetpgrp from the background
      if (check !== 'pass') return check;
      const v = k.mem.readU32(arg);
      if (v === null) return err(ERRNO.EFAULT);
      const pgid = v | 0;
      if (pgid < 0) return err(ERRNO.EINVAL);
      const exists = [...k.tree.table.all()].some((q) => q.live && q.pgid === pgid && q.sid === session);
      if (!exists) return err(ERRNO.EPERM);
      term.foreground = pgid;
      return 0n;
    }
  }
};

/** si_code of a signal the kernel sends on its own (SIGTTIN for a background read). */
const SI_KERNEL = 0x80;

/**
 * read of fd 0 when the program's stdin is a terminal (the filter traps only those): a process
 * outside the terminal's foreground group reading its controlling terminal is a background job
 * (Linux's tty_check_change): SIGTTIN goes to its whole group and the read runs again once the
 * group is continued (ERESTARTSYS); with SIGTTIN ignored or blocked, or the group orphaned,
 * EIO. Anything else reads. The stubs have no controlling terminal, so the kernel never does
 * this for them.
 *
 * @example
 * ```ts
 * readTerminal(k, t, [0n, buf, 1024n]); // 'pass', or 'restart' with SIGTTIN sent, or -EIO
 * ```
 */
export const readTerminal: Handler = (k, t, a) => {
  if (a[0] !== 0n || k.sid !== k.tree.root.sid || !isControlling(k, 0)) return 'pass';
  return jobCheck(k, t, SIG.SIGTTIN);
};

/**
 * Linux's tty_check_change for the program's controlling terminal: a process of the foreground
 * group goes on ('pass'); one in the background with `signo` (SIGTTIN to read, SIGTTOU to change
 * the terminal) ignored or blocked goes on for SIGTTOU and gets EIO for SIGTTIN; one in an
 * orphaned group gets EIO; any other sends `signo` to its whole group and its call runs again
 * once the group is continued ('restart'), or once its handler ran if that has SA_RESTART
 * (without it the call fails with EINTR after the handler, as Linux's ERESTARTSYS).
 */
function jobCheck(k: SyscallKernel, t: Task, signo: number): Outcome {
  const fg = k.tree.terminal.foreground ?? k.tree.root.pgid;
  if (k.pgid === fg) return 'pass';
  const blocked = (t.sigmask & (1n << BigInt(signo - 1))) !== 0n;
  if (blocked || k.signals.actions.disposition(signo) === 'ignore') return signo === SIG.SIGTTIN ? err(ERRNO.EIO) : 'pass';
  if (k.tree.orphanedGroup(k.pgid)) return err(ERRNO.EIO);
  const info = makeSiginfo(signo, SI_KERNEL, {});
  for (const p of k.tree.table.all()) {
    if (!p.live || p.pgid !== k.pgid) continue;
    const send = () => p.signals.sendGroup(signo, info);
    // Its own process once the call has ended (its line first), the others in their turns.
    if (p === k.self) k.afterCall(send);
    else p.defer(send);
  }
  const handled = k.signals.actions.disposition(signo) === 'handler';
  return !handled || (k.signals.actions.get(signo).flags & SA_RESTART) !== 0n ? 'restart' : err(ERRNO.EINTR);
}
