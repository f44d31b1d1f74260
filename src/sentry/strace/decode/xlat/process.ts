/**
 * Flags and codes of the process calls: clone, wait, resource limits,
 * priorities, arch_prctl, seccomp, getrandom, syslog (x86-64 values, in
 * strace's print order).
 *
 * @module
 */

import {
  CLONE_FILES, CLONE_FS, CLONE_PARENT, CLONE_PTRACE, CLONE_VM, SECCOMP_SET_MODE_FILTER,
} from '../../../../abi/linux.js';
import { PTRACE_EVENT_EXIT, WNOHANG, __WALL } from '../../../../abi/ptrace.js';
import type { Xlat } from '../xlat.js';
import { xlat } from '../xlat.js';

/**
 * clone: a pidfd for the child is stored at parent_tid (clone3: at pidfd).
 *
 * @example
 * ```ts
 * if (flags & CLONE_PIDFD) parts.push(`pidfd=${ptr(pidfdAddr)}`);
 * ```
 */
export const CLONE_PIDFD = 0x1000n;

/**
 * clone: the child's thread pointer is set from the tls argument.
 *
 * @example
 * ```ts
 * if (flags & CLONE_SETTLS) parts.push(`tls=${ptr(tls)}`);
 * ```
 */
export const CLONE_SETTLS = 0x80000n;

/**
 * clone: the child's tid is stored at parent_tid.
 *
 * @example
 * ```ts
 * if (flags & CLONE_PARENT_SETTID) parts.push(`parent_tid=${ptr(parentTid)}`);
 * ```
 */
export const CLONE_PARENT_SETTID = 0x100000n;

/**
 * clone: the child's tid at child_tid is cleared (and the futex woken) when it exits.
 *
 * @example
 * ```ts
 * const usesChildTid = (flags & (CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID)) !== 0n;
 * ```
 */
export const CLONE_CHILD_CLEARTID = 0x200000n;

/**
 * clone: the child's tid is stored at child_tid.
 *
 * @example
 * ```ts
 * const usesChildTid = (flags & (CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID)) !== 0n;
 * ```
 */
export const CLONE_CHILD_SETTID = 0x1000000n;

/**
 * clone3: the child starts in the cgroup whose fd is clone_args.cgroup.
 *
 * @example
 * ```ts
 * if (flags & CLONE_INTO_CGROUP) parts.push(`cgroup=${cgroupFd}`);
 * ```
 */
export const CLONE_INTO_CGROUP = 0x200000000n;

/**
 * clone(2)/clone3(2) flags (the low byte of clone's flags is the exit signal).
 *
 * @example
 * ```ts
 * formatFlags(0x1200000n, CLONE_FLAGS); // 'CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID'
 * ```
 */
export const CLONE_FLAGS = xlat({
  CLONE_VM, CLONE_FS, CLONE_FILES, CLONE_SIGHAND: 0x800, CLONE_PIDFD,
  CLONE_PTRACE, CLONE_VFORK: 0x4000, CLONE_PARENT, CLONE_THREAD: 0x10000,
  CLONE_NEWNS: 0x20000, CLONE_SYSVSEM: 0x40000, CLONE_SETTLS, CLONE_PARENT_SETTID,
  CLONE_CHILD_CLEARTID, CLONE_UNTRACED: 0x800000,
  CLONE_CHILD_SETTID, CLONE_NEWCGROUP: 0x2000000, CLONE_NEWUTS: 0x4000000,
  CLONE_NEWIPC: 0x8000000, CLONE_NEWUSER: 0x10000000, CLONE_NEWPID: 0x20000000, CLONE_NEWNET: 0x40000000,
  CLONE_IO: 0x80000000,
});

/**
 * clone3(2) flags: clone's and the 64-bit-only ones.
 *
 * @example
 * ```ts
 * formatFlags(0x100000100n, CLONE3_FLAGS); // 'CLONE_VM|CLONE_CLEAR_SIGHAND'
 * ```
 */
