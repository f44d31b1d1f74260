/**
 * Symbolic constants for the arguments of file, memory, process, signal
 * and time syscalls (x86-64 values), in strace's print order. The socket
 * ones are in `./netFlags.ts`.
 *
 * @module
 */

import { hex, octal } from './scalars.js';
import type { Xlat } from './xlat.js';
import { formatFlags, lookup, xlat } from './xlat.js';

/**
 * open(2) flags other than the access mode (which {@link formatOpenFlags} prints first).
 *
 * @example
 * ```ts
 * formatFlags(0x80040n, OPEN_FLAGS); // 'O_CREAT|O_CLOEXEC'
 * ```
 */
export const OPEN_FLAGS = xlat({
  O_CREAT: 0x40, O_EXCL: 0x80, O_NOCTTY: 0x100, O_TRUNC: 0x200, O_APPEND: 0x400, O_NONBLOCK: 0x800,
  O_SYNC: 0x101000, O_DSYNC: 0x1000, O_DIRECT: 0x4000, O_LARGEFILE: 0x8000, O_NOFOLLOW: 0x20000,
  O_NOATIME: 0x40000, O_CLOEXEC: 0x80000, O_PATH: 0x200000, O_TMPFILE: 0x410000, O_DIRECTORY: 0x10000,
  FASYNC: 0x2000,
});

const ACCESS_MODES = ['O_RDONLY', 'O_WRONLY', 'O_RDWR', 'O_ACCMODE'] as const;

/**
 * open(2) flags: the access mode first (`O_RDONLY` for 0), then the others.
 *
 * @example
 * ```ts
 * formatOpenFlags(0x80000n); // 'O_RDONLY|O_CLOEXEC'
 * ```
 */
export function formatOpenFlags(v: bigint): string {
  const u = BigInt.asUintN(32, v);
  const rest = u & ~3n;
  const mode = ACCESS_MODES[Number(u & 3n)]!;
  return rest === 0n ? mode : `${mode}|${formatFlags(rest, OPEN_FLAGS)}`;
}

/**
 * `*at()` flags.
 *
 * @example
 * ```ts
 * formatFlags(0x1000n, AT_FLAGS); // 'AT_EMPTY_PATH'
 * ```
 */
export const AT_FLAGS = xlat({
  AT_SYMLINK_NOFOLLOW: 0x100, AT_REMOVEDIR: 0x200, AT_SYMLINK_FOLLOW: 0x400, AT_NO_AUTOMOUNT: 0x800,
  AT_EMPTY_PATH: 0x1000, AT_RECURSIVE: 0x8000,
});
/**
 * faccessat2(2) flags (0x200 is AT_EACCESS there).
 *
 * @example
 * ```ts
 * formatFlags(0x200n, FACCESSAT_FLAGS); // 'AT_EACCESS'
 * ```
 */
export const FACCESSAT_FLAGS = xlat({ AT_SYMLINK_NOFOLLOW: 0x100, AT_EACCESS: 0x200, AT_EMPTY_PATH: 0x1000 });
/**
 * statx(2) flags (AT_STATX_SYNC_AS_STAT, the zero sync type, is printed separately).
 *
 * @example
 * ```ts
 * formatFlags(0x2100n, STATX_AT_FLAGS); // 'AT_STATX_FORCE_SYNC|AT_SYMLINK_NOFOLLOW'
 * ```
 */
export const STATX_AT_FLAGS: Xlat = [...xlat({ AT_STATX_FORCE_SYNC: 0x2000, AT_STATX_DONT_SYNC: 0x4000 }), ...AT_FLAGS];
/**
 * statx(2) mask bits.
 *
 * @example
 * ```ts
 * formatFlags(0x17ffn, STATX_MASK); // 'STATX_BASIC_STATS|STATX_MNT_ID'
 * ```
 */
export const STATX_MASK = xlat({
  STATX_ALL: 0xfff, STATX_BASIC_STATS: 0x7ff, STATX_TYPE: 0x1, STATX_MODE: 0x2, STATX_NLINK: 0x4, STATX_UID: 0x8,
  STATX_GID: 0x10, STATX_ATIME: 0x20, STATX_MTIME: 0x40, STATX_CTIME: 0x80, STATX_INO: 0x100, STATX_SIZE: 0x200,
  STATX_BLOCKS: 0x400, STATX_BTIME: 0x800, STATX_MNT_ID: 0x1000, STATX_DIOALIGN: 0x2000, STATX_MNT_ID_UNIQUE: 0x4000,
});
/**
 * statx(2) stx_attributes bits.
 *
 * @example
 * ```ts
 * formatFlags(0x20n, STATX_ATTRS); // 'STATX_ATTR_APPEND'
 * ```
 */
export const STATX_ATTRS = xlat({
  STATX_ATTR_COMPRESSED: 0x4, STATX_ATTR_IMMUTABLE: 0x10, STATX_ATTR_APPEND: 0x20, STATX_ATTR_NODUMP: 0x40,
  STATX_ATTR_ENCRYPTED: 0x800, STATX_ATTR_AUTOMOUNT: 0x1000, STATX_ATTR_MOUNT_ROOT: 0x2000,
  STATX_ATTR_VERITY: 0x100000, STATX_ATTR_DAX: 0x200000,
});

