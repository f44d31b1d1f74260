import { ERRNO, NSIG, SIG, SI_TKILL, SI_USER, SS_DISABLE, SS_ONSTACK } from '../../abi/linux.js';
import type { Task } from '../kernel/task.js';
import { UNBLOCKABLE, makeSiginfo, restoreFrame, type SigAction } from '../kernel/signals.js';
import { isNodeThread } from './sys_pidargs.js';
import { err, type Handler, type Outcome, type SyscallKernel } from './context.js';

/** What the signal calls use of the kernel. */
type SignalKernel = Pick<SyscallKernel, 'mem' | 'tgid' | 'signals' | 'task' | 'park' | 'killGroup' | 'tree' | 'self' | 'pgid' | 'afterCall'>;

/** Bytes of the kernel's sigset_t, the only size rt_sig* calls accept. */
const SIGSET_SIZE = 8n;
/** Bytes of the kernel's struct sigaction (handler, flags, restorer, mask) and stack_t. */
const SIGACTION_SIZE = 32;
const STACK_T_SIZE = 24;
/** The smallest alternate stack sigaltstack accepts. */
const MINSIGSTKSZ = 2048n;
/** rt_sigprocmask's `how`. */
const SIG_BLOCK = 0n;
const SIG_UNBLOCK = 1n;
const SIG_SETMASK = 2n;

const validSignal = (signo: number): boolean => signo >= 1 && signo <= NSIG;

/** The sender's siginfo for a signal the program sends (kill: SI_USER, tgkill: SI_TKILL). */
const senderInfo = (k: SignalKernel, signo: number, code: number): Uint8Array =>
  makeSiginfo(signo, code, { pid: k.tgid, uid: process.getuid?.() ?? 0 });

function readSigaction(b: Uint8Array): SigAction {
  const dv = new DataView(b.buffer, b.byteOffset, SIGACTION_SIZE);
  return { handler: dv.getBigUint64(0, true), flags: dv.getBigUint64(8, true), restorer: dv.getBigUint64(16, true), mask: dv.getBigUint64(24, true) & ~UNBLOCKABLE };
}

function writeSigaction(a: SigAction): Uint8Array {
  const b = new Uint8Array(SIGACTION_SIZE);
  const dv = new DataView(b.buffer);
  dv.setBigUint64(0, a.handler, true);
  dv.setBigUint64(8, a.flags, true);
  dv.setBigUint64(16, a.restorer, true);
  dv.setBigUint64(24, a.mask, true);
  return b;
}

/**
 * The signal calls (gVisor's sys_signal.go): the sigaction table, masks, the alternate stack,
 * sigsuspend/pause in the sentry, and signals the program sends to itself. Signals to other
 * processes go to the kernel (through the gadget), minus those the filter refuses.
 *
 * @example
 * ```ts
 * rtSigaction(kernel, task, [BigInt(SIG.SIGINT), act, 0n, 8n]); // 0n
 * ```
 */
export const rtSigaction: Handler = (k, _t, a) => {
  const [sig, act, oact, size] = a;
  const signo = Number(sig);
  if (size !== SIGSET_SIZE || !validSignal(signo)) return err(ERRNO.EINVAL);
  if (act !== 0n && (signo === SIG.SIGKILL || signo === SIG.SIGSTOP)) return err(ERRNO.EINVAL);
  let next: SigAction | undefined;
  if (act !== 0n) {
    const b = k.mem.read(act, SIGACTION_SIZE);
    if (!b) return err(ERRNO.EFAULT);
    next = readSigaction(b);
  }
  if (oact !== 0n && !k.mem.write(oact, writeSigaction(k.signals.actions.get(signo)))) return err(ERRNO.EFAULT);
  if (next) k.signals.actions.set(signo, next);
  return 0n;
};

