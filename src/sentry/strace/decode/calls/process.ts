/**
 * Decoders for process, signal, memory, time and miscellaneous syscalls.
 *
 * @module
 */

import type { ArgFormatter, DecoderTable, SyscallDecoder } from './common.js';
import { FD, I, MODE, P, SIG, U, UL, X, enumOf, flags, out, outBuf, retHex, retOctal, sig, sigRet } from './common.js';
import type { DecodeContext } from '../context.js';
import { arg, retval } from '../context.js';
import { hex, hex32, int, ptr, uint, ulong } from '../scalars.js';
import { formatSigmask, formatSigsetAt, signalName } from '../signals.js';
import { formatCString } from '../strings.js';
import { formatBitList, formatIntPtr, formatU64Ptr } from '../structs/arrays.js';
import { formatPollResult, formatPollfds } from '../structs/poll.js';
import { formatCloneArgs, formatRlimit, formatSysinfo, formatUtsname, formatWaitStatus } from '../structs/process.js';
import { formatSigaction, formatSiginfo, formatStack } from '../structs/signal.js';
import { formatItimerval, formatRusage, formatTimespec, formatTimeval } from '../structs/time.js';
import { readU32, readU64 } from '../umove.js';
import { formatEnum, formatFlags, lookup } from '../xlat.js';
import { FUTEX_CLOCK_REALTIME, FUTEX_CMD, FUTEX_CMPS, FUTEX_OPS, FUTEX_PRIVATE_FLAG } from '../xlat/futex.js';
import {
  MADV, MCL_FLAGS, MEMBARRIER_CMD, MLOCK_FLAGS, MREMAP_FIXED, MREMAP_FLAGS, MS_FLAGS, PROT, SHM_FLAGS,
  formatMmapFlags,
} from '../xlat/memory.js';
import { CAPS, PR, SECCOMP_MODE, SUID_DUMP } from '../xlat/prctl.js';
import {
  ARCH_PRCTL, CLONE_CHILD_CLEARTID, CLONE_CHILD_SETTID, CLONE_FLAGS, CLONE_PARENT_SETTID, CLONE_PIDFD,
  CLONE_SETTLS, GRND, IDTYPE, PRIO_WHICH, RLIMIT, RUSAGE_WHO, SECCOMP_FILTER_FLAGS, SECCOMP_OPS,
  SYSLOG_ACTIONS, UNSHARE_FLAGS, WAIT_OPTIONS,
} from '../xlat/process.js';
import { SIG_HOW } from '../xlat/signal.js';
import { CLOCKS, ITIMERS, TIMER_FLAGS } from '../xlat/time.js';

const prot = flags(PROT, 'PROT_NONE');
const clockid = enumOf(CLOCKS, 'CLOCK_', true);
const timespec: ArgFormatter = (v, c) => formatTimespec(c.mem, v);
const sigsetSized = (sizeArg: number): ArgFormatter => (v, c) => formatSigsetAt(c.mem, v, Number(arg(c, sizeArg)));

/** True when the call was interrupted (EINTR / ERESTART_RESTARTBLOCK): sleeps then report the time left. */
function interrupted(c: DecodeContext): boolean {
  const r = retval(c);
  return r === -4n || r === -516n;
}

/** A sleep's remaining-time argument: written only when the sleep was interrupted. */
const remaining: ArgFormatter = (v, c) => (interrupted(c) && v !== 0n ? formatTimespec(c.mem, v) : ptr(v));

function futexWakeOp(v: bigint): string {
  const u = BigInt.asUintN(32, v);
  const op = (u >> 28n) & 7n;
  const shift = u & (8n << 28n) ? 'FUTEX_OP_OPARG_SHIFT<<28|' : '';
  return `{${shift}${formatEnum(op, FUTEX_OPS)}, ${(u >> 12n) & 0xfffn}, ${formatEnum((u >> 24n) & 0xfn, FUTEX_CMPS)}, ${u & 0xfffn}}`;
}

const bitset = (v: bigint): string => (BigInt.asUintN(32, v) === 0xffffffffn ? 'FUTEX_BITSET_MATCH_ANY' : hex32(v));

