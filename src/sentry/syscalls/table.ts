import { SYS } from '../../abi/syscalls.js';
import type { Kernel } from '../kernel/kernel.js';
import type { Substitute, Task } from '../kernel/task.js';
import { SS_DISABLE, SS_ONSTACK, UNBLOCKABLE, makeSiginfo, restoreFrame, sigbit } from '../kernel/signals.js';
import type { SentryMail } from '../protocol.js';

/**
 * What handling a syscall comes to: a result for the program; `pass` (the stub runs the call
 * as it is, at the gadget); a substitute call; `blocked` (the task sleeps in the sentry);
 * `noreturn` (the registers were replaced: rt_sigreturn); `execed` (a new image, already
 * traced); `exited` (the task is gone).
 */
export type Outcome = bigint | 'pass' | Substitute | 'blocked' | 'noreturn' | 'execed' | 'exited';

type Handler = (k: Kernel, t: Task, a: bigint[]) => Outcome;

const E = {
  EPERM: 1n, ESRCH: 3n, ECHILD: 10n, EAGAIN: 11n, ENOMEM: 12n, EFAULT: 14n, EINVAL: 22n, ENOSYS: 38n,
} as const;
const err = (e: bigint): bigint => -e;

const PAGE = 4096n;
const pageUp = (v: bigint): bigint => (v + PAGE - 1n) & ~(PAGE - 1n);
/** Most the program break may grow (a runaway brk must not reach other mappings). */
const BRK_LIMIT = 1n << 32n;

const CLONE_VM = 0x100n;
const CLONE_SIGHAND = 0x800n;
const CLONE_SETTLS = 0x80000n;
const CLONE_PARENT_SETTID = 0x100000n;
const CLONE_CHILD_CLEARTID = 0x200000n;
const CLONE_CHILD_SETTID = 0x1000000n;
const CLONE_THREAD = 0x10000n;

const ARCH_SET_FS = 0x1002n;
const ARCH_GET_FS = 0x1003n;

/** True if [addr, addr+len) meets the stub region. */
function touchesStub(k: Kernel, addr: bigint, len: bigint): boolean {
  const { start, end } = k.task.region;
  const a = BigInt.asUintN(64, addr);
  const e = a + BigInt.asUintN(64, len);
  return a < end && e > start;
}

/** Reads a struct timespec as milliseconds, or null on a fault. */
function timespecMs(k: Kernel, addr: bigint): number | null {
  const b = k.mem.read(addr, 16);
  if (!b) return null;
  const dv = new DataView(b.buffer, b.byteOffset, 16);
  return Number(dv.getBigInt64(0, true)) * 1000 + Number(dv.getBigInt64(8, true)) / 1e6;
}

