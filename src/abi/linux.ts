import { constants } from 'node:os';

/** Signal numbers (Linux x86-64). */
export const SIG = {
  SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGILL: 4, SIGTRAP: 5, SIGABRT: 6, SIGBUS: 7, SIGFPE: 8,
  SIGKILL: 9, SIGUSR1: 10, SIGSEGV: 11, SIGUSR2: 12, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15,
  SIGSTKFLT: 16, SIGCHLD: 17, SIGCONT: 18, SIGSTOP: 19, SIGTSTP: 20, SIGTTIN: 21, SIGTTOU: 22, SIGURG: 23,
  SIGXCPU: 24, SIGXFSZ: 25, SIGVTALRM: 26, SIGPROF: 27, SIGWINCH: 28, SIGIO: 29, SIGPWR: 30, SIGSYS: 31,
} as const;

/** Highest signal number (real-time signals included). */
export const NSIG = 64;

/** siginfo si_code values the sentry writes (asm-generic/siginfo.h). */
export const SI_USER = 0;
export const SI_TKILL = -6;
/** SIGCHLD si_code values (what happened to the child). */
export const CLD = { EXITED: 1, KILLED: 2, DUMPED: 3, TRAPPED: 4, STOPPED: 5, CONTINUED: 6 } as const;

/** wait4/waitid options and waitid's idtype (linux/wait.h). */
export const WAIT = {
  WNOHANG: 1n, WUNTRACED: 2n, WSTOPPED: 2n, WEXITED: 4n, WCONTINUED: 8n, WNOWAIT: 0x01000000n,
  __WNOTHREAD: 0x20000000n, __WALL: 0x40000000n, __WCLONE: 0x80000000n,
} as const;
export const P_ALL = 0n;
export const P_PID = 1n;
export const P_PGID = 2n;
export const P_PIDFD = 3n;

/** mmap(2) protections and flags. */
export const PROT_NONE = 0n;
export const PROT_READ = 1n;
export const PROT_WRITE = 2n;
export const PROT_EXEC = 4n;
export const MAP_SHARED = 0x1n;
/** memfd_create flags. */
export const MFD_CLOEXEC = 0x1n;
export const MFD_ALLOW_SEALING = 0x2n;
export const MAP_PRIVATE = 0x2n;
export const MAP_FIXED = 0x10n;
export const MAP_ANONYMOUS = 0x20n;
export const MAP_POPULATE = 0x8000n;
export const MAP_NORESERVE = 0x4000n;

/** clone(2) flags (stubs, sysmsg threads, and the program's own clone calls). */
export const CLONE_VM = 0x100n;
export const CLONE_FS = 0x200n;
export const CLONE_FILES = 0x400n;
export const CLONE_SIGHAND = 0x800n;
export const CLONE_PTRACE = 0x2000n;
export const CLONE_VFORK = 0x4000n;
export const CLONE_PARENT = 0x8000n;
export const CLONE_THREAD = 0x10000n;
export const CLONE_SYSVSEM = 0x40000n;
export const CLONE_SETTLS = 0x80000n;
export const CLONE_PARENT_SETTID = 0x100000n;
export const CLONE_CHILD_CLEARTID = 0x200000n;
export const CLONE_CHILD_SETTID = 0x1000000n;
/** The exit signal in clone's flags (its low byte). */
export const CSIGNAL = 0xffn;
/** New namespaces: a program has no capability for them (EPERM, as for an unprivileged caller). */
export const CLONE_NEWNAMESPACES = 0x20000n | 0x2000000n | 0x4000000n | 0x8000000n | 0x10000000n | 0x20000000n | 0x40000000n;
export const CLONE_PIDFD = 0x1000n;

/** arch_prctl(2) codes. */
export const ARCH_SET_GS = 0x1001n;
export const ARCH_SET_FS = 0x1002n;
export const ARCH_GET_FS = 0x1003n;

/** futex(2) operations and flags (linux/futex.h). */
export const FUTEX = {
  WAIT: 0, WAKE: 1, REQUEUE: 3, CMP_REQUEUE: 4, WAKE_OP: 5, WAIT_BITSET: 9, WAKE_BITSET: 10,
  /** The operation's low bits (FUTEX_CMD_MASK without PRIVATE and CLOCK_REALTIME). */
  CMD_MASK: 0x7fn,
  PRIVATE_FLAG: 128n,
  CLOCK_REALTIME: 256n,
  BITSET_MATCH_ANY: 0xffffffff,
} as const;

/** Clocks of clock_nanosleep(2) and its flag. */
export const CLOCK_REALTIME = 0;
export const CLOCK_MONOTONIC = 1;
export const CLOCK_BOOTTIME = 7;
export const TIMER_ABSTIME = 1n;

/** prctl(2) options and seccomp(2) operations. */
export const PR_SET_PDEATHSIG = 1n;
export const PR_SET_NO_NEW_PRIVS = 38n;
export const SECCOMP_SET_MODE_FILTER = 1n;

/** Page size on x86-64. */
export const PAGE_SIZE = 4096;

/** Largest errno value a raw syscall return can encode (-4095..-1 are errors). */
export const MAX_ERRNO = 4095n;

/**
 * The errno name of a positive errno number ('ENOENT'), from Node's own table.
 *
 * @example
 * ```ts
 * errnoName(2); // 'ENOENT'
 * ```
 */
export function errnoName(errno: number): string {
  for (const [name, value] of Object.entries(constants.errno)) if (value === errno) return name;
  return `E${errno}`;
}