const futex: SyscallDecoder = {
  args(c) {
    const op = BigInt.asUintN(32, arg(c, 1));
    const cmd = op & ~(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    const cmdName = lookup(cmd, FUTEX_CMD);
    const uaddr = ptr(arg(c, 0));
    const val = uint(arg(c, 2));
    const ts = (): string => formatTimespec(c.mem, arg(c, 3));
    const uaddr2 = ptr(arg(c, 4));
    if (!cmdName) return [uaddr, `${hex32(op)} /* FUTEX_??? */`, val, ptr(arg(c, 3)), uaddr2, uint(arg(c, 5))];
    const opName = cmdName + (op & FUTEX_PRIVATE_FLAG ? '_PRIVATE' : '') + (op & FUTEX_CLOCK_REALTIME ? '|FUTEX_CLOCK_REALTIME' : '');
    const head = [uaddr, opName];
    switch (Number(cmd)) {
      case 0: return [...head, val, ts()];
      case 1: case 2: return [...head, val];
      case 3: return [...head, val, uint(arg(c, 3)), uaddr2];
      case 4: case 12: return [...head, val, uint(arg(c, 3)), uaddr2, uint(arg(c, 5))];
      case 5: return [...head, val, uint(arg(c, 3)), uaddr2, futexWakeOp(arg(c, 5))];
      case 6: case 13: return [...head, ts()];
      case 7: case 8: return head;
      case 9: return [...head, val, ts(), bitset(arg(c, 5))];
      case 10: return [...head, val, bitset(arg(c, 5))];
      case 11: return [...head, val, ts(), uaddr2];
      default: return [...head, val, ts(), uaddr2, uint(arg(c, 5))];
    }
  },
};

/** clone(2) on x86-64: clone(flags, stack, parent_tid, child_tid, tls). */
const clone: SyscallDecoder = {
  args(c) {
    const f = BigInt.asUintN(64, arg(c, 0));
    const exitSig = f & 0xffn;
    const named = f & ~0xffn ? formatFlags(f & ~0xffn, CLONE_FLAGS) : '';
    const flagText = [named, exitSig ? signalName(exitSig) : ''].filter(Boolean).join('|') || '0';
    const parts = [`child_stack=${ptr(arg(c, 1))}`, `flags=${flagText}`];
    const tidAt = (addr: bigint): string => {
      const n = c.ok ? readU32(c.mem, addr, true) : null;
      return n === null ? ptr(addr) : `[${n}]`;
    };
    if (f & CLONE_PARENT_SETTID) parts.push(`parent_tid=${tidAt(arg(c, 2))}`);
    else if (f & CLONE_PIDFD) parts.push(`pidfd=${tidAt(arg(c, 2))}`);
    if (f & CLONE_SETTLS) parts.push(`tls=${ptr(arg(c, 4))}`);
    if (f & (CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID)) parts.push(`child_tidptr=${ptr(arg(c, 3))}`);
    return parts;
  },
};

const archPrctl: SyscallDecoder = {
  args(c) {
    const code = BigInt.asUintN(32, arg(c, 0));
    const a = arg(c, 1);
    const name = formatEnum(code, ARCH_PRCTL, 'ARCH_');
    if (code === 0x1003n || code === 0x1004n) return [name, c.ok ? formatU64Ptr(c.mem, a) : ptr(a)];
    return [name, hex(a)];
  },
};

/** The rt_sigreturn frame's saved mask, at sp + 296 (offset of uc_sigmask in the ucontext at sp). */
const rtSigreturn: SyscallDecoder = {
  args(c) {
    if (c.sp === undefined) return [];
    const mask = readU64(c.mem, c.sp + 296n);
    return [mask === null ? '{mask=?}' : `{mask=${formatSigmask(mask)}}`];
  },
};

const prctl: SyscallDecoder = {
  args(c) {
    const opt = BigInt.asUintN(32, arg(c, 0));
    const name = formatEnum(opt, PR, 'PR_');
    const a = (i: number): bigint => arg(c, i);
    switch (Number(opt)) {
      case 3: case 7: case 21: case 30: return [name];
      case 1: return [name, signalName(a(1))];
      case 2: return [name, c.ok ? formatIntPtr(c.mem, a(1), signalName) : ptr(a(1))];
      case 4: return [name, formatEnum(BigInt.asUintN(64, a(1)), SUID_DUMP)];
      case 8: case 29: case 36: return [name, ulong(a(1))];
      case 15: return [name, formatCString(c.mem, a(1), c.strlen)];
      case 16: return [name, c.ok ? formatCString(c.mem, a(1), c.strlen) : ptr(a(1))];
      case 22: {
        const mode = formatEnum(BigInt.asUintN(64, a(1)), SECCOMP_MODE);
        return a(1) === 2n ? [name, mode, ptr(a(2))] : [name, mode];
      }
      case 23: case 24: return [name, formatEnum(BigInt.asUintN(64, a(1)), CAPS)];
      case 37: return [name, c.ok ? formatIntPtr(c.mem, a(1)) : ptr(a(1))];
      case 38: case 39: case 41: case 42: return [name, ulong(a(1)), ulong(a(2)), ulong(a(3)), ulong(a(4))];
      case 0x59616d61: return [name, BigInt.asUintN(64, a(1)) === 0xffffffffffffffffn ? 'PR_SET_PTRACER_ANY' : int(a(1))];
      case 0x53564d41: return [name, a(1) === 0n ? 'PR_SET_VMA_ANON_NAME' : hex(a(1)), hex(a(2)), ulong(a(3)), formatCString(c.mem, a(4), c.strlen)];
      default: return [name, hex(a(1)), hex(a(2)), hex(a(3)), hex(a(4))];
    }
  },
  ret(c, r) {
    if (BigInt.asUintN(32, arg(c, 0)) === 3n) {
      const n = lookup(r, SUID_DUMP);
      return n ? `${r} (${n})` : r.toString();
    }
    return r.toString();
  },
};

/** A select fd_set of `nfds` bits: `[0 3]`. */
function fdSet(c: DecodeContext, addr: bigint): string {
  const nfds = Math.max(0, Math.min(Number(BigInt.asIntN(32, arg(c, 0))), 1024));
  if (BigInt.asUintN(64, addr) === 0n) return 'NULL';
  const s = formatBitList(c.mem, addr, Math.ceil(nfds / 64) * 8);
  if (!s.startsWith('[')) return s;
  const fds = s.slice(1, -1).split(' ').filter((x) => x !== '' && Number(x) < nfds);
  return `[${fds.join(' ')}]`;
}

/** The time left, as the kernel wrote it back into the timeout argument: `left {...}`. */
function left(c: DecodeContext, i: number, timeval: boolean): string | undefined {
  const a = arg(c, i);
  if (a === 0n) return undefined;
  const s = timeval ? formatTimeval(c.mem, a) : formatTimespec(c.mem, a);
  return s.startsWith('{') ? `left ${s}` : undefined;
}

/** select / pselect6: `N (in [3], out [4], left {...})`. */
function selectRet(timeval: boolean) {
  return (c: DecodeContext, r: bigint): string => {
    if (r === 0n) return '0 (Timeout)';
    const parts: string[] = [];
    for (const [i, label] of [[1, 'in'], [2, 'out'], [3, 'except']] as const) {
      if (arg(c, i) === 0n) continue;
      const s = fdSet(c, arg(c, i));
      if (s !== '[]' && s.startsWith('[')) parts.push(`${label} ${s}`);
    }
    const l = left(c, 4, timeval);
    if (l) parts.push(l);
    return parts.length ? `${r} (${parts.join(', ')})` : r.toString();
  };
}

/** poll / ppoll: `N ([{fd=0, revents=POLLIN}], left {...})`, `0 (Timeout)`. */
function pollRet(withLeft: boolean) {
  return (c: DecodeContext, r: bigint): string => {
    if (r === 0n) return '0 (Timeout)';
    const parts: string[] = [];
    const res = formatPollResult(c, arg(c, 0), arg(c, 1));
    if (res) parts.push(res);
    const l = withLeft ? left(c, 2, false) : undefined;
    if (l) parts.push(l);
    return parts.length ? `${r} (${parts.join(', ')})` : r.toString();
  };
}

const syslog: SyscallDecoder = {
  args(c) {
    const type = BigInt.asIntN(32, arg(c, 0));
    const name = lookup(type, SYSLOG_ACTIONS);
    const t = name ? `${type} /* ${name} */` : type.toString();
    if (type >= 2n && type <= 4n) return [t, outBuf()(arg(c, 1), c), int(arg(c, 2))];
    if (type === 8n) return [t, ptr(arg(c, 1)), int(arg(c, 2))];
    return name ? [t] : [t, ptr(arg(c, 1)), int(arg(c, 2))];
  },
};

/** membarrier: MEMBARRIER_CMD_QUERY answers with the supported commands. */
function membarrierRet(c: DecodeContext, r: bigint): string {
  if (arg(c, 0) !== 0n || r === 0n) return r.toString();
  return `${hex(r)} (${formatFlags(r, MEMBARRIER_CMD)})`;
}

const fdsetArg: ArgFormatter = (v, c) => fdSet(c, v);
const pollfds: ArgFormatter = (v, c) => formatPollfds(c, v, arg(c, 1));
const waitStatus: ArgFormatter = (v, c) => {
  if (!c.ok || retval(c) <= 0n || v === 0n) return ptr(v);
  const s = readU32(c.mem, v);
  return s === null ? ptr(v) : formatWaitStatus(s);
};
const rlimitIn: ArgFormatter = (v, c) => formatRlimit(c.mem, v);
const rlimitOut = out((v, c) => formatRlimit(c.mem, v));

/**
 * Decoders for process, signal, memory, time and other syscalls, by name.
 *
 * @example
 * ```ts
 * PROCESS_DECODERS.mmap!.args(c); // ['NULL', '8192', 'PROT_READ|PROT_WRITE', 'MAP_PRIVATE|MAP_ANONYMOUS', '-1', '0']
 * ```
 */
export const PROCESS_DECODERS: DecoderTable = {
  mmap: sigRet(retHex, P, UL, prot, (v) => formatMmapFlags(v), I, X),
  munmap: sig(P, UL),
  mprotect: sig(P, UL, prot),
  pkey_mprotect: sig(P, UL, prot, I),
  mremap: {
    args: (c) => {
      const base = [ptr(arg(c, 0)), ulong(arg(c, 1)), ulong(arg(c, 2)), formatFlags(BigInt.asUintN(32, arg(c, 3)), MREMAP_FLAGS)];
      return BigInt.asUintN(32, arg(c, 3)) & MREMAP_FIXED ? [...base, ptr(arg(c, 4))] : base;
    },
    ret: retHex,
  },
  brk: sigRet(retHex, P),
  madvise: sig(P, UL, enumOf(MADV, 'MADV_')),
  msync: sig(P, UL, flags(MS_FLAGS)),
  mincore: sig(P, UL, P),
  mlock: sig(P, UL),
  munlock: sig(P, UL),
  mlock2: sig(P, UL, flags(MLOCK_FLAGS)),
  mlockall: sig(flags(MCL_FLAGS)),
  shmat: sigRet(retHex, I, P, flags(SHM_FLAGS)),
  clone,
  clone3: sig((v, c) => formatCloneArgs(c.mem, v, arg(c, 1)), UL),
  exit: sig(I),
  exit_group: sig(I),
  wait4: sig(I, waitStatus, flags(WAIT_OPTIONS), out((v, c) => formatRusage(c.mem, v))),
  waitid: sig(enumOf(IDTYPE, 'P_'), I, out((v, c) => formatSiginfo(c.mem, v)), flags(WAIT_OPTIONS), out((v, c) => formatRusage(c.mem, v))),
  kill: sig(I, SIG),
  tkill: sig(I, SIG),
  tgkill: sig(I, I, SIG),
  rt_sigqueueinfo: sig(I, SIG, (v, c) => formatSiginfo(c.mem, v)),
  rt_tgsigqueueinfo: sig(I, I, SIG, (v, c) => formatSiginfo(c.mem, v)),
  pidfd_send_signal: sig(FD, SIG, (v, c) => formatSiginfo(c.mem, v), U),
  pidfd_open: sig(I, U),
  rt_sigaction: sig(SIG, (v, c) => formatSigaction(c.mem, v), out((v, c) => formatSigaction(c.mem, v)), UL),
  rt_sigprocmask: sig(enumOf(SIG_HOW, 'SIG_'), sigsetSized(3), out(sigsetSized(3)), UL),
  rt_sigsuspend: sig(sigsetSized(1), UL),
  rt_sigtimedwait: sig(sigsetSized(3), out((v, c) => formatSiginfo(c.mem, v)), timespec, UL),
  rt_sigreturn: rtSigreturn,
  sigaltstack: sig((v, c) => formatStack(c.mem, v), out((v, c) => formatStack(c.mem, v))),
  arch_prctl: archPrctl,
  set_tid_address: sig(P),
  set_robust_list: sig(P, UL),
  get_robust_list: sig(I, P, P),
  prlimit64: sig(I, enumOf(RLIMIT, 'RLIMIT_'), rlimitIn, rlimitOut),
  getrlimit: sig(enumOf(RLIMIT, 'RLIMIT_'), rlimitOut),
  setrlimit: sig(enumOf(RLIMIT, 'RLIMIT_'), rlimitIn),
  getrusage: sig(enumOf(RUSAGE_WHO, 'RUSAGE_', true), out((v, c) => formatRusage(c.mem, v))),
  getpriority: sig(enumOf(PRIO_WHICH, 'PRIO_'), I),
  setpriority: sig(enumOf(PRIO_WHICH, 'PRIO_'), I, I),
  getrandom: sig(outBuf(true), UL, flags(GRND)),
  futex,
  uname: sig(out((v, c) => formatUtsname(c.mem, v, c.strlen))),
  sysinfo: sig(out((v, c) => formatSysinfo(c.mem, v))),
  prctl,
  umask: sigRet(retOctal, MODE),
  nanosleep: sig(timespec, remaining),
  clock_nanosleep: sig(clockid, flags(TIMER_FLAGS), timespec, remaining),
  clock_gettime: sig(clockid, out(timespec)),
  clock_getres: sig(clockid, out(timespec)),
  clock_settime: sig(clockid, timespec),
  gettimeofday: sig(out((v, c) => formatTimeval(c.mem, v)), P),
  settimeofday: sig((v, c) => formatTimeval(c.mem, v), P),
  time: sig(out((v, c) => (v === 0n ? 'NULL' : formatU64Ptr(c.mem, v, (n) => BigInt.asIntN(64, n).toString())))),
  alarm: sig(U),
  setitimer: sig(enumOf(ITIMERS, 'ITIMER_'), (v, c) => formatItimerval(c.mem, v), out((v, c) => formatItimerval(c.mem, v))),
  getitimer: sig(enumOf(ITIMERS, 'ITIMER_'), out((v, c) => formatItimerval(c.mem, v))),
  select: sigRet(selectRet(true), I, fdsetArg, fdsetArg, fdsetArg, (v, c) => formatTimeval(c.mem, v)),
  pselect6: sigRet(selectRet(false), I, fdsetArg, fdsetArg, fdsetArg, timespec, P),
  poll: sigRet(pollRet(false), pollfds, U, I),
  ppoll: sigRet(pollRet(true), pollfds, U, timespec, sigsetSized(4), UL),
  membarrier: sigRet(membarrierRet, enumOf(MEMBARRIER_CMD, 'MEMBARRIER_CMD_'), U),
  syslog,
  setuid: sig(U),
  setgid: sig(U),
  setfsuid: sig(U),
  setfsgid: sig(U),
  setreuid: sig(I, I),
  setregid: sig(I, I),
  setresuid: sig(I, I, I),
  setresgid: sig(I, I, I),
  setpgid: sig(I, I),
  getpgid: sig(I),
  getsid: sig(I),
  personality: sig(X),
  sched_getscheduler: sig(I),
  sched_get_priority_max: sig(I),
  sched_get_priority_min: sig(I),
  unshare: sig(flags(UNSHARE_FLAGS)),
  setns: sig(FD, flags(UNSHARE_FLAGS)),
  seccomp: sig(enumOf(SECCOMP_OPS, 'SECCOMP_'), flags(SECCOMP_FILTER_FLAGS), P),
};