/**
 * access(2) modes (`F_OK` when 0).
 *
 * @example
 * ```ts
 * formatFlags(6n, ACCESS_MODE, 'F_OK'); // 'R_OK|W_OK'
 * ```
 */
export const ACCESS_MODE = xlat({ R_OK: 4, W_OK: 2, X_OK: 1 });

/**
 * lseek(2) whence.
 *
 * @example
 * ```ts
 * formatEnum(2n, WHENCE, 'SEEK_'); // 'SEEK_END'
 * ```
 */
export const WHENCE = xlat({ SEEK_SET: 0, SEEK_CUR: 1, SEEK_END: 2, SEEK_DATA: 3, SEEK_HOLE: 4 });

/**
 * mmap(2)/mprotect(2) protections.
 *
 * @example
 * ```ts
 * formatFlags(3n, PROT, 'PROT_NONE'); // 'PROT_READ|PROT_WRITE'
 * ```
 */
export const PROT = xlat({ PROT_READ: 1, PROT_WRITE: 2, PROT_EXEC: 4, PROT_SEM: 8, PROT_GROWSDOWN: 0x01000000, PROT_GROWSUP: 0x02000000 });
/** mmap(2) mapping types (the low 4 bits). */
const MAP_TYPE = xlat({ MAP_SHARED: 1, MAP_PRIVATE: 2, MAP_SHARED_VALIDATE: 3 });
/** mmap(2) flags other than the type. */
const MAP_FLAGS = xlat({
  MAP_FIXED: 0x10, MAP_ANONYMOUS: 0x20, MAP_32BIT: 0x40, MAP_NORESERVE: 0x4000, MAP_POPULATE: 0x8000,
  MAP_NONBLOCK: 0x10000, MAP_GROWSDOWN: 0x100, MAP_DENYWRITE: 0x800, MAP_EXECUTABLE: 0x1000, MAP_LOCKED: 0x2000,
  MAP_STACK: 0x20000, MAP_HUGETLB: 0x40000, MAP_SYNC: 0x80000, MAP_FIXED_NOREPLACE: 0x100000,
});

/**
 * mmap(2) flags: the mapping type, the flags, then the huge page size
 * (`21<<MAP_HUGE_SHIFT`); `MAP_FILE` when all zero.
 *
 * @example
 * ```ts
 * formatMmapFlags(0x22n); // 'MAP_PRIVATE|MAP_ANONYMOUS'
 * formatMmapFlags(0n);    // 'MAP_FILE'
 * ```
 */
export function formatMmapFlags(v: bigint): string {
  const u = BigInt.asUintN(64, v);
  if (u === 0n) return 'MAP_FILE';
  const parts: string[] = [];
  const type = lookup(u & 0xfn, MAP_TYPE);
  if (type) parts.push(type);
  const huge = (u >> 26n) & 0x3fn;
  const rest = (type ? u & ~0xfn : u) & ~(0x3fn << 26n);
  if (rest !== 0n) parts.push(formatFlags(rest, MAP_FLAGS));
  if (huge !== 0n) parts.push(`${huge}<<MAP_HUGE_SHIFT`);
  return parts.join('|');
}

/**
 * mremap(2) flags.
 *
 * @example
 * ```ts
 * formatFlags(1n, MREMAP_FLAGS); // 'MREMAP_MAYMOVE'
 * ```
 */
export const MREMAP_FLAGS = xlat({ MREMAP_MAYMOVE: 1, MREMAP_FIXED: 2, MREMAP_DONTUNMAP: 4 });
/**
 * madvise(2) advice.
 *
 * @example
 * ```ts
 * formatEnum(4n, MADV, 'MADV_'); // 'MADV_DONTNEED'
 * ```
 */
export const MADV = xlat({
  MADV_NORMAL: 0, MADV_RANDOM: 1, MADV_SEQUENTIAL: 2, MADV_WILLNEED: 3, MADV_DONTNEED: 4, MADV_FREE: 8,
  MADV_REMOVE: 9, MADV_DONTFORK: 10, MADV_DOFORK: 11, MADV_MERGEABLE: 12, MADV_UNMERGEABLE: 13,
  MADV_HUGEPAGE: 14, MADV_NOHUGEPAGE: 15, MADV_DONTDUMP: 16, MADV_DODUMP: 17, MADV_WIPEONFORK: 18,
  MADV_KEEPONFORK: 19, MADV_COLD: 20, MADV_PAGEOUT: 21, MADV_POPULATE_READ: 22, MADV_POPULATE_WRITE: 23,
  MADV_DONTNEED_LOCKED: 24, MADV_COLLAPSE: 25, MADV_HWPOISON: 100, MADV_SOFT_OFFLINE: 101,
});
/**
 * msync(2) flags.
 *
 * @example
 * ```ts
 * formatFlags(6n, MS_FLAGS); // 'MS_SYNC|MS_INVALIDATE'
 * ```
 */