/** errno values the runtime and the sentry return or test for (asm-generic/errno-base.h). */
export const ERRNO = {
  EPERM: 1, ENOENT: 2, ESRCH: 3, EINTR: 4, EIO: 5, E2BIG: 7, ENOEXEC: 8, EBADF: 9, ECHILD: 10, EAGAIN: 11,
  ENOMEM: 12, EACCES: 13, EFAULT: 14, EEXIST: 17, EINVAL: 22, EMFILE: 24, ENOTTY: 25, ENOSYS: 38, EOPNOTSUPP: 95, ETIMEDOUT: 110,
  /** Kernel-internal: the call is restarted when the signal's handler has SA_RESTART. */
  ERESTARTSYS: 512,
  /** Kernel-internal: EINTR when a handler runs, restarted otherwise (pause, sigsuspend, an absolute sleep). */
  ERESTARTNOHAND: 514,
  /** Kernel-internal: EINTR when a handler runs, else resumed for the time left (a relative sleep, a timed futex wait). */
  ERESTART_RESTARTBLOCK: 516,
} as const;

/** fcntl(2) commands and file status flags used on the program's stdio. */
export const F_GETFL = 3n;
export const F_SETFL = 4n;
export const O_NONBLOCK = 0o4000n;
/** open(2)'s close-on-exec flag; /proc/PID/fdinfo shows it (in octal) in an fd's `flags:`. */
export const O_CLOEXEC = 0x80000n;

/** prctl(2) option naming the calling thread (/proc/PID/comm), 15 bytes and a NUL. */
export const PR_SET_NAME = 15n;
export const TASK_COMM_LEN = 16;

/** mmap(2): map only where nothing is mapped yet (EEXIST otherwise). */
export const MAP_FIXED_NOREPLACE = 0x100000n;

/** sigaction(2) handlers and flags (asm/signal.h), sigaltstack(2) flags. */
export const SIG_DFL = 0n;
export const SIG_IGN = 1n;
export const SA_NOCLDSTOP = 0x1n;
export const SA_NOCLDWAIT = 0x2n;
export const SA_SIGINFO = 0x4n;
export const SA_ONSTACK = 0x08000000n;
export const SA_RESTORER = 0x04000000n;
export const SA_RESTART = 0x10000000n;
/** sizeof(siginfo_t). */
export const SIGINFO_SIZE = 128;
export const SA_NODEFER = 0x40000000n;
export const SA_RESETHAND = 0x80000000n;
export const SS_ONSTACK = 1;
export const SS_DISABLE = 2;

/**
 * A kernel sigset (u64) holding these signals: bit signo-1 each.
 *
 * @example
 * ```ts
 * sigset(SIG.SIGSYS, SIG.SIGCHLD); // 0x40010000n
 * ```
 */
export function sigset(...signos: number[]): bigint {
  let s = 0n;
  for (const n of signos) s |= 1n << BigInt(n - 1);
  return s;
}
/* exec: Linux ABI values the ELF loader (src/sentry/exec/) passes to or reads from the stub. */

/**
 * The `dirfd` of the *at() calls meaning "relative to the current directory".
 *
 * @example
 * ```ts
 * await as.syscall(SYS.openat, AT_FDCWD, pathAddr, O_RDONLY | O_CLOEXEC, 0n);
 * ```
 */
export const AT_FDCWD = -100n;

/**
 * open(2) access mode: read only.
 *
 * @example
 * ```ts
 * await as.syscall(SYS.openat, AT_FDCWD, pathAddr, O_RDONLY, 0n);
 * ```
 */
export const O_RDONLY = 0n;

/**
 * access(2) mode: test for execute permission.
 *
 * @example
 * ```ts
 * const ok = (await as.syscall(SYS.faccessat, AT_FDCWD, pathAddr, X_OK)) === 0n;
 * ```
 */
export const X_OK = 1n;

/**
 * st_mode bits holding the file type.
 *
 * @example
 * ```ts
 * const regular = (mode & S_IFMT) === S_IFREG;
 * ```
 */
export const S_IFMT = 0o170000;

/**
 * st_mode file type of a regular file.
 *
 * @example
 * ```ts
 * if ((mode & S_IFMT) !== S_IFREG) throw new Error('not a regular file');
 * ```
 */
export const S_IFREG = 0o100000;

/**
 * Longest path the kernel accepts, terminating NUL included.
 *
 * @example
 * ```ts
 * if (Buffer.byteLength(path) + 1 > PATH_MAX) throw new Error('ENAMETOOLONG');
 * ```
 */
export const PATH_MAX = 4096;

/**
 * `struct stat` on x86-64 as fstat(2) writes it: its size, and the byte offsets of the two
 * fields the loader reads (st_mode is a u32, st_size an i64).
 *
 * @example
 * ```ts
 * const st = native.processVmReadv(pid, statAddr, STAT_LAYOUT.size);
 * const mode = st.readUInt32LE(STAT_LAYOUT.st_mode);
 * ```
 */
export const STAT_LAYOUT = { size: 144, st_mode: 24, st_size: 48 } as const;

/**
 * USER_HZ: the unit of clock_t values the kernel reports (times(2)), passed as AT_CLKTCK.
 *
 * @example
 * ```ts
 * const seconds = Number(ticks) / Number(USER_HZ);
 * ```
 */
export const USER_HZ = 100n;

/**
 * ELIBBAD ("accessing a corrupted shared library"), which execve returns for a broken
 * interpreter. Node's os.constants.errno does not list it.
 *
 * @example
 * ```ts
 * const err = -ELIBBAD; // what execve answers
 * ```
 */
export const ELIBBAD = 80;