function futex(k: Kernel, t: Task, a: bigint[]): Outcome {
  const [addr, opw, val, timeout, addr2, val3] = a;
  const op = Number(opw & 0x7fn);
  const realtime = (opw & 256n) !== 0n;
  const u32 = (v: bigint) => Number(BigInt.asUintN(32, v));
  switch (op) {
    case 0: // FUTEX_WAIT
    case 9: {
      // FUTEX_WAIT_BITSET
      const bitset = op === 9 ? u32(val3) : 0xffffffff;
      if (bitset === 0) return err(E.EINVAL);
      const cur = k.mem.readU32(addr);
      if (cur === null) return err(E.EFAULT);
      if (cur !== u32(val)) return err(E.EAGAIN);
      let deadline: number | undefined;
      if (timeout !== 0n) {
        const ms = timespecMs(k, timeout);
        if (ms === null) return err(E.EFAULT);
        // WAIT: relative; WAIT_BITSET: absolute on CLOCK_MONOTONIC (or REALTIME).
        const now = op === 0 ? 0 : realtime ? Date.now() : Number(process.hrtime.bigint() / 1000000n);
        deadline = performance.now() + (ms - now);
      }
      k.futexes.wait(t, addr, bitset, deadline);
      k.park(t, 'futex');
      return 'blocked';
    }
    case 1: // FUTEX_WAKE
    case 10: // FUTEX_WAKE_BITSET
      return BigInt(k.futexes.wake(k, addr, u32(val), op === 10 ? u32(val3) : 0xffffffff));
    case 3: // FUTEX_REQUEUE
    case 4: {
      // FUTEX_CMP_REQUEUE
      if (op === 4) {
        const cur = k.mem.readU32(addr);
        if (cur === null) return err(E.EFAULT);
        if (cur !== u32(val3)) return err(E.EAGAIN);
      }
      const r = k.futexes.requeue(k, addr, addr2, u32(val), u32(timeout));
      return BigInt(op === 4 ? r.woken + r.moved : r.woken);
    }
    case 5: {
      // FUTEX_WAKE_OP: *addr2 = oldval OP oparg; wake on addr; wake on addr2 if oldval CMP cmparg.
      const enc = u32(val3);
      const old = k.mem.readU32(addr2);
      if (old === null) return err(E.EFAULT);
      let oparg = (enc >> 12) & 0xfff;
      const cmparg = enc & 0xfff;
      const fop = (enc >>> 28) & 7;
      if ((enc >>> 28) & 8) oparg = 1 << oparg;
      const nv = [oparg, old + oparg, old | oparg, old & ~oparg, old ^ oparg][fop];
      if (nv === undefined || !k.mem.writeU32(addr2, nv >>> 0)) return err(E.EFAULT);
      let n = k.futexes.wake(k, addr, u32(val), 0xffffffff);
      const cmp = [old === cmparg, old !== cmparg, old < cmparg, old <= cmparg, old > cmparg, old >= cmparg][(enc >>> 24) & 15];
      if (cmp) n += k.futexes.wake(k, addr2, u32(timeout), 0xffffffff);
      return BigInt(n);
    }
    default:
      return 'pass'; // PI futexes and others: the kernel's (they do not block on our side)
  }
}

function clone(k: Kernel, t: Task, a: bigint[]): Outcome {
  const [flags, newsp, ptid, ctid, tls] = a;
  if ((flags & CLONE_THREAD) === 0n || (flags & CLONE_VM) === 0n || (flags & CLONE_SIGHAND) === 0n) return err(E.ENOSYS); // fork: not yet
  const reply = k.request<Extract<SentryMail, { type: 'context' }>>((req) => ({ type: 'newContext', req }));
  const tid = k.allocTid();
  const child = k.newTask(reply.id, reply.slot, tid);
  child.regs.set(t.regs);
  child.setFpImage(t.fpImage());
  child.setReg('rax', 0n);
  if (newsp !== 0n) child.setReg('rsp', newsp);
  if (flags & CLONE_SETTLS) child.setReg('fs_base', tls);
  child.sigmask = t.sigmask;
  if (flags & CLONE_CHILD_CLEARTID) child.clearChildTid = ctid;
  if (flags & CLONE_PARENT_SETTID) k.mem.writeU32(ptid, tid);
  if (flags & CLONE_CHILD_SETTID) k.mem.writeU32(ctid, tid);
  k.strace.newThread();
  return BigInt(tid);
}

function execve(k: Kernel, t: Task, a: bigint[]): Outcome {
  const start = process.hrtime.bigint();
  const call = k.strace.execCall(SYS.execve, a);
  const path = k.mem.readCString(a[0], 4096);
  const argv = k.mem.readStringArray(a[1]);
  const envp = k.mem.readStringArray(a[2]);
  if (path === null || argv === null || envp === null) return err(E.EFAULT);
  const check = k.request<Extract<SentryMail, { type: 'execChecked' }>>((req) => ({ type: 'execCheck', req, path }));
  if (check.errno !== 0) return err(BigInt(check.errno));
  k.stopOthers(t);
  const r = k.request<Extract<SentryMail, { type: 'execLoaded' }>>((req) => ({ type: 'execLoad', req, path, argv, envp }));
  if (r.errno !== 0) k.killGroup(9); // the old image is gone: like the kernel past the point of no return
  k.signals.resetForExec();
  t.altstack = { sp: 0n, size: 0n, flags: SS_DISABLE };
  t.fpStack.length = 0;
  t.pending.length = 0;
  t.clearChildTid = 0n;
  k.brkStart = k.brk = r.brkStart!;
  if (r.exe) k.exe = r.exe;
  const keep = { cs: t.reg('cs'), ss: t.reg('ss'), eflags: 0x202n };
  t.regs.fill(0n);
  t.setReg('cs', keep.cs);
  t.setReg('ss', keep.ss);
  t.setReg('eflags', keep.eflags);
  t.setReg('rip', r.entry!);
  t.setReg('rsp', r.sp!);
  t.setReg('orig_rax', -1n);
  k.strace.exec(t.tid, call, start);
  return 'execed';
}

