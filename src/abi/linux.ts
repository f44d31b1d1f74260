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
