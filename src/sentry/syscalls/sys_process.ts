import { readFileSync } from 'node:fs';
import { SYS } from '../../abi/syscalls.js';
import { PR_SET_KEEPCAPS, setKeepCaps } from './sys_attrs.js';
import {
  CLONE_CHILD_CLEARTID,
  CLONE_CHILD_SETTID,
  CLONE_NEWNAMESPACES,
  CLONE_PARENT,
  CLONE_PARENT_SETTID,
  CLONE_PIDFD,
  CLONE_SETTLS,
  CLONE_SIGHAND,
  CLONE_THREAD,
  CLONE_VFORK,
  CLONE_VM,
  CSIGNAL,
  ERRNO,
  NSIG,
  P_ALL,
  P_PGID,
  P_PID,
  P_PIDFD,
  SIG,
  TASK_COMM_LEN,
  WAIT,
} from '../../abi/linux.js';
import type { WaitCall, WaitSelect } from '../kernel/process.js';
import { err, type Handler, type Outcome, type SyscallKernel } from './context.js';
import type { Task } from '../kernel/task.js';
import { cloneThread } from './sys_thread.js';

/** prctl options about the process tree and the thread's name: the sentry's (the rest pass to the kernel). */
export const PR_SET_PDEATHSIG = 1n;
export const PR_GET_PDEATHSIG = 2n;
export const PR_SET_CHILD_SUBREAPER = 36n;
export const PR_GET_CHILD_SUBREAPER = 37n;
export const PR_SET_NAME = 15n;
export const PR_GET_NAME = 16n;
/** no_new_privs: the stub threads have it set for their seccomp filter; the program's own flag is the sentry's. */
export const PR_SET_NO_NEW_PRIVS = 38n;
export const PR_GET_NO_NEW_PRIVS = 39n;
export const PRCTL_SENTRY = [PR_SET_PDEATHSIG, PR_GET_PDEATHSIG, PR_SET_NAME, PR_GET_NAME, PR_SET_CHILD_SUBREAPER, PR_GET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS, PR_GET_NO_NEW_PRIVS];

/** wait4's options Linux accepts, and waitid's. */
const WAIT4_OPTIONS = WAIT.WNOHANG | WAIT.WUNTRACED | WAIT.WCONTINUED | WAIT.__WNOTHREAD | WAIT.__WALL | WAIT.__WCLONE;
const WAITID_OPTIONS = WAIT.WNOHANG | WAIT.WSTOPPED | WAIT.WEXITED | WAIT.WCONTINUED | WAIT.WNOWAIT | WAIT.__WNOTHREAD | WAIT.__WALL | WAIT.__WCLONE;

const i32 = (v: bigint): number => Number(BigInt.asIntN(32, v));

/** How far below a new thread's stack pointer it may write before a guard page would stop it, and above (the red zone). */
const STACK_REACH = 64n * 1024n;
const RED_ZONE = 128n;

/**
 * Processes (gVisor's sys_thread.go fork/vfork/clone, wait4/waitid, and the process group and
 * session calls): a new process is a fork of the caller's stub (see Kernel.fork); wait reports
 * the tree's children as Linux would; process groups and sessions are the sentry's (stubs keep
 * sessions of their own on the host, so a program's setsid never moves a stub out of reach).
 *
 * @example
 * ```ts
 * clone(kernel, task, [BigInt(SIG.SIGCHLD), 0n, 0n, 0n, 0n]); // 'blocked': the child's pid follows
 * ```
 */
