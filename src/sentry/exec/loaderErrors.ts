import { constants } from 'node:os';
import { getSystemErrorMap } from 'node:util';
import { ELIBBAD } from '../../abi/linux.js';
import { SystrapError } from '../../errors.js';

/**
 * Errors of the ELF loader. They are SystrapErrors (same `code`/`errno` shape as Node's
 * SystemError) with codes of their own, one per way execve can refuse a program; `errno` is
 * what execve would have returned.
 *
 * | code | meaning | errno (what execve would return) |
 * |---|---|---|
 * | `ENOEXEC` | neither an ELF executable nor a '#!' script (truncated, relocatable, corrupt headers, bad '#!' line) | ENOEXEC |
 * | `EARCH` | an ELF file for another architecture (32-bit, big endian, not x86-64) | ENOEXEC |
 * | `ENOENT` | no such file (the program, or a script's '#!' interpreter) | ENOENT |
 * | `EACCES` | not a regular file, not executable, or on a noexec mount | EACCES |
 * | `EINTERP` | the program interpreter (PT_INTERP) cannot be loaded; `cause` says why | ENOENT if it is missing, else ELIBBAD |
 * | `ELOOP` | '#!' scripts nested deeper than execve follows them | ELOOP |
 * | `E2BIG` | arguments and environment do not fit in the stack | E2BIG |
 * | `ENOMEM` | the image does not fit below the stub region, or its place is taken | ENOMEM |
 *
 * @example
 * ```ts
 * const retryable = (code: LoaderErrorCode) => code === 'ENOMEM';
 * ```
 */
export type LoaderErrorCode = 'ENOEXEC' | 'EARCH' | 'ENOENT' | 'EACCES' | 'EINTERP' | 'ELOOP' | 'E2BIG' | 'ENOMEM';

/**
 * Fields a LoaderError may carry besides code and message.
 *
 * @example
 * ```ts
 * new LoaderError('ENOENT', 'no such file: /x', { path: '/x' } satisfies LoaderErrorFields);
 * ```
 */
export interface LoaderErrorFields {
  /** The file being loaded. */
  path?: string;
  /** Negative errno; defaults to the one execve would return for `code`. */
  errno?: number;
  /** The host syscall (run inside the stub) that failed, if one did. */
  syscall?: string;
  /** The stub's pid. */
  pid?: number;
  cause?: unknown;
}

// What execve(2) returns for each loader condition; EARCH is the kernel's ENOEXEC for a foreign
// ELF, EINTERP its ELIBBAD for a broken interpreter.
const ERRNO: Record<LoaderErrorCode, number> = {
  ENOEXEC: constants.errno.ENOEXEC,
  EARCH: constants.errno.ENOEXEC,
  ENOENT: constants.errno.ENOENT,
  EACCES: constants.errno.EACCES,
  EINTERP: ELIBBAD,
  ELOOP: constants.errno.ELOOP,
  E2BIG: constants.errno.E2BIG,
  ENOMEM: constants.errno.ENOMEM,
};

/** What an errno means, in libuv's words (Node's table of them), else the error's code. */
function errnoText(e: SystrapError): string {
  return (e.errno !== undefined ? getSystemErrorMap().get(-Math.abs(e.errno))?.[1] : undefined) ?? e.code;
}

/**
 * A failure to load a program. `message` is one line: `CODE: what, for which file`.
 *
 * @example
 * ```ts
 * try { await loadProgram(as, { path: '/etc/passwd', argv: ['passwd'], envp: [] }); }
 * catch (e) { if (e instanceof LoaderError && e.code === 'ENOEXEC') console.log(e.message); }
 * // ENOEXEC: /etc/passwd is not an ELF file
 * ```
 */
export class LoaderError extends SystrapError {
  declare readonly code: LoaderErrorCode;
  /** The file the loader was reading when it failed, if known. */
  readonly path?: string;

  /**
   * Preconditions: `message` is one line without the code prefix (the base class adds it).
   */
  constructor(code: LoaderErrorCode, message: string, fields: LoaderErrorFields = {}) {
    super(code, message, {
      errno: fields.errno ?? -ERRNO[code],
      syscall: fields.syscall,
      pid: fields.pid,
      cause: fields.cause,
    });
    this.name = 'LoaderError';
    if (fields.path !== undefined) this.path = fields.path;
  }
}

/**
 * Factories for every loader error, so that codes and wording stay in one place.
 *
 * @example
 * ```ts
 * throw LoaderErrors.NotElf('/etc/passwd');
 * ```
 */
export const LoaderErrors = {
  NotElf: (path: string, why = 'is not an ELF file') => new LoaderError('ENOEXEC', `${path} ${why}`, { path }),
  BadElf: (path: string, why: string) => new LoaderError('ENOEXEC', `${path}: malformed ELF: ${why}`, { path }),
  WrongArch: (path: string, what: string) =>
    new LoaderError('EARCH', `${path} is ${what}, not an x86-64 executable (wrong architecture)`, { path }),
  NoFile: (path: string, errno?: number) => new LoaderError('ENOENT', `no such file: ${path}`, { path, errno }),
  Access: (path: string, why: string, errno?: number, syscall?: string) =>
    new LoaderError('EACCES', `permission denied: ${path} ${why}`, { path, errno, syscall }),
  Interp: (interp: string, program: string, cause: SystrapError) =>
    new LoaderError('EINTERP', `cannot load interpreter ${interp} of ${program}: ${cause.message}`, {
      path: interp,
      // A missing interpreter reads as ENOENT from execve; everything else as ELIBBAD.
      errno: cause.code === 'ENOENT' ? cause.errno : undefined,
      cause,
    }),
  BadScript: (path: string, why: string) => new LoaderError('ENOEXEC', `${path}: bad '#!' line: ${why}`, { path }),
  // execve fails with the interpreter's own error (ENOENT, EACCES…): keep its code and errno.
  // The name is quoted: a stray '\r' from a CRLF line is the usual reason it is not found.
  ScriptInterp: (interp: string, script: string, cause: LoaderError) =>
    new LoaderError(cause.code, `bad '#!' interpreter ${JSON.stringify(interp)} of ${script}: ${errnoText(cause)}`, {
      path: interp,
      errno: cause.errno,
      cause,
    }),
  TooDeep: (path: string, scripts: number) =>
    new LoaderError('ELOOP', `${path}: ${scripts} '#!' scripts in a row, more than execve follows`, { path }),
  TooBig: (bytes: number, limit: number) =>
    new LoaderError('E2BIG', `arguments, environment and auxv need ${bytes} bytes of stack, more than ${limit}`),
  NoRoom: (path: string, why: string) => new LoaderError('ENOMEM', `cannot place ${path}: ${why}`, { path }),
} as const;