function brk(k: Kernel, _t: Task, a: bigint[]): Outcome {
  const want = a[0];
  if (want < k.brkStart || want > k.brkStart + BRK_LIMIT || touchesStub(k, k.brkStart, want - k.brkStart)) return k.brk;
  const cur = pageUp(k.brk);
  const next = pageUp(want);
  if (next === cur) {
    k.brk = want;
    return want;
  }
  if (next > cur) {
    // MAP_FIXED_NOREPLACE: grow only into free space, as the kernel's brk does.
    return {
      sysno: SYS.mmap,
      args: [cur, next - cur, 3n, 0x22n | 0x100000n, -1n, 0n],
      onDone: (ret) => {
        if (ret !== cur) return k.brk;
        k.brk = want;
        return want;
      },
    };
  }
  return {
    sysno: SYS.munmap,
    args: [next, cur - next],
    onDone: (ret) => {
      if (ret === 0n) k.brk = want;
      return k.brk;
    },
  };
}

function rtSigaction(k: Kernel, _t: Task, a: bigint[]): Outcome {
  const [sig, act, oact, size] = a;
  const signo = Number(sig);
  if (size !== 8n || signo < 1 || signo > 64) return err(E.EINVAL);
  if (act !== 0n && (signo === 9 || signo === 19)) return err(E.EINVAL);
  const old = k.signals.get(signo);
  let next;
  if (act !== 0n) {
    const b = k.mem.read(act, 32);
    if (!b) return err(E.EFAULT);
    const dv = new DataView(b.buffer, b.byteOffset, 32);
    next = { handler: dv.getBigUint64(0, true), flags: dv.getBigUint64(8, true), restorer: dv.getBigUint64(16, true), mask: dv.getBigUint64(24, true) & ~UNBLOCKABLE };
  }
  if (oact !== 0n) {
    const b = new Uint8Array(32);
    const dv = new DataView(b.buffer);
    dv.setBigUint64(0, old.handler, true);
    dv.setBigUint64(8, old.flags, true);
    dv.setBigUint64(16, old.restorer, true);
    dv.setBigUint64(24, old.mask, true);
    if (!k.mem.write(oact, b)) return err(E.EFAULT);
  }
  if (next) k.signals.set(signo, next);
  return 0n;
}

function rtSigprocmask(k: Kernel, t: Task, a: bigint[]): Outcome {
  const [how, set, oset, size] = a;
  if (size !== 8n) return err(E.EINVAL);
  const old = t.sigmask;
  if (set !== 0n) {
    const s = k.mem.readU64(set);
    if (s === null) return err(E.EFAULT);
    if (how === 0n) t.sigmask |= s;
    else if (how === 1n) t.sigmask &= ~s;
    else if (how === 2n) t.sigmask = s;
    else return err(E.EINVAL);
    t.sigmask &= ~UNBLOCKABLE;
  }
  if (oset !== 0n && !k.mem.writeU64(oset, old)) return err(E.EFAULT);
  return 0n; // signals it unblocked are delivered on the way back (Kernel.finish)
}