export const clone: Handler = (k, t, a) => {
  const [flags, newsp, ptid, ctid, tls] = a;
  // A stack in (or just above) the stub region is memory the program cannot have: natively
  // the new thread's first push faults and SIGSEGV kills the process; here it would scribble
  // over the stub's own pages.
  if (newsp !== 0n && newsp - STACK_REACH < k.region.end && newsp + RED_ZONE > k.region.start) return k.killGroup(SIG.SIGSEGV);
  // A pidfd for a thread (Linux 6.9's PIDFD_THREAD) would need a host thread of its own: none.
  if ((flags & CLONE_THREAD) !== 0n && (flags & CLONE_PIDFD) !== 0n) return err(ERRNO.EINVAL);
  if ((flags & CLONE_THREAD) !== 0n) return cloneThread(k, t, a);
  if ((flags & CLONE_SIGHAND) !== 0n && (flags & CLONE_VM) === 0n) return err(ERRNO.EINVAL);
  if ((flags & CLONE_NEWNAMESPACES) !== 0n) return err(ERRNO.EPERM);
  // CLONE_PIDFD shares clone's parent_tid argument with CLONE_PARENT_SETTID: not both.
  if ((flags & CLONE_PIDFD) !== 0n && (flags & CLONE_PARENT_SETTID) !== 0n) return err(ERRNO.EINVAL);
  // CLONE_VM without CLONE_THREAD (posix_spawn, vfork): the child gets a copy of the memory,
  // not the memory itself (it only ever runs to its execve or _exit there).
  const exitSignal = Number(flags & CSIGNAL);
  if (exitSignal > NSIG) return err(ERRNO.EINVAL);
  return k.tree.fork(k.self, t, {
    vfork: (flags & CLONE_VFORK) !== 0n,
    sameParent: (flags & CLONE_PARENT) !== 0n,
    exitSignal,
    stack: newsp,
    tls: (flags & CLONE_SETTLS) !== 0n ? tls : undefined,
    childSetTid: (flags & CLONE_CHILD_SETTID) !== 0n ? ctid : undefined,
    childClearTid: (flags & CLONE_CHILD_CLEARTID) !== 0n ? ctid : undefined,
    parentSetTid: (flags & CLONE_PARENT_SETTID) !== 0n ? ptid : undefined,
    pidfdAt: (flags & CLONE_PIDFD) !== 0n ? ptid : undefined,
  });
};

export const fork: Handler = (k, t) => k.tree.fork(k.self, t, { vfork: false, sameParent: false, exitSignal: SIG.SIGCHLD, stack: 0n });
export const vfork: Handler = (k, t) => k.tree.fork(k.self, t, { vfork: true, sameParent: false, exitSignal: SIG.SIGCHLD, stack: 0n });

/** Parks `t` for a wait that has nothing to report yet; a signal with SA_RESTART restarts it. */
function waitFor(k: SyscallKernel, t: Task, call: WaitCall): Outcome {
  const r = k.tree.table.wait(k.self, t, call);
  if (r !== undefined) return r;
  k.park(t, 'SUSPEND');
  t.interruptedAs = ERRNO.ERESTARTSYS;
  return 'blocked';
}

export const wait4: Handler = (k, t, a) => {
  const [pidArg, status, options, rusage] = a;
  if ((options & ~WAIT4_OPTIONS) !== 0n) return err(ERRNO.EINVAL);
  const pid = i32(pidArg);
  let select: WaitSelect;
  if (pid === -1) select = { kind: 'any' };
  else if (pid > 0) select = { kind: 'pid', pid };
  else if (pid === 0) select = { kind: 'pgid', pgid: k.pgid };
  else if (pid === -2147483648) return err(ERRNO.ESRCH);
  else select = { kind: 'pgid', pgid: -pid };
  return waitFor(k, t, { kind: 'wait4', select, options, out: status, rusage });
};

export const waitid: Handler = (k, t, a) => {
  const [idtype, id, infop, options, rusage] = a;
  if ((options & ~WAITID_OPTIONS) !== 0n || (options & (WAIT.WEXITED | WAIT.WSTOPPED | WAIT.WCONTINUED)) === 0n) return err(ERRNO.EINVAL);
  let select: WaitSelect;
  if (idtype === P_ALL) select = { kind: 'any' };
  else if (idtype === P_PID) {
    if (i32(id) <= 0) return err(ERRNO.EINVAL);
    select = { kind: 'pid', pid: i32(id) };
  } else if (idtype === P_PGID) {
    if (i32(id) < 0) return err(ERRNO.EINVAL);
    select = { kind: 'pgid', pgid: i32(id) === 0 ? k.pgid : i32(id) };
  } else if (idtype === P_PIDFD) return waitPidfd(k, t, i32(id), options, infop, rusage);
  else return err(ERRNO.EINVAL);
  return waitFor(k, t, { kind: 'waitid', select, options, out: infop, rusage });
};