export const rtSigprocmask: Handler = (k, t, a) => {
  const [how, set, oset, size] = a;
  if (size !== SIGSET_SIZE) return err(ERRNO.EINVAL);
  const old = t.sigmask;
  if (set !== 0n) {
    const s = k.mem.readU64(set);
    if (s === null) return err(ERRNO.EFAULT);
    if (how === SIG_BLOCK) t.sigmask |= s;
    else if (how === SIG_UNBLOCK) t.sigmask &= ~s;
    else if (how === SIG_SETMASK) t.sigmask = s;
    else return err(ERRNO.EINVAL);
    t.sigmask &= ~UNBLOCKABLE;
  }
  if (oset !== 0n && !k.mem.writeU64(oset, old)) return err(ERRNO.EFAULT);
  return 0n; // signals it unblocked are delivered on the way back (Kernel.finish)
};

export const rtSigreturn: Handler = (k, t) => {
  if (!restoreFrame(t, k.mem)) return k.killGroup(SIG.SIGSEGV);
  return 'noreturn';
};

/** True when the task runs on its alternate stack now. */
const onAltStack = (t: Task): boolean => {
  const rsp = t.reg('rsp');
  return t.altstack.flags !== SS_DISABLE && rsp > t.altstack.sp && rsp <= t.altstack.sp + t.altstack.size;
};

export const sigaltstack: Handler = (k, t, a) => {
  const [ss, oss] = a;
  const on = onAltStack(t);
  if (oss !== 0n) {
    const b = new Uint8Array(STACK_T_SIZE);
    const dv = new DataView(b.buffer);
    dv.setBigUint64(0, t.altstack.sp, true);
    dv.setInt32(8, on ? SS_ONSTACK : t.altstack.flags, true);
    dv.setBigUint64(16, t.altstack.size, true);
    if (!k.mem.write(oss, b)) return err(ERRNO.EFAULT);
  }
  if (ss === 0n) return 0n;
  const b = k.mem.read(ss, STACK_T_SIZE);
  if (!b) return err(ERRNO.EFAULT);
  if (on) return err(ERRNO.EPERM);
  const dv = new DataView(b.buffer, b.byteOffset, STACK_T_SIZE);
  if (dv.getInt32(8, true) & SS_DISABLE) {
    t.altstack = { sp: 0n, size: 0n, flags: SS_DISABLE };
    return 0n;
  }
  const size = dv.getBigUint64(16, true);
  if (size < MINSIGSTKSZ) return err(ERRNO.ENOMEM);
  t.altstack = { sp: dv.getBigUint64(0, true), size, flags: 0 };
  return 0n;
};

export const rtSigsuspend: Handler = (k, t, a) => {
  if (a[1] !== SIGSET_SIZE) return err(ERRNO.EINVAL);
  const m = k.mem.readU64(a[0]);
  if (m === null) return err(ERRNO.EFAULT);
  t.savedMask = t.sigmask;
  t.sigmask = m & ~UNBLOCKABLE;
  t.interruptedAs = ERRNO.ERESTARTNOHAND;
  // A signal pending already and no longer blocked ends it at once (its handler runs first,
  // with the caller's mask restored after it, as for any other signal ending the wait).
  if (k.signals.deliverable(t) !== undefined) return err(ERRNO.EINTR);
  k.park(t, 'SUSPEND');
  return 'blocked';
};

/**
 * rt_sigtimedwait (sigwaitinfo, sigtimedwait, sigwait): a pending signal of the set is taken at
 * once, blocked or not (its number returned, its siginfo written), else the task waits in the
 * sentry with the set unblocked, so that a signal sent to it picks this thread, until one of
 * them comes (ThreadGroup.interruptForSignal takes it), another signal interrupts (EINTR), or
 * the timeout passes (EAGAIN; a zero timeout only polls). SIGKILL and SIGSTOP are never waited.
 *
 * @example
 * ```ts
 * rtSigtimedwait(kernel, task, [setAddr, infoAddr, 0n, 8n]); // BigInt(SIGUSR1), or 'blocked'
 * ```
 */