export const CLONE3_FLAGS: Xlat = [...CLONE_FLAGS, ...xlat({ CLONE_CLEAR_SIGHAND: 0x100000000, CLONE_INTO_CGROUP, CLONE_NEWTIME: 0x80 })];

/**
 * unshare(2) / setns(2) flags.
 *
 * @example
 * ```ts
 * formatFlags(0x20080n, UNSHARE_FLAGS); // 'CLONE_NEWTIME|CLONE_NEWNS'
 * ```
 */
export const UNSHARE_FLAGS = xlat({
  CLONE_NEWTIME: 0x80, CLONE_VM, CLONE_FS, CLONE_FILES, CLONE_SIGHAND: 0x800,
  CLONE_THREAD: 0x10000, CLONE_NEWNS: 0x20000, CLONE_SYSVSEM: 0x40000, CLONE_NEWCGROUP: 0x2000000,
  CLONE_NEWUTS: 0x4000000, CLONE_NEWIPC: 0x8000000, CLONE_NEWUSER: 0x10000000, CLONE_NEWPID: 0x20000000,
  CLONE_NEWNET: 0x40000000,
});

/**
 * wait4(2)/waitid(2) options.
 *
 * @example
 * ```ts
 * formatFlags(0x40000001n, WAIT_OPTIONS); // 'WNOHANG|__WALL'
 * ```
 */
export const WAIT_OPTIONS = xlat({
  WNOHANG, WEXITED: 4, WSTOPPED: 2, WCONTINUED: 8, WNOWAIT: 0x1000000, __WCLONE: 0x80000000,
  __WALL, __WNOTHREAD: 0x20000000,
});

/**
 * waitid(2) id types.
 *
 * @example
 * ```ts
 * formatEnum(1n, IDTYPE, 'P_'); // 'P_PID'
 * ```
 */
export const IDTYPE = xlat({ P_ALL: 0, P_PID: 1, P_PGID: 2, P_PIDFD: 3 });

/**
 * ptrace events, as a stopped wait status reports them in its high bits.
 *
 * @example
 * ```ts
 * lookup(6n, PTRACE_EVENTS); // 'PTRACE_EVENT_EXIT'
 * ```
 */
export const PTRACE_EVENTS = xlat({
  PTRACE_EVENT_FORK: 1, PTRACE_EVENT_VFORK: 2, PTRACE_EVENT_CLONE: 3, PTRACE_EVENT_EXEC: 4,
  PTRACE_EVENT_VFORK_DONE: 5, PTRACE_EVENT_EXIT, PTRACE_EVENT_SECCOMP: 7, PTRACE_EVENT_STOP: 128,
});

/**
 * Resource limits.
 *
 * @example
 * ```ts
 * formatEnum(3n, RLIMIT, 'RLIMIT_'); // 'RLIMIT_STACK'
 * ```
 */
export const RLIMIT = xlat({
  RLIMIT_CPU: 0, RLIMIT_FSIZE: 1, RLIMIT_DATA: 2, RLIMIT_STACK: 3, RLIMIT_CORE: 4, RLIMIT_RSS: 5,
  RLIMIT_NPROC: 6, RLIMIT_NOFILE: 7, RLIMIT_MEMLOCK: 8, RLIMIT_AS: 9, RLIMIT_LOCKS: 10,
  RLIMIT_SIGPENDING: 11, RLIMIT_MSGQUEUE: 12, RLIMIT_NICE: 13, RLIMIT_RTPRIO: 14, RLIMIT_RTTIME: 15,
});

/**
 * getrusage(2) who.
 *
 * @example
 * ```ts
 * formatEnum(-1n, RUSAGE_WHO, 'RUSAGE_'); // 'RUSAGE_CHILDREN'
 * ```
 */
export const RUSAGE_WHO = xlat({ RUSAGE_SELF: 0, RUSAGE_CHILDREN: -1, RUSAGE_THREAD: 1 });

/**
 * getpriority(2) which.
 *
 * @example
 * ```ts
 * formatEnum(0n, PRIO_WHICH, 'PRIO_'); // 'PRIO_PROCESS'
 * ```
 */