/** siginfo's si_pid (x86-64): 0 after a WNOHANG waitid that found nothing to report. */
const SI_PID = 16n;

/**
 * waitid(P_PIDFD, fd): the process the pidfd names (see PidfdNames), waited for as P_PID; a
 * pidfd made with PIDFD_NONBLOCK does not wait, and answers EAGAIN when there is nothing to
 * report (Linux 5.10+). A pidfd of a process that is not the caller's child: ECHILD.
 */
function waitPidfd(k: SyscallKernel, t: Task, fd: number, options: bigint, infop: bigint, rusage: bigint): Outcome {
  if (fd < 0) return err(ERRNO.EINVAL);
  const named = k.tree.table.pidfds.resolve(k.mem.pid, fd, k.tree.sandboxed);
  if (named === 'EBADF') return err(ERRNO.EBADF);
  if (named === 'unknown') return err(ERRNO.ECHILD);
  const call: WaitCall = { kind: 'waitid', select: { kind: 'pid', pid: named.pid }, options: named.nonblock ? options | WAIT.WNOHANG : options, out: infop, rusage };
  const r = waitFor(k, t, call);
  if (!named.nonblock || r !== 0n || (options & WAIT.WNOHANG) !== 0n || infop === 0n) return r;
  return k.mem.readU32(infop + SI_PID) === 0 ? err(ERRNO.EAGAIN) : r;
}

/** A process of the tree by pid (0: the caller). */
function target(k: SyscallKernel, pid: number) {
  return pid === 0 ? k.self : k.tree.table.process(pid);
}

/**
 * The group and session of the tree's parent, which is outside it (getppid of the first
 * process): the sandbox's init leads its own (it called setsid, native/sandbox.cc), Node's are
 * read from /proc; undefined if they cannot be.
 */
