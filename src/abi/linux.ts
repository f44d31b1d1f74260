import { constants } from 'node:os';

/** Signal numbers (Linux x86-64). */
export const SIG = {
  SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGILL: 4, SIGTRAP: 5, SIGABRT: 6, SIGBUS: 7, SIGFPE: 8,
  SIGKILL: 9, SIGUSR1: 10, SIGSEGV: 11, SIGUSR2: 12, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15,
  SIGCHLD: 17, SIGCONT: 18, SIGSTOP: 19, SIGTSTP: 20, SIGXCPU: 24, SIGXFSZ: 25, SIGSYS: 31,
} as const;

/** mmap(2) protections and flags. */
export const PROT_NONE = 0n;
export const PROT_READ = 1n;
export const PROT_WRITE = 2n;
export const PROT_EXEC = 4n;
export const MAP_SHARED = 0x1n;
export const MAP_PRIVATE = 0x2n;
export const MAP_FIXED = 0x10n;
export const MAP_ANONYMOUS = 0x20n;
export const MAP_POPULATE = 0x8000n;

/** clone(2) flags used to create stubs and sysmsg threads. */
export const CLONE_VM = 0x100n;
export const CLONE_FS = 0x200n;
export const CLONE_FILES = 0x400n;
export const CLONE_PTRACE = 0x2000n;
export const CLONE_PARENT = 0x8000n;

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

/* exec: Linux ABI values the ELF loader (src/sentry/exec/) passes to or reads from the stub. */

/**
 * mmap(2) flag: map at exactly `addr`, failing with EEXIST instead of replacing what is there.
 *
 * @example
 * ```ts
 * await as.syscall(SYS.mmap, addr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1n, 0n);
 * ```
 */
export const MAP_FIXED_NOREPLACE = 0x100000n;

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
 * open(2) flag: close the fd across execve.
 *
 * @example
 * ```ts
 * await as.syscall(SYS.openat, AT_FDCWD, pathAddr, O_RDONLY | O_CLOEXEC, 0n);
 * ```
 */
export const O_CLOEXEC = 0x80000n;

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