function sigaltstack(k: Kernel, t: Task, a: bigint[]): Outcome {
  const [ss, oss] = a;
  const rsp = t.reg('rsp');
  const on = t.altstack.flags !== SS_DISABLE && rsp > t.altstack.sp && rsp <= t.altstack.sp + t.altstack.size;
  if (oss !== 0n) {
    const b = new Uint8Array(24);
    const dv = new DataView(b.buffer);
    dv.setBigUint64(0, t.altstack.sp, true);
    dv.setInt32(8, on ? SS_ONSTACK : t.altstack.flags, true);
    dv.setBigUint64(16, t.altstack.size, true);
    if (!k.mem.write(oss, b)) return err(E.EFAULT);
  }
  if (ss !== 0n) {
    const b = k.mem.read(ss, 24);
    if (!b) return err(E.EFAULT);
    if (on) return err(E.EPERM);
    const dv = new DataView(b.buffer, b.byteOffset, 24);
    const flags = dv.getInt32(8, true);
    if (flags & SS_DISABLE) t.altstack = { sp: 0n, size: 0n, flags: SS_DISABLE };
    else {
      const size = dv.getBigUint64(16, true);
      if (size < 2048n) return err(12n); // ENOMEM: below MINSIGSTKSZ
      t.altstack = { sp: dv.getBigUint64(0, true), size, flags: 0 };
    }
  }
  return 0n;
}

function kill(k: Kernel, _t: Task, a: bigint[]): Outcome {
  const pid = Number(BigInt.asIntN(32, a[0]));
  const signo = Number(a[1]);
  if (signo < 0 || signo > 64) return err(E.EINVAL);
  if (pid === k.tgid || pid === 0 || pid === -k.tgid) {
    k.sendGroupSignal(signo, makeSiginfo(signo, 0, { pid: k.tgid, uid: process.getuid?.() ?? 0 }));
    return 0n;
  }
  if (pid === -1 || pid < 0) return err(E.EPERM); // not the host's process groups
  return 'pass';
}

function tgkill(k: Kernel, tgid: number, tid: number, signo: number): Outcome {
  if (signo < 0 || signo > 64) return err(E.EINVAL);
  if (tgid !== -1 && tgid !== k.tgid) return 'pass';
  const target = k.tasks.get(tid);
  if (!target) return err(E.ESRCH);
  k.sendThreadSignal(target, signo, makeSiginfo(signo, -6 /* SI_TKILL */, { pid: k.tgid, uid: process.getuid?.() ?? 0 }));
  return 0n;
}

function arch(k: Kernel, t: Task, a: bigint[]): Outcome {
  if (a[0] === ARCH_SET_FS) {
    if (a[1] >= k.task.region.start && a[1] < k.task.region.end) return err(E.EPERM);
    t.setReg('fs_base', a[1]);
    return 0n;
  }
  if (a[0] === ARCH_GET_FS) return k.mem.writeU64(a[1], t.reg('fs_base')) ? 0n : err(E.EFAULT);
  return err(E.EINVAL);
}

function mmapCheck(k: Kernel, _t: Task, a: bigint[]): Outcome {
  if ((a[3] & 0x10n) !== 0n && touchesStub(k, a[0], a[1])) return err(E.ENOMEM);
  return 'pass';
}

function rangeCheck(k: Kernel, _t: Task, a: bigint[]): Outcome {
  return touchesStub(k, a[0], a[1]) ? err(E.EINVAL) : 'pass';
}

function mremap(k: Kernel, _t: Task, a: bigint[]): Outcome {
  if (touchesStub(k, a[0], a[1])) return err(E.EINVAL);
  if ((a[3] & 2n) !== 0n && touchesStub(k, a[4], a[2])) return err(E.EINVAL); // MREMAP_FIXED
  return 'pass';
}