export const rtSigtimedwait: Handler = (k, t, a) => {
  const [setAddr, infoAddr, timeoutAddr, size] = a;
  if (size !== SIGSET_SIZE) return err(ERRNO.EINVAL);
  const s = k.mem.readU64(setAddr);
  if (s === null) return err(ERRNO.EFAULT);
  const set = s & ~UNBLOCKABLE;
  let ms: number | undefined;
  if (timeoutAddr !== 0n) {
    const b = k.mem.read(timeoutAddr, 16);
    if (!b) return err(ERRNO.EFAULT);
    const dv = new DataView(b.buffer, b.byteOffset, 16);
    const sec = dv.getBigInt64(0, true);
    const nsec = dv.getBigInt64(8, true);
    if (sec < 0n || nsec < 0n || nsec >= 1_000_000_000n) return err(ERRNO.EINVAL);
    ms = Number(sec) * 1000 + Number(nsec) / 1e6;
  }
  const got = k.signals.dequeue(t, set);
  if (got) return infoAddr !== 0n && !k.mem.write(infoAddr, got.info) ? err(ERRNO.EFAULT) : BigInt(got.signo);
  if (ms === 0) return err(ERRNO.EAGAIN);
  t.sigwait = { set, info: infoAddr, mask: t.sigmask };
  t.sigmask &= ~set;
  if (ms !== undefined) t.sleep = { deadline: performance.now() + ms, rem: 0n };
  k.park(t, 'SUSPEND');
  return 'blocked';
};

export const pause: Handler = (k, t) => {
  t.interruptedAs = ERRNO.ERESTARTNOHAND;
  k.park(t, 'SUSPEND');
  return 'blocked';
};

export const rtSigpending: Handler = (k, t, a) => {
  // Linux takes any size up to its sigset's, and writes that many bytes of it (sigpending(2) passes 4 on some ABIs).
  if (BigInt.asUintN(64, a[1]) > 8n) return err(ERRNO.EINVAL);
  const set = new Uint8Array(8);
  new DataView(set.buffer).setBigUint64(0, k.signals.pendingSet(t) & t.sigmask, true);
  return k.mem.write(a[0], set.subarray(0, Number(a[1]))) ? 0n : err(ERRNO.EFAULT);
};

/**
 * kill: to a process of the tree, its group, every process of the tree (-1), in the target's
 * own turn (ThreadGroup.defer); to the caller's own process once the call has returned, as
 * Linux returns 0 to a sender that its signal kills (strace shows `kill(...) = 0`); a zombie
 * takes any signal and ignores it. A pid the tree does
 * not have: in a sandbox, nothing else may be signalled (the sandbox's init ignores signals, as
 * a namespace's init does; ESRCH for the rest); outside one, the kernel decides (the filter
 * keeps Node out of reach).
 */
export const kill: Handler = (k, _t, a) => {
  const pid = Number(BigInt.asIntN(32, a[0]));
  const signo = Number(a[1]);
  if (signo < 0 || signo > NSIG) return err(ERRNO.EINVAL);
  const info = senderInfo(k, signo, SI_USER);
  if (pid > 0) {
    const p = k.tree.table.process(pid);
    // Node is out of reach but for signal 0, which only asks whether it is there (see programFilter).
    if (!p) return k.tree.sandboxed ? (pid === 1 ? 0n : err(ERRNO.ESRCH)) : isNodeThread(k, pid) && signo !== 0 ? err(ERRNO.EPERM) : 'pass';
    sendTo(k, p, () => p.signals.sendGroup(signo, info));
    return 0n;
  }
  if (pid === -2147483648) return err(ERRNO.ESRCH);
  const all = pid === -1;
  const pgid = pid === 0 ? k.pgid : -pid;
  let hit = 0;
  for (const p of k.tree.table.all()) {
    if (all ? p === k.self : p.pgid !== pgid) continue;
    hit++;
    sendTo(k, p, () => p.signals.sendGroup(signo, info));
  }
  // kill(-1) with nobody else to signal succeeds in a namespace (its init counts), else ESRCH.
  return hit > 0 || (all && k.tree.sandboxed) ? 0n : err(ERRNO.ESRCH);
};

function tgkill(k: SignalKernel, tgid: number, tid: number, signo: number): Outcome {
  if (signo < 0 || signo > NSIG) return err(ERRNO.EINVAL);
  const th = k.tree.table.thread(tid);
  if (!th || (tgid !== -1 && th.process.tgid !== tgid)) {
    if (k.tree.sandboxed || (tgid !== -1 && k.tree.table.process(tgid))) return err(ERRNO.ESRCH);
    return (isNodeThread(k, tid) || isNodeThread(k, tgid)) && signo !== 0 ? err(ERRNO.EPERM) : 'pass';
  }
  const info = senderInfo(k, signo, SI_TKILL);
  sendTo(k, th.process, () => th.process.signals.sendThread(th.task, signo, info));
  return 0n;
}