function outsideParentIds(k: SyscallKernel): { pgid: number; sid: number } | undefined {
  if (k.tree.sandboxed) return { pgid: 1, sid: 1 };
  try {
    const stat = readFileSync(`/proc/${k.tree.outsideParentPid}/stat`, 'utf8');
    const [, , pgid, sid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
    return { pgid, sid };
  } catch {
    return undefined;
  }
}

export const getpgid: Handler = (k, _t, a) => {
  const pid = i32(a[0]);
  const p = target(k, pid);
  const outside = !p && pid === k.tree.outsideParentPid ? outsideParentIds(k) : undefined;
  return p ? BigInt(p.pgid) : outside ? BigInt(outside.pgid) : err(ERRNO.ESRCH);
};

export const getpgrp: Handler = (k) => BigInt(k.pgid);

export const getsid: Handler = (k, _t, a) => {
  const pid = i32(a[0]);
  const p = target(k, pid);
  const outside = !p && pid === k.tree.outsideParentPid ? outsideParentIds(k) : undefined;
  return p ? BigInt(p.sid) : outside ? BigInt(outside.sid) : err(ERRNO.ESRCH);
};

/**
 * setpgid as Linux checks it: the caller or one of its children (EPERM once that child has
 * execve'd is not tracked), never a session leader, into a group of the same session.
 */
export const setpgid: Handler = (k, _t, a) => {
  const pid = i32(a[0]);
  const pgidArg = i32(a[1]);
  if (pgidArg < 0) return err(ERRNO.EINVAL);
  const p = target(k, pid);
  if (!p || (p !== k.self && p.parent !== k.self)) return err(ERRNO.ESRCH);
  if (p.sid !== k.sid) return err(ERRNO.EPERM);
  if (p.sid === p.tgid) return err(ERRNO.EPERM); // a session leader
  const pgid = pgidArg === 0 ? p.tgid : pgidArg;
  if (pgid !== p.tgid) {
    const inGroup = [...k.tree.table.all()].some((q) => q.live && q.pgid === pgid && q.sid === k.sid);
    if (!inGroup) return err(ERRNO.EPERM);
  }
  p.pgid = pgid;
  return 0n;
};

export const setsid: Handler = (k) => {
  const self = k.self;
  // A process group leader cannot (its group would have members in two sessions).
  if ([...k.tree.table.all()].some((q) => q.live && q.pgid === self.tgid)) return err(ERRNO.EPERM);
  self.sid = self.tgid;
  self.pgid = self.tgid;
  // The stub leads a session of its own in the kernel too, so that a terminal the program opens
  // can become its controlling terminal (TIOCSCTTY: forkpty, script, expect), with the kernel's
  // job control on it (a Ctrl-C typed into the master). Its kernel group is then its pid, the
  // group the program sees. A stub that leads its kernel group already (the sandbox's first
  // stub) fails with EPERM and stays where it is: the session it leads has no terminal either.
  return { sysno: SYS.setsid, args: [], onDone: () => BigInt(self.sid) };
};

/** prctl's options about the process tree and the thread's name (the filter traps only those). */
export const prctl: Handler = (k, t, a) => {
  const [option, arg2] = a;
  const self = k.self;
  switch (option) {
    case PR_SET_KEEPCAPS:
      return setKeepCaps(k, t, a);
    case PR_SET_PDEATHSIG:
      if (arg2 > BigInt(NSIG)) return err(ERRNO.EINVAL);
      self.pdeathSignal = Number(arg2);
      return 0n;
    case PR_GET_PDEATHSIG:
      return k.mem.writeU32(arg2, self.pdeathSignal) ? 0n : err(ERRNO.EFAULT);
    case PR_SET_CHILD_SUBREAPER:
      self.subreaper = arg2 !== 0n;
      return 0n;
    case PR_GET_CHILD_SUBREAPER:
      return k.mem.writeU32(arg2, self.subreaper ? 1 : 0) ? 0n : err(ERRNO.EFAULT);
    case PR_SET_NAME: {
      if (t.comm === '') return 'pass';
      // Up to 15 bytes, to the first NUL; the kernel reads 16 and fails only if it cannot.
      const b = k.mem.read(arg2, TASK_COMM_LEN) ?? k.mem.readCString(arg2, TASK_COMM_LEN);
      if (b === null) return err(ERRNO.EFAULT);
      const bytes = typeof b === 'string' ? Buffer.from(b) : Buffer.from(b);
      const end = bytes.indexOf(0);
      t.comm = bytes.subarray(0, Math.min(end < 0 ? bytes.length : end, TASK_COMM_LEN - 1)).toString('latin1');
      return 0n;
    }
    case PR_GET_NAME: {
      if (t.comm === '') return 'pass';
      const out = new Uint8Array(TASK_COMM_LEN);
      out.set(Buffer.from(t.comm, 'latin1'));
      return k.mem.write(arg2, out) ? 0n : err(ERRNO.EFAULT);
    }
    // Linux's checks: the unused arguments must be 0, and the flag can only be set.
    case PR_SET_NO_NEW_PRIVS:
      if (arg2 !== 1n || a[2] !== 0n || a[3] !== 0n || a[4] !== 0n) return err(ERRNO.EINVAL);
      k.attrs.values.noNewPrivs = true;
      return 0n;
    case PR_GET_NO_NEW_PRIVS:
      if (arg2 !== 0n || a[2] !== 0n || a[3] !== 0n || a[4] !== 0n) return err(ERRNO.EINVAL);
      return k.attrs.values.noNewPrivs ? 1n : 0n;
    default:
      return 'pass';
  }
};