export const PRIO_WHICH = xlat({ PRIO_PROCESS: 0, PRIO_PGRP: 1, PRIO_USER: 2 });

/**
 * arch_prctl(2) codes.
 *
 * @example
 * ```ts
 * formatEnum(0x1002n, ARCH_PRCTL, 'ARCH_'); // 'ARCH_SET_FS'
 * ```
 */
export const ARCH_PRCTL = xlat({
  ARCH_SET_GS: 0x1001, ARCH_SET_FS: 0x1002, ARCH_GET_FS: 0x1003, ARCH_GET_GS: 0x1004,
  ARCH_GET_CPUID: 0x1011, ARCH_SET_CPUID: 0x1012, ARCH_GET_XCOMP_SUPP: 0x1021, ARCH_GET_XCOMP_PERM: 0x1022,
  ARCH_REQ_XCOMP_PERM: 0x1023, ARCH_GET_XCOMP_GUEST_PERM: 0x1024, ARCH_REQ_XCOMP_GUEST_PERM: 0x1025,
  ARCH_MAP_VDSO_X32: 0x2001, ARCH_MAP_VDSO_32: 0x2002, ARCH_MAP_VDSO_64: 0x2003,
  ARCH_SHSTK_ENABLE: 0x5001, ARCH_SHSTK_DISABLE: 0x5002, ARCH_SHSTK_LOCK: 0x5003, ARCH_SHSTK_STATUS: 0x5005,
});

/**
 * getrandom(2) flags.
 *
 * @example
 * ```ts
 * formatFlags(1n, GRND); // 'GRND_NONBLOCK'
 * ```
 */
export const GRND = xlat({ GRND_NONBLOCK: 1, GRND_RANDOM: 2, GRND_INSECURE: 4 });

/**
 * seccomp(2) operations.
 *
 * @example
 * ```ts
 * formatEnum(1n, SECCOMP_OPS, 'SECCOMP_'); // 'SECCOMP_SET_MODE_FILTER'
 * ```
 */
export const SECCOMP_OPS = xlat({
  SECCOMP_SET_MODE_STRICT: 0, SECCOMP_SET_MODE_FILTER, SECCOMP_GET_ACTION_AVAIL: 2, SECCOMP_GET_NOTIF_SIZES: 3,
});

/**
 * seccomp(2) SECCOMP_SET_MODE_FILTER flags.
 *
 * @example
 * ```ts
 * formatFlags(1n, SECCOMP_FILTER_FLAGS); // 'SECCOMP_FILTER_FLAG_TSYNC'
 * ```
 */
export const SECCOMP_FILTER_FLAGS = xlat({
  SECCOMP_FILTER_FLAG_TSYNC: 1, SECCOMP_FILTER_FLAG_LOG: 2, SECCOMP_FILTER_FLAG_SPEC_ALLOW: 4,
  SECCOMP_FILTER_FLAG_NEW_LISTENER: 8, SECCOMP_FILTER_FLAG_TSYNC_ESRCH: 16, SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: 32,
});

/**
 * syslog(2) actions.
 *
 * @example
 * ```ts
 * lookup(10n, SYSLOG_ACTIONS); // 'SYSLOG_ACTION_SIZE_BUFFER'
 * ```
 */
export const SYSLOG_ACTIONS = xlat({
  SYSLOG_ACTION_CLOSE: 0, SYSLOG_ACTION_OPEN: 1, SYSLOG_ACTION_READ: 2, SYSLOG_ACTION_READ_ALL: 3,
  SYSLOG_ACTION_READ_CLEAR: 4, SYSLOG_ACTION_CLEAR: 5, SYSLOG_ACTION_CONSOLE_OFF: 6, SYSLOG_ACTION_CONSOLE_ON: 7,
  SYSLOG_ACTION_CONSOLE_LEVEL: 8, SYSLOG_ACTION_SIZE_UNREAD: 9, SYSLOG_ACTION_SIZE_BUFFER: 10,
});