/** close_range without the stub's fds (1000, 1001): in up to two calls. */
function closeRange(_k: Kernel, _t: Task, a: bigint[]): Outcome {
  const [first, last, flags] = a;
  const lo = 1000n;
  const hi = 1001n;
  if (last < lo || first > hi) return 'pass';
  const upper: Substitute | undefined = last > hi ? { sysno: SYS.close_range, args: [first > hi ? first : hi + 1n, last, flags] } : undefined;
  if (first < lo) {
    return { sysno: SYS.close_range, args: [first, lo - 1n, flags], onDone: (ret) => (ret === 0n && upper ? upper : ret) };
  }
  return upper ?? 0n;
}

/**
 * readlink of /proc/self/exe (or /proc/<pid>/exe, /proc/thread-self/exe): the stub's own
 * executable is Node's, the program's is the one the sentry loaded. Anything else passes.
 */
function readlink(k: Kernel, path: bigint, buf: bigint, size: bigint): Outcome {
  const p = k.mem.readCString(path, 4096);
  if (p === null || !/^\/proc\/(self|thread-self|\d+)\/exe$/.test(p)) return 'pass';
  const who = p.split('/')[2];
  if (who !== 'self' && who !== 'thread-self' && Number(who) !== k.tgid && !k.tasks.has(Number(who))) return 'pass';
  if (BigInt.asIntN(64, size) <= 0n) return err(E.EINVAL);
  const bytes = Buffer.from(k.exe);
  const n = Math.min(bytes.length, Number(size > 4096n ? 4096n : size));
  return k.mem.write(buf, bytes.subarray(0, n)) ? BigInt(n) : err(E.EFAULT);
}

/**
 * nanosleep / clock_nanosleep in the sentry: the task holds no stub thread while it sleeps (a
 * program with more sleeping threads than stub threads goes on). `abs`: an absolute time on
 * `clock` (CLOCK_REALTIME 0, else monotonic).
 */
function sleep(k: Kernel, t: Task, req: bigint, rem: bigint, abs: boolean, clock: number): Outcome {
  const b = k.mem.read(req, 16);
  if (!b) return err(E.EFAULT);
  const dv = new DataView(b.buffer, b.byteOffset, 16);
  const sec = dv.getBigInt64(0, true);
  const nsec = dv.getBigInt64(8, true);
  if (sec < 0n || nsec < 0n || nsec >= 1_000_000_000n) return err(E.EINVAL);
  const ms = Number(sec) * 1000 + Number(nsec) / 1e6;
  const now = clock === 0 ? Date.now() : Number(process.hrtime.bigint()) / 1e6;
  const wait = abs ? ms - now : ms;
  if (wait <= 0) return 0n;
  t.sleep = { deadline: performance.now() + wait, rem: abs ? 0n : rem };
  k.park(t, 'sleeping');
  return 'blocked';
}

function exitThread(k: Kernel, t: Task, a: bigint[]): Outcome {
  k.strace.exitCall(t.tid, SYS.exit, a);
  k.exitTask(t, Number(a[0] & 0xffn));
  return 'exited';
}

function rtSigsuspend(k: Kernel, t: Task, a: bigint[]): Outcome {
  if (a[1] !== 8n) return err(E.EINVAL);
  const m = k.mem.readU64(a[0]);
  if (m === null) return err(E.EFAULT);
  t.savedMask = t.sigmask;
  t.sigmask = m & ~UNBLOCKABLE;
  k.park(t, 'suspended');
  return 'blocked';
}

function rtSigpending(k: Kernel, t: Task, a: bigint[]): Outcome {
  let set = 0n;
  for (const p of [...t.pending, ...k.groupPending]) set |= sigbit(p.signo);
  return k.mem.writeU64(a[0], set & t.sigmask) ? 0n : err(E.EFAULT);
}