/** A signal sent to `p`: in its own turn, or, to the caller's own process, after the call. */
function sendTo(k: SignalKernel, p: { defer(fn: () => void): void }, send: () => void): void {
  if (p === k.self) k.afterCall(send);
  else p.defer(send);
}

/** Bytes of the siginfo rt_sigqueueinfo and rt_tgsigqueueinfo take, and where its si_code is. */
const SIGINFO_SIZE = 128;
const SI_CODE = 8;

/** The siginfo a program queues with a signal (sigqueue, pthread_sigqueue), as Linux copies it: si_signo is the signal's. */
function queuedInfo(k: SignalKernel, addr: bigint, signo: number): Uint8Array | null {
  const info = k.mem.read(addr, SIGINFO_SIZE);
  if (info) new DataView(info.buffer, info.byteOffset, SIGINFO_SIZE).setInt32(0, signo, true);
  return info;
}

/** A siginfo that claims to come from the kernel or from kill/tgkill (si_code >= 0, SI_TKILL): only to oneself. */
function impersonates(info: Uint8Array): boolean {
  const code = new DataView(info.buffer, info.byteOffset, SIGINFO_SIZE).getInt32(SI_CODE, true);
  return code >= 0 || code === SI_TKILL;
}

/**
 * rt_sigqueueinfo (sigqueue): a signal with the program's siginfo to a process of the tree, as
 * kill sends one. Nothing is queued beyond the program's own processes: any other pid is ESRCH
 * (outside a sandbox, a host process the program could signal natively too; see README).
 *
 * @example
 * ```ts
 * rtSigqueueinfo(kernel, task, [BigInt(pid), BigInt(SIG.SIGUSR1), infoAddr]); // 0n
 * ```
 */
export const rtSigqueueinfo: Handler = (k, _t, a) => {
  const pid = Number(BigInt.asIntN(32, a[0]));
  const signo = Number(a[1]);
  const info = queuedInfo(k, a[2], signo);
  if (!info) return err(ERRNO.EFAULT);
  if (impersonates(info) && pid !== k.tgid) return err(ERRNO.EPERM);
  const p = pid > 0 ? k.tree.table.process(pid) : undefined;
  if (!p) return err(ERRNO.ESRCH);
  if (signo < 0 || signo > NSIG) return err(ERRNO.EINVAL);
  if (signo !== 0 && p.signals.full()) return err(ERRNO.EAGAIN);
  sendTo(k, p, () => p.signals.sendGroup(signo, info));
  return 0n;
};

/** rt_tgsigqueueinfo (pthread_sigqueue): the same to one thread of the tree (see rtSigqueueinfo). */
export const rtTgsigqueueinfo: Handler = (k, t, a) => {
  const tgid = Number(BigInt.asIntN(32, a[0]));
  const tid = Number(BigInt.asIntN(32, a[1]));
  const signo = Number(a[2]);
  const info = queuedInfo(k, a[3], signo);
  if (!info) return err(ERRNO.EFAULT);
  if (tgid <= 0 || tid <= 0) return err(ERRNO.EINVAL);
  if (impersonates(info) && tid !== t.tid) return err(ERRNO.EPERM);
  const th = k.tree.table.thread(tid);
  if (!th || th.process.tgid !== tgid) return err(ERRNO.ESRCH);
  if (signo < 0 || signo > NSIG) return err(ERRNO.EINVAL);
  if (signo !== 0 && th.process.signals.full()) return err(ERRNO.EAGAIN);
  sendTo(k, th.process, () => th.process.signals.sendThread(th.task, signo, info));
  return 0n;
};

export const tkillCall: Handler = (k, _t, a) => tgkill(k, -1, Number(BigInt.asIntN(32, a[0])), Number(a[1]));
export const tgkillCall: Handler = (k, _t, a) => tgkill(k, Number(BigInt.asIntN(32, a[0])), Number(BigInt.asIntN(32, a[1])), Number(a[2]));