export const MS_FLAGS = xlat({ MS_SYNC: 4, MS_ASYNC: 1, MS_INVALIDATE: 2 });
/**
 * mlockall(2) flags.
 *
 * @example
 * ```ts
 * formatFlags(3n, MCL_FLAGS); // 'MCL_CURRENT|MCL_FUTURE'
 * ```
 */
export const MCL_FLAGS = xlat({ MCL_CURRENT: 1, MCL_FUTURE: 2, MCL_ONFAULT: 4 });
/**
 * posix_fadvise(2) advice.
 *
 * @example
 * ```ts
 * formatEnum(2n, FADV, 'POSIX_FADV_'); // 'POSIX_FADV_SEQUENTIAL'
 * ```
 */
export const FADV = xlat({
  POSIX_FADV_NORMAL: 0, POSIX_FADV_RANDOM: 1, POSIX_FADV_SEQUENTIAL: 2, POSIX_FADV_WILLNEED: 3,
  POSIX_FADV_DONTNEED: 4, POSIX_FADV_NOREUSE: 5,
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
 * clone(2)/clone3(2) flags (the low byte of clone's flags is the exit signal).
 *
 * @example
 * ```ts
 * formatFlags(0x1200000n, CLONE_FLAGS); // 'CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID'
 * ```
 */
export const CLONE_FLAGS = xlat({
  CLONE_VM: 0x100, CLONE_FS: 0x200, CLONE_FILES: 0x400, CLONE_SIGHAND: 0x800, CLONE_PIDFD: 0x1000,
  CLONE_PTRACE: 0x2000, CLONE_VFORK: 0x4000, CLONE_PARENT: 0x8000, CLONE_THREAD: 0x10000,
  CLONE_NEWNS: 0x20000, CLONE_SYSVSEM: 0x40000, CLONE_SETTLS: 0x80000, CLONE_PARENT_SETTID: 0x100000,
  CLONE_CHILD_CLEARTID: 0x200000, CLONE_UNTRACED: 0x800000,
  CLONE_CHILD_SETTID: 0x1000000, CLONE_NEWCGROUP: 0x2000000, CLONE_NEWUTS: 0x4000000,
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
export const CLONE3_FLAGS: Xlat = [...CLONE_FLAGS, ...xlat({ CLONE_CLEAR_SIGHAND: 0x100000000, CLONE_INTO_CGROUP: 0x200000000, CLONE_NEWTIME: 0x80 })];
/**
 * unshare(2) / setns(2) flags.
 *
 * @example
 * ```ts
 * formatFlags(0x20080n, UNSHARE_FLAGS); // 'CLONE_NEWTIME|CLONE_NEWNS'
 * ```
 */
export const UNSHARE_FLAGS = xlat({
  CLONE_NEWTIME: 0x80, CLONE_VM: 0x100, CLONE_FS: 0x200, CLONE_FILES: 0x400, CLONE_SIGHAND: 0x800,
  CLONE_THREAD: 0x10000, CLONE_NEWNS: 0x20000, CLONE_SYSVSEM: 0x40000, CLONE_NEWCGROUP: 0x2000000,
  CLONE_NEWUTS: 0x4000000, CLONE_NEWIPC: 0x8000000, CLONE_NEWUSER: 0x10000000, CLONE_NEWPID: 0x20000000,
  CLONE_NEWNET: 0x40000000,
});

/**
 * futex(2) commands (without the PRIVATE / CLOCK_REALTIME bits).
 *
 * @example
 * ```ts
 * lookup(9n, FUTEX_CMD); // 'FUTEX_WAIT_BITSET'
 * ```
 */
export const FUTEX_CMD = xlat({
  FUTEX_WAIT: 0, FUTEX_WAKE: 1, FUTEX_FD: 2, FUTEX_REQUEUE: 3, FUTEX_CMP_REQUEUE: 4, FUTEX_WAKE_OP: 5,
  FUTEX_LOCK_PI: 6, FUTEX_UNLOCK_PI: 7, FUTEX_TRYLOCK_PI: 8, FUTEX_WAIT_BITSET: 9, FUTEX_WAKE_BITSET: 10,
  FUTEX_WAIT_REQUEUE_PI: 11, FUTEX_CMP_REQUEUE_PI: 12, FUTEX_LOCK_PI2: 13,
});

/**
 * rt_sigprocmask(2) `how`.
 *
 * @example
 * ```ts
 * formatEnum(2n, SIG_HOW, 'SIG_'); // 'SIG_SETMASK'
 * ```
 */
export const SIG_HOW = xlat({ SIG_BLOCK: 0, SIG_UNBLOCK: 1, SIG_SETMASK: 2 });
/**
 * sigaction sa_flags, in strace's order.
 *
 * @example
 * ```ts
 * formatFlags(0x14000000n, SA_FLAGS); // 'SA_RESTORER|SA_RESTART'
 * ```
 */
export const SA_FLAGS = xlat({
  SA_RESTORER: 0x04000000, SA_ONSTACK: 0x08000000, SA_RESTART: 0x10000000, SA_INTERRUPT: 0x20000000,
  SA_NODEFER: 0x40000000, SA_RESETHAND: 0x80000000, SA_SIGINFO: 4, SA_NOCLDSTOP: 1, SA_NOCLDWAIT: 2,
});
/**
 * sigaltstack(2) ss_flags.
 *
 * @example
 * ```ts
 * formatFlags(2n, SS_FLAGS); // 'SS_DISABLE'
 * ```
 */
export const SS_FLAGS = xlat({ SS_ONSTACK: 1, SS_DISABLE: 2, SS_AUTODISARM: 0x80000000 });

/**
 * fcntl(2) commands.
 *
 * @example
 * ```ts
 * formatEnum(1030n, FCNTL_CMD, 'F_'); // 'F_DUPFD_CLOEXEC'
 * ```
 */
export const FCNTL_CMD = xlat({
  F_DUPFD: 0, F_GETFD: 1, F_SETFD: 2, F_GETFL: 3, F_SETFL: 4, F_GETLK: 5, F_SETLK: 6, F_SETLKW: 7,
  F_SETOWN: 8, F_GETOWN: 9, F_SETSIG: 10, F_GETSIG: 11, F_SETOWN_EX: 15, F_GETOWN_EX: 16,
  F_GETOWNER_UIDS: 17, F_OFD_GETLK: 36, F_OFD_SETLK: 37, F_OFD_SETLKW: 38, F_SETLEASE: 1024,
  F_GETLEASE: 1025, F_NOTIFY: 1026, F_DUPFD_CLOEXEC: 1030, F_SETPIPE_SZ: 1031, F_GETPIPE_SZ: 1032,
  F_ADD_SEALS: 1033, F_GET_SEALS: 1034,
});
/**
 * fcntl(2) F_SETFD flags.
 *
 * @example
 * ```ts
 * formatFlags(1n, FD_FLAGS); // 'FD_CLOEXEC'
 * ```
 */
export const FD_FLAGS = xlat({ FD_CLOEXEC: 1 });
/**
 * struct flock l_type.
 *
 * @example
 * ```ts
 * formatEnum(1n, LOCK_TYPE); // 'F_WRLCK'
 * ```
 */
export const LOCK_TYPE = xlat({ F_RDLCK: 0, F_WRLCK: 1, F_UNLCK: 2 });
/**
 * flock(2) operations.
 *
 * @example
 * ```ts
 * formatFlags(6n, FLOCK_OPS); // 'LOCK_EX|LOCK_NB'
 * ```
 */
export const FLOCK_OPS = xlat({ LOCK_SH: 1, LOCK_EX: 2, LOCK_NB: 4, LOCK_UN: 8, LOCK_MAND: 32, LOCK_RW: 0xc0, LOCK_READ: 64, LOCK_WRITE: 128 });
/**
 * File seals (F_ADD_SEALS).
 *
 * @example
 * ```ts
 * formatFlags(3n, SEALS); // 'F_SEAL_SEAL|F_SEAL_SHRINK'
 * ```
 */
export const SEALS = xlat({ F_SEAL_SEAL: 1, F_SEAL_SHRINK: 2, F_SEAL_GROW: 4, F_SEAL_WRITE: 8, F_SEAL_FUTURE_WRITE: 16, F_SEAL_EXEC: 32 });

/**
 * poll(2) events.
 *
 * @example
 * ```ts
 * formatFlags(5n, POLL_EVENTS); // 'POLLIN|POLLOUT'
 * ```
 */
export const POLL_EVENTS = xlat({
  POLLIN: 0x1, POLLPRI: 0x2, POLLOUT: 0x4, POLLERR: 0x8, POLLHUP: 0x10, POLLNVAL: 0x20, POLLRDNORM: 0x40,
  POLLRDBAND: 0x80, POLLWRNORM: 0x100, POLLWRBAND: 0x200, POLLMSG: 0x400, POLLREMOVE: 0x1000,
  POLLRDHUP: 0x2000,
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
  WNOHANG: 1, WEXITED: 4, WSTOPPED: 2, WCONTINUED: 8, WNOWAIT: 0x1000000, __WCLONE: 0x80000000,
  __WALL: 0x40000000, __WNOTHREAD: 0x20000000,
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
 * POSIX clocks.
 *
 * @example
 * ```ts
 * formatEnum(1n, CLOCKS, 'CLOCK_'); // 'CLOCK_MONOTONIC'
 * ```
 */
export const CLOCKS = xlat({
  CLOCK_REALTIME: 0, CLOCK_MONOTONIC: 1, CLOCK_PROCESS_CPUTIME_ID: 2, CLOCK_THREAD_CPUTIME_ID: 3,
  CLOCK_MONOTONIC_RAW: 4, CLOCK_REALTIME_COARSE: 5, CLOCK_MONOTONIC_COARSE: 6, CLOCK_BOOTTIME: 7,
  CLOCK_REALTIME_ALARM: 8, CLOCK_BOOTTIME_ALARM: 9, CLOCK_SGI_CYCLE: 10, CLOCK_TAI: 11,
});
/**
 * clock_nanosleep(2) flags.
 *
 * @example
 * ```ts
 * formatFlags(1n, TIMER_FLAGS); // 'TIMER_ABSTIME'
 * ```
 */
export const TIMER_FLAGS = xlat({ TIMER_ABSTIME: 1 });

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
 * prctl(2) options.
 *
 * @example
 * ```ts
 * formatEnum(15n, PR, 'PR_'); // 'PR_SET_NAME'
 * ```
 */
export const PR = xlat({
  PR_SET_PDEATHSIG: 1, PR_GET_PDEATHSIG: 2, PR_GET_DUMPABLE: 3, PR_SET_DUMPABLE: 4, PR_GET_UNALIGN: 5,
  PR_SET_UNALIGN: 6, PR_GET_KEEPCAPS: 7, PR_SET_KEEPCAPS: 8, PR_GET_FPEMU: 9, PR_SET_FPEMU: 10,
  PR_GET_FPEXC: 11, PR_SET_FPEXC: 12, PR_GET_TIMING: 13, PR_SET_TIMING: 14, PR_SET_NAME: 15, PR_GET_NAME: 16,
  PR_GET_ENDIAN: 19, PR_SET_ENDIAN: 20, PR_GET_SECCOMP: 21, PR_SET_SECCOMP: 22, PR_CAPBSET_READ: 23,
  PR_CAPBSET_DROP: 24, PR_GET_TSC: 25, PR_SET_TSC: 26, PR_GET_SECUREBITS: 27, PR_SET_SECUREBITS: 28,
  PR_SET_TIMERSLACK: 29, PR_GET_TIMERSLACK: 30, PR_TASK_PERF_EVENTS_DISABLE: 31,
  PR_TASK_PERF_EVENTS_ENABLE: 32, PR_MCE_KILL: 33, PR_MCE_KILL_GET: 34, PR_SET_MM: 35,
  PR_SET_CHILD_SUBREAPER: 36, PR_GET_CHILD_SUBREAPER: 37, PR_SET_NO_NEW_PRIVS: 38, PR_GET_NO_NEW_PRIVS: 39,
  PR_GET_TID_ADDRESS: 40, PR_SET_THP_DISABLE: 41, PR_GET_THP_DISABLE: 42, PR_MPX_ENABLE_MANAGEMENT: 43,
  PR_MPX_DISABLE_MANAGEMENT: 44, PR_SET_FP_MODE: 45, PR_GET_FP_MODE: 46, PR_CAP_AMBIENT: 47,
  PR_SVE_SET_VL: 50, PR_SVE_GET_VL: 51, PR_GET_SPECULATION_CTRL: 52, PR_SET_SPECULATION_CTRL: 53,
  PR_PAC_RESET_KEYS: 54, PR_SET_TAGGED_ADDR_CTRL: 55, PR_GET_TAGGED_ADDR_CTRL: 56, PR_SET_IO_FLUSHER: 57,
  PR_GET_IO_FLUSHER: 58, PR_SET_SYSCALL_USER_DISPATCH: 59, PR_SCHED_CORE: 62, PR_SET_MDWE: 65,
  PR_GET_MDWE: 66, PR_SET_VMA: 0x53564d41, PR_SET_PTRACER: 0x59616d61,
});
/**
 * PR_SET_DUMPABLE values.
 *
 * @example
 * ```ts
 * lookup(1n, SUID_DUMP); // 'SUID_DUMP_USER'
 * ```
 */
export const SUID_DUMP = xlat({ SUID_DUMP_DISABLE: 0, SUID_DUMP_USER: 1, SUID_DUMP_ROOT: 2 });
/**
 * seccomp modes.
 *
 * @example
 * ```ts
 * formatEnum(2n, SECCOMP_MODE); // 'SECCOMP_MODE_FILTER'
 * ```
 */
export const SECCOMP_MODE = xlat({ SECCOMP_MODE_DISABLED: 0, SECCOMP_MODE_STRICT: 1, SECCOMP_MODE_FILTER: 2 });

/**
 * Capabilities, numbered from 0.
 *
 * @example
 * ```ts
 * formatEnum(21n, CAPS); // 'CAP_SYS_ADMIN'
 * ```
 */
export const CAPS = xlat({
  CAP_CHOWN: 0, CAP_DAC_OVERRIDE: 1, CAP_DAC_READ_SEARCH: 2, CAP_FOWNER: 3, CAP_FSETID: 4, CAP_KILL: 5,
  CAP_SETGID: 6, CAP_SETUID: 7, CAP_SETPCAP: 8, CAP_LINUX_IMMUTABLE: 9, CAP_NET_BIND_SERVICE: 10,
  CAP_NET_BROADCAST: 11, CAP_NET_ADMIN: 12, CAP_NET_RAW: 13, CAP_IPC_LOCK: 14, CAP_IPC_OWNER: 15,
  CAP_SYS_MODULE: 16, CAP_SYS_RAWIO: 17, CAP_SYS_CHROOT: 18, CAP_SYS_PTRACE: 19, CAP_SYS_PACCT: 20,
  CAP_SYS_ADMIN: 21, CAP_SYS_BOOT: 22, CAP_SYS_NICE: 23, CAP_SYS_RESOURCE: 24, CAP_SYS_TIME: 25,
  CAP_SYS_TTY_CONFIG: 26, CAP_MKNOD: 27, CAP_LEASE: 28, CAP_AUDIT_WRITE: 29, CAP_AUDIT_CONTROL: 30,
  CAP_SETFCAP: 31, CAP_MAC_OVERRIDE: 32, CAP_MAC_ADMIN: 33, CAP_SYSLOG: 34, CAP_WAKE_ALARM: 35,
  CAP_BLOCK_SUSPEND: 36, CAP_AUDIT_READ: 37, CAP_PERFMON: 38, CAP_BPF: 39, CAP_CHECKPOINT_RESTORE: 40,
});

/** Common ioctl requests (terminal, generic file, block, sockets). */
const IOCTLS = xlat({
  TCGETS: 0x5401, TCSETS: 0x5402, TCSETSW: 0x5403, TCSETSF: 0x5404, TCGETA: 0x5405, TCSETA: 0x5406,
  TCSETAW: 0x5407, TCSETAF: 0x5408, TCSBRK: 0x5409, TCXONC: 0x540a, TCFLSH: 0x540b, TIOCEXCL: 0x540c,
  TIOCNXCL: 0x540d, TIOCSCTTY: 0x540e, TIOCGPGRP: 0x540f, TIOCSPGRP: 0x5410, TIOCOUTQ: 0x5411,
  TIOCSTI: 0x5412, TIOCGWINSZ: 0x5413, TIOCSWINSZ: 0x5414, TIOCMGET: 0x5415, TIOCMBIS: 0x5416,
  TIOCMBIC: 0x5417, TIOCMSET: 0x5418, TIOCGSOFTCAR: 0x5419, TIOCSSOFTCAR: 0x541a, FIONREAD: 0x541b,
  TIOCLINUX: 0x541c, TIOCCONS: 0x541d, TIOCGSERIAL: 0x541e, TIOCSSERIAL: 0x541f, TIOCPKT: 0x5420,
  FIONBIO: 0x5421, TIOCNOTTY: 0x5422, TIOCSETD: 0x5423, TIOCGETD: 0x5424, TCSBRKP: 0x5425,
  TIOCSBRK: 0x5427, TIOCCBRK: 0x5428, TIOCGSID: 0x5429, TCGETS2: 0x802c542a, TCSETS2: 0x402c542b,
  TIOCGPTN: 0x80045430, TIOCSPTLCK: 0x40045431, TIOCGDEV: 0x80045432, TIOCSIG: 0x40045436,
  TIOCVHANGUP: 0x5437, TIOCGPKT: 0x80045438, TIOCGPTLCK: 0x80045439, TIOCGEXCL: 0x80045440,
  TIOCGPTPEER: 0x5441, FIONCLEX: 0x5450, FIOCLEX: 0x5451, FIOASYNC: 0x5452, TIOCSERCONFIG: 0x5453,
  TIOCSERGETLSR: 0x5459, TIOCMIWAIT: 0x545c, TIOCGICOUNT: 0x545d, FIOQSIZE: 0x5460,
  FIOSETOWN: 0x8901, SIOCSPGRP: 0x8902, FIOGETOWN: 0x8903, SIOCGPGRP: 0x8904, SIOCATMARK: 0x8905,
  SIOCGSTAMP_OLD: 0x8906, SIOCGIFNAME: 0x8910, SIOCGIFCONF: 0x8912, SIOCGIFFLAGS: 0x8913,
  SIOCSIFFLAGS: 0x8914, SIOCGIFADDR: 0x8915, SIOCGIFMTU: 0x8921, SIOCGIFHWADDR: 0x8927,
  SIOCGIFINDEX: 0x8933, SIOCETHTOOL: 0x8946,
  BLKROSET: 0x125d, BLKROGET: 0x125e, BLKGETSIZE: 0x1260, BLKFLSBUF: 0x1261, BLKSSZGET: 0x1268,
  BLKBSZGET: 0x80081270, BLKGETSIZE64: 0x80081272, FIBMAP: 0x1, FIGETBSZ: 0x2,
  FS_IOC_GETFLAGS: 0x80086601, FS_IOC_SETFLAGS: 0x40086602, FS_IOC_GETVERSION: 0x80087601,
  FS_IOC_FIEMAP: 0xc020660b, FICLONE: 0x40049409, FICLONERANGE: 0x4020940d, FIDEDUPERANGE: 0xc0189436,
  FIFREEZE: 0xc0045877, FITHAW: 0xc0045878, FITRIM: 0xc0185879,
  RNDGETENTCNT: 0x80045200, NS_GET_USERNS: 0xb701, NS_GET_PARENT: 0xb702, NS_GET_NSTYPE: 0xb703,
});

const IOC_DIRS = ['_IOC_NONE', '_IOC_WRITE', '_IOC_READ', '_IOC_READ|_IOC_WRITE'] as const;

/**
 * An ioctl request: its name when known, else decoded as
 * `_IOC(dir, type, nr, size)` like strace.
 *
 * @example
 * ```ts
 * formatIoctlRequest(0x5401n);     // 'TCGETS'
 * formatIoctlRequest(0x12345678n); // '_IOC(_IOC_NONE, 0x56, 0x78, 0x1234)'
 * ```
 */
export function formatIoctlRequest(v: bigint): string {
  const u = BigInt.asUintN(32, v);
  const name = lookup(u, IOCTLS);
  if (name) return name;
  const dir = Number((u >> 30n) & 3n);
  const size = (u >> 16n) & 0x3fffn;
  return `_IOC(${IOC_DIRS[dir]}, ${hex((u >> 8n) & 0xffn)}, ${hex(u & 0xffn)}, ${hex(size)})`;
}

/**
 * Filesystem magic numbers (statfs f_type).
 *
 * @example
 * ```ts
 * lookup(0xef53n, FS_MAGIC); // 'EXT2_SUPER_MAGIC'
 * ```
 */
export const FS_MAGIC = xlat({
  EXT2_SUPER_MAGIC: 0xef53, TMPFS_MAGIC: 0x01021994, PROC_SUPER_MAGIC: 0x9fa0, SYSFS_MAGIC: 0x62656572,
  DEVPTS_SUPER_MAGIC: 0x1cd1, OVERLAYFS_SUPER_MAGIC: 0x794c7630, BTRFS_SUPER_MAGIC: 0x9123683e,
  XFS_SUPER_MAGIC: 0x58465342, CGROUP2_SUPER_MAGIC: 0x63677270, CGROUP_SUPER_MAGIC: 0x27e0eb,
  NFS_SUPER_MAGIC: 0x6969, SQUASHFS_MAGIC: 0x73717368, FUSE_SUPER_MAGIC: 0x65735546, V9FS_MAGIC: 0x01021997,
  RAMFS_MAGIC: 0x858458f6, DEBUGFS_MAGIC: 0x64626720, SECURITYFS_MAGIC: 0x73636673,
  SELINUX_MAGIC: 0xf97cff8c, HUGETLBFS_MAGIC: 0x958458f6, MQUEUE_MAGIC: 0x19800202, BPF_FS_MAGIC: 0xcafe4a11,
  TRACEFS_MAGIC: 0x74726163, PIPEFS_MAGIC: 0x50495045, SOCKFS_MAGIC: 0x534f434b, ANON_INODE_FS_MAGIC: 0x09041934,
  NSFS_MAGIC: 0x6e736673, ISOFS_SUPER_MAGIC: 0x9660, MSDOS_SUPER_MAGIC: 0x4d44, EXFAT_SUPER_MAGIC: 0x2011bab0,
  F2FS_SUPER_MAGIC: 0xf2f52010, ZFS_SUPER_MAGIC: 0x2fc12fc1, CIFS_MAGIC_NUMBER: 0xff534d42,
  SMB2_MAGIC_NUMBER: 0xfe534d42, CODA_SUPER_MAGIC: 0x73757245, AUTOFS_SUPER_MAGIC: 0x0187,
  EFIVARFS_MAGIC: 0xde5e81e4, CONFIGFS_MAGIC: 0x62656570, PSTOREFS_MAGIC: 0x6165676c,
  BINFMTFS_MAGIC: 0x42494e4d, DEVTMPFS_MAGIC: 0x01021994, EROFS_SUPER_MAGIC_V1: 0xe0f5e1e2,
});
/**
 * statfs f_flags.
 *
 * @example
 * ```ts
 * formatFlags(0x1020n, ST_FLAGS); // 'ST_VALID|ST_RELATIME'
 * ```
 */
export const ST_FLAGS = xlat({
  ST_RDONLY: 1, ST_NOSUID: 2, ST_NODEV: 4, ST_NOEXEC: 8, ST_SYNCHRONOUS: 16, ST_VALID: 0x20,
  ST_MANDLOCK: 64, ST_NOATIME: 1024, ST_NODIRATIME: 2048, ST_RELATIME: 4096, ST_NOSYMFOLLOW: 0x2000,
});

/**
 * File types (st_mode & S_IFMT).
 *
 * @example
 * ```ts
 * lookup(0o100000n, S_IFMT); // 'S_IFREG'
 * ```
 */
export const S_IFMT = xlat({
  S_IFSOCK: 0o140000, S_IFLNK: 0o120000, S_IFREG: 0o100000, S_IFBLK: 0o060000, S_IFDIR: 0o040000,
  S_IFCHR: 0o020000, S_IFIFO: 0o010000,
});
/** setuid / setgid / sticky bits. */
const S_ISBITS = xlat({ S_ISUID: 0o4000, S_ISGID: 0o2000, S_ISVTX: 0o1000 });


/**
 * A file mode as in a stat result: type, special bits, then permissions
 * (`S_IFREG|0644`).
 *
 * @example
 * ```ts
 * formatStatMode(0o100644n);  // 'S_IFREG|0644'
 * formatStatMode(0o41777n);   // 'S_IFDIR|S_ISVTX|0777'
 * ```
 */
export function formatStatMode(v: bigint): string {
  const u = BigInt.asUintN(32, v);
  const parts: string[] = [];
  const type = lookup(u & 0o170000n, S_IFMT);
  if (type) parts.push(type);
  else if (u & 0o170000n) parts.push(octal(u & 0o170000n));
  for (const [bits, name] of S_ISBITS) if (u & bits) parts.push(name);
  parts.push(octal(u & 0o777n));
  return parts.join('|');
}

/**
 * epoll_ctl(2) operations.
 *
 * @example
 * ```ts
 * formatEnum(1n, EPOLL_CTL, 'EPOLL_CTL_'); // 'EPOLL_CTL_ADD'
 * ```
 */
export const EPOLL_CTL = xlat({ EPOLL_CTL_ADD: 1, EPOLL_CTL_DEL: 2, EPOLL_CTL_MOD: 3 });
/**
 * epoll event bits.
 *
 * @example
 * ```ts
 * formatFlags(0x80000001n, EPOLL_EVENTS); // 'EPOLLIN|EPOLLET'
 * ```
 */
export const EPOLL_EVENTS = xlat({
  EPOLLIN: 0x1, EPOLLPRI: 0x2, EPOLLOUT: 0x4, EPOLLERR: 0x8, EPOLLHUP: 0x10, EPOLLNVAL: 0x20,
  EPOLLRDNORM: 0x40, EPOLLRDBAND: 0x80, EPOLLWRNORM: 0x100, EPOLLWRBAND: 0x200, EPOLLMSG: 0x400,
  EPOLLRDHUP: 0x2000, EPOLLEXCLUSIVE: 0x10000000, EPOLLWAKEUP: 0x20000000, EPOLLONESHOT: 0x40000000,
  EPOLLET: 0x80000000,
});
/**
 * epoll_create1(2) flags.
 *
 * @example
 * ```ts
 * formatFlags(0x80000n, EPOLL_CREATE_FLAGS); // 'EPOLL_CLOEXEC'
 * ```
 */
export const EPOLL_CREATE_FLAGS = xlat({ EPOLL_CLOEXEC: 0x80000 });
/**
 * eventfd2(2) flags.
 *
 * @example
 * ```ts
 * formatFlags(0x80001n, EFD_FLAGS); // 'EFD_SEMAPHORE|EFD_CLOEXEC'
 * ```
 */
export const EFD_FLAGS = xlat({ EFD_SEMAPHORE: 1, EFD_CLOEXEC: 0x80000, EFD_NONBLOCK: 0x800 });
/**
 * signalfd4(2) flags.
 *
 * @example
 * ```ts
 * formatFlags(0x80800n, SFD_FLAGS); // 'SFD_CLOEXEC|SFD_NONBLOCK'
 * ```
 */
export const SFD_FLAGS = xlat({ SFD_CLOEXEC: 0x80000, SFD_NONBLOCK: 0x800 });
/**
 * timerfd_create(2) / timerfd_settime(2) flags.
 *
 * @example
 * ```ts
 * formatFlags(0x80000n, TFD_FLAGS); // 'TFD_CLOEXEC'
 * ```
 */
export const TFD_FLAGS = xlat({ TFD_TIMER_ABSTIME: 1, TFD_TIMER_CANCEL_ON_SET: 2, TFD_CLOEXEC: 0x80000, TFD_NONBLOCK: 0x800 });
/**
 * inotify_init1(2) flags.
 *
 * @example
 * ```ts
 * formatFlags(0x80800n, IN_INIT_FLAGS); // 'IN_NONBLOCK|IN_CLOEXEC'
 * ```
 */
export const IN_INIT_FLAGS = xlat({ IN_NONBLOCK: 0x800, IN_CLOEXEC: 0x80000 });
/**
 * memfd_create(2) flags.
 *
 * @example
 * ```ts
 * formatFlags(3n, MFD_FLAGS); // 'MFD_CLOEXEC|MFD_ALLOW_SEALING'
 * ```
 */
export const MFD_FLAGS = xlat({ MFD_CLOEXEC: 1, MFD_ALLOW_SEALING: 2, MFD_HUGETLB: 4, MFD_NOEXEC_SEAL: 8, MFD_EXEC: 0x10 });
/**
 * renameat2(2) flags.
 *
 * @example
 * ```ts
 * formatFlags(1n, RENAME_FLAGS); // 'RENAME_NOREPLACE'
 * ```
 */
export const RENAME_FLAGS = xlat({ RENAME_NOREPLACE: 1, RENAME_EXCHANGE: 2, RENAME_WHITEOUT: 4 });
/**
 * close_range(2) flags.
 *
 * @example
 * ```ts
 * formatFlags(4n, CLOSE_RANGE_FLAGS); // 'CLOSE_RANGE_CLOEXEC'
 * ```
 */
export const CLOSE_RANGE_FLAGS = xlat({ CLOSE_RANGE_UNSHARE: 2, CLOSE_RANGE_CLOEXEC: 4 });
/**
 * membarrier(2) commands.
 *
 * @example
 * ```ts
 * formatEnum(0n, MEMBARRIER_CMD); // 'MEMBARRIER_CMD_QUERY'
 * ```
 */
export const MEMBARRIER_CMD = xlat({
  MEMBARRIER_CMD_QUERY: 0, MEMBARRIER_CMD_GLOBAL: 1, MEMBARRIER_CMD_GLOBAL_EXPEDITED: 2,
  MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED: 4, MEMBARRIER_CMD_PRIVATE_EXPEDITED: 8,
  MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: 16, MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE: 32,
  MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE: 64, MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ: 128,
  MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ: 256,
});