const HANDLERS: Partial<Record<number, Handler>> = {
  [SYS.exit]: exitThread,
  [SYS.exit_group]: (k, t, a) => {
    k.strace.exitCall(t.tid, SYS.exit_group, a);
    return k.exitGroup(Number(a[0] & 0xffn));
  },
  [SYS.getpid]: (k) => BigInt(k.tgid),
  [SYS.gettid]: (_k, t) => BigInt(t.tid),
  [SYS.getppid]: (k) => BigInt(k.task.nodePid),
  [SYS.set_tid_address]: (_k, t, a) => {
    t.clearChildTid = a[0];
    return BigInt(t.tid);
  },
  [SYS.set_robust_list]: (_k, t, a) => {
    if (a[1] !== 24n) return err(E.EINVAL);
    t.robustList = a[0];
    return 0n;
  },
  [SYS.get_robust_list]: () => err(E.ENOSYS),
  [SYS.rseq]: () => err(E.ENOSYS),
  [SYS.arch_prctl]: arch,
  [SYS.brk]: brk,
  [SYS.mmap]: mmapCheck,
  [SYS.munmap]: rangeCheck,
  [SYS.mprotect]: rangeCheck,
  [SYS.madvise]: rangeCheck,
  [SYS.pkey_mprotect]: rangeCheck,
  [SYS.mremap]: mremap,
  [SYS.close_range]: closeRange,
  [SYS.futex]: futex,
  [SYS.clone]: clone,
  [SYS.clone3]: () => err(E.ENOSYS), // glibc falls back to clone
  [SYS.fork]: () => err(E.ENOSYS),
  [SYS.vfork]: () => err(E.ENOSYS),
  [SYS.execve]: execve,
  [SYS.execveat]: () => err(E.ENOSYS),
  [SYS.rt_sigaction]: rtSigaction,
  [SYS.rt_sigprocmask]: rtSigprocmask,
  [SYS.rt_sigreturn]: (k, t) => {
    if (!restoreFrame(t, k.mem)) return k.killGroup(11);
    return 'noreturn';
  },
  [SYS.sigaltstack]: sigaltstack,
  [SYS.rt_sigsuspend]: rtSigsuspend,
  [SYS.pause]: (k, t) => {
    k.park(t, 'suspended');
    return 'blocked';
  },
  [SYS.rt_sigpending]: rtSigpending,
  [SYS.rt_sigtimedwait]: () => err(E.ENOSYS),
  [SYS.rt_sigqueueinfo]: () => err(E.EPERM),
  [SYS.rt_tgsigqueueinfo]: () => err(E.EPERM),
  [SYS.kill]: kill,
  [SYS.tkill]: (k, _t, a) => tgkill(k, -1, Number(BigInt.asIntN(32, a[0])), Number(a[1])),
  [SYS.tgkill]: (k, _t, a) => tgkill(k, Number(BigInt.asIntN(32, a[0])), Number(BigInt.asIntN(32, a[1])), Number(a[2])),
  [SYS.readlink]: (k, _t, a) => readlink(k, a[0], a[1], a[2]),
  // readlinkat: an absolute path ignores dirfd; a relative one is never /proc/self/exe.
  [SYS.readlinkat]: (k, _t, a) => readlink(k, a[1], a[2], a[3]),
  [SYS.nanosleep]: (k, t, a) => sleep(k, t, a[0], a[1], false, 1),
  [SYS.clock_nanosleep]: (k, t, a) => {
    const clock = Number(a[0]);
    if (![0, 1, 7].includes(clock)) return 'pass'; // REALTIME, MONOTONIC, BOOTTIME; others: the kernel's
    return sleep(k, t, a[2], a[3], (a[1] & 1n) !== 0n, clock);
  },
  [SYS.wait4]: () => err(E.ECHILD),
  [SYS.waitid]: () => err(E.ECHILD),
  [SYS.seccomp]: () => err(E.EINVAL),
  [SYS.ptrace]: () => err(E.EPERM),
};

/**
 * Handles a syscall the filter trapped: the sentry's own calls are emulated, checked ones are
 * checked, and everything else (traced, injected-but-not-matching) passes through.
 *
 * @example
 * ```ts
 * const out = emulate(kernel, task, SYS.getpid, []); // BigInt(kernel.tgid)
 * ```
 */
export function emulate(k: Kernel, t: Task, sysno: number, args: bigint[]): Outcome {
  const h = HANDLERS[sysno];
  return h ? h(k, t, args) : 'pass';
}
