/**
 * Decoders for the process calls: clone and exit, wait, resource limits
 * and usage, priorities and scheduling, ids, namespaces, arch_prctl,
 * seccomp, uname, sysinfo, getrandom, syslog. (futex and prctl have their
 * own files.)
 *
 * @module
 */

import type { ArgFormatter, DecoderTable, SyscallDecoder } from './args.js';
import { FD, I, MODE, P, U, UL, X, enumOf, flags, out, outBuf, retOctal, sig, sigRet } from './args.js';
import { futex } from './futex.js';
import { prctl } from './prctl.js';
import { arg, retval } from '../context.js';
import { hex, int, ptr } from '../scalars.js';
import { signalName } from '../signals.js';
import { formatBitList, formatU64Ptr } from '../structs/arrays.js';
import { formatCloneArgs, formatRlimit, formatSysinfo, formatUtsname, formatWaitStatus } from '../structs/process.js';
import { formatSiginfo } from '../structs/signal.js';
import { formatRusage } from '../structs/time.js';
import { readU32 } from '../umove.js';
import { formatEnum, formatFlags, lookup } from '../xlat.js';
import {
  ARCH_PRCTL, CLONE_CHILD_CLEARTID, CLONE_CHILD_SETTID, CLONE_FLAGS, CLONE_PARENT_SETTID, CLONE_PIDFD,
  CLONE_SETTLS, GRND, IDTYPE, PRIO_WHICH, RLIMIT, RUSAGE_WHO, SECCOMP_FILTER_FLAGS, SECCOMP_OPS,
  SYSLOG_ACTIONS, UNSHARE_FLAGS, WAIT_OPTIONS,
} from '../xlat/process.js';

/** The low byte of clone's flags: the signal the parent gets when the child exits. */
const CSIGNAL = 0xffn;

/** clone(2) on x86-64: clone(flags, stack, parent_tid, child_tid, tls), printed by name as strace does. */
const clone: SyscallDecoder = {
  args(c) {
    const f = BigInt.asUintN(64, arg(c, 0));
    const exitSig = f & CSIGNAL;
    const named = f & ~CSIGNAL ? formatFlags(f & ~CSIGNAL, CLONE_FLAGS) : '';
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

/** arch_prctl: the GET codes store a word at the address, the others take a value. */
const archPrctl: SyscallDecoder = {
  args(c) {
    const code = BigInt.asUintN(32, arg(c, 0));
    const a = arg(c, 1);
    const name = formatEnum(code, ARCH_PRCTL, 'ARCH_');
    const known = lookup(code, ARCH_PRCTL);
    if (known === 'ARCH_GET_FS' || known === 'ARCH_GET_GS') return [name, c.ok ? formatU64Ptr(c.mem, a) : ptr(a)];
    return [name, hex(a)];
  },
};

/** The syslog actions that read the log into the buffer. */
const SYSLOG_READS = new Set(['SYSLOG_ACTION_READ', 'SYSLOG_ACTION_READ_ALL', 'SYSLOG_ACTION_READ_CLEAR']);

/** syslog(type, buf, len): strace shows the type as a number with its name in a comment. */
const syslog: SyscallDecoder = {
  args(c) {
    const type = BigInt.asIntN(32, arg(c, 0));
    const name = lookup(type, SYSLOG_ACTIONS);
    const t = name ? `${type} /* ${name} */` : type.toString();
    if (name !== undefined && SYSLOG_READS.has(name)) return [t, outBuf()(arg(c, 1), c), int(arg(c, 2))];
    if (name === 'SYSLOG_ACTION_CONSOLE_LEVEL') return [t, ptr(arg(c, 1)), int(arg(c, 2))];
    return name ? [t] : [t, ptr(arg(c, 1)), int(arg(c, 2))];
  },
};

/** wait4's status, once a child was reaped (the call returned its pid). */
const waitStatus: ArgFormatter = (v, c) => {
  if (!c.ok || retval(c) <= 0n || v === 0n) return ptr(v);
  const s = readU32(c.mem, v);
  return s === null ? ptr(v) : formatWaitStatus(s);
};
const rusageOut = out((v, c) => formatRusage(c.mem, v));
const rlimitIn: ArgFormatter = (v, c) => formatRlimit(c.mem, v);
const rlimitOut = out((v, c) => formatRlimit(c.mem, v));
const resource = enumOf(RLIMIT, 'RLIMIT_');
/** The CPU mask size strace reads at most for sched_setaffinity, in bytes. */
const MAX_CPU_MASK_BYTES = 1024;

/**
 * Decoders for the process calls, by name.
 *
 * @example
 * ```ts
 * PROCESS_DECODERS.wait4!.args(c); // ['-1', '[{WIFEXITED(s) && WEXITSTATUS(s) == 0}]', '0', 'NULL']
 * ```
 */
export const PROCESS_DECODERS: DecoderTable = {
  clone,
  clone3: sig((v, c) => formatCloneArgs(c.mem, v, arg(c, 1)), UL),
  exit: sig(I),
  exit_group: sig(I),
  wait4: sig(I, waitStatus, flags(WAIT_OPTIONS), rusageOut),
  waitid: sig(enumOf(IDTYPE, 'P_'), I, out((v, c) => formatSiginfo(c.mem, v)), flags(WAIT_OPTIONS), rusageOut),
  pidfd_open: sig(I, U),
  set_tid_address: sig(P),
  set_robust_list: sig(P, UL),
  get_robust_list: sig(I, P, P),
  arch_prctl: archPrctl,
  prctl,
  futex,
  prlimit64: sig(I, resource, rlimitIn, rlimitOut),
  getrlimit: sig(resource, rlimitOut),
  setrlimit: sig(resource, rlimitIn),
  getrusage: sig(enumOf(RUSAGE_WHO, 'RUSAGE_', true), rusageOut),
  getpriority: sig(enumOf(PRIO_WHICH, 'PRIO_'), I),
  setpriority: sig(enumOf(PRIO_WHICH, 'PRIO_'), I, I),
  sched_getscheduler: sig(I),
  sched_get_priority_max: sig(I),
  sched_get_priority_min: sig(I),
  sched_getaffinity: sig(I, U, out((v, c) => formatBitList(c.mem, v, Number(retval(c))))),
  sched_setaffinity: sig(I, U, (v, c) => formatBitList(c.mem, v, Math.min(Number(BigInt.asUintN(32, arg(c, 1))), MAX_CPU_MASK_BYTES))),
  umask: sigRet(retOctal, MODE),
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
  unshare: sig(flags(UNSHARE_FLAGS)),
  setns: sig(FD, flags(UNSHARE_FLAGS)),
  seccomp: sig(enumOf(SECCOMP_OPS, 'SECCOMP_'), flags(SECCOMP_FILTER_FLAGS), P),
  uname: sig(out((v, c) => formatUtsname(c.mem, v, c.strlen))),
  sysinfo: sig(out((v, c) => formatSysinfo(c.mem, v))),
  getrandom: sig(outBuf(true), UL, flags(GRND)),
  syslog,
};
