import { errnoName as errnoNameOf } from './abi/linux.js';

/**
 * Errors of the runtime. Every failure that reaches a user is a SystrapError with a stable
 * `code`; where a host call failed it also carries `errno` (negative, as Node's SystemError) and
 * `syscall`. Factories live in {@link Errors} so that codes and messages stay in one place.
 */

/** Stable error codes. Host errno names ('EPERM', 'ESRCH', …) are used as codes too. */
export type SystrapErrorCode =
  | 'ESTUBDEAD'
  | 'ECORRUPT'
  | 'ERELEASED'
  | 'ECLOSED'
  | 'EINVALIDARG'
  | 'ENOMEMFILE'
  | 'EPROTOCOL'
  | 'EFAULTED'
  | 'ETIMEDOUT'
  | (string & {});

/** Fields a SystrapError may carry besides its message. */
export interface SystrapErrorFields {
  errno?: number;
  syscall?: string;
  pid?: number;
  cause?: unknown;
}

/**
 * The one error class of systrap, shaped like Node's SystemError.
 *
 * @example
 * ```ts
 * try { await as.syscall(SYS.getpid); }
 * catch (e) { if (e instanceof SystrapError && e.code === 'ESTUBDEAD') recreate(); }
 * ```
 */
export class SystrapError extends Error {
  readonly code: SystrapErrorCode;
  readonly errno?: number;
  readonly syscall?: string;
  readonly pid?: number;

  constructor(code: SystrapErrorCode, message: string, fields: SystrapErrorFields = {}) {
    super(`${code}: ${message}`, fields.cause !== undefined ? { cause: fields.cause } : undefined);
    this.name = 'SystrapError';
    this.code = code;
    if (fields.errno !== undefined) this.errno = fields.errno;
    if (fields.syscall !== undefined) this.syscall = fields.syscall;
    if (fields.pid !== undefined) this.pid = fields.pid;
  }

  /** A plain object that survives postMessage (Error subclasses lose their fields there). */
  toJSON(): SerializedError {
    return { code: this.code, message: this.message, errno: this.errno, syscall: this.syscall, pid: this.pid };
  }
}

/** The structured-clone-safe form of an error, sent from workers. */
export interface SerializedError {
  code: string;
  message: string;
  errno?: number;
  syscall?: string;
  pid?: number;
}

/**
 * Turns anything thrown (a native SystemError-shaped error, a SystrapError, a plain Error) into
 * its serialisable form.
 */
export function serializeError(e: unknown): SerializedError {
  if (e instanceof SystrapError) return e.toJSON();
  const o = e as { code?: unknown; message?: unknown; errno?: unknown; syscall?: unknown; pid?: unknown };
  return {
    code: typeof o?.code === 'string' ? o.code : 'EPROTOCOL',
    message: typeof o?.message === 'string' ? o.message : String(e),
    errno: typeof o?.errno === 'number' ? o.errno : undefined,
    syscall: typeof o?.syscall === 'string' ? o.syscall : undefined,
    pid: typeof o?.pid === 'number' ? o.pid : undefined,
  };
}

/** Rebuilds a SystrapError from its serialised form (message kept as sent). */
export function deserializeError(s: SerializedError): SystrapError {
  const err = new SystrapError(s.code, '', { errno: s.errno, syscall: s.syscall, pid: s.pid });
  err.message = s.message.startsWith(`${s.code}:`) ? s.message : `${s.code}: ${s.message}`;
  return err;
}

/** Converts any thrown value into a SystrapError (native errors keep code/errno/syscall). */
export function toSystrapError(e: unknown): SystrapError {
  return e instanceof SystrapError ? e : deserializeError(serializeError(e));
}

/** Factories for every error the runtime raises itself. */
export const Errors = {
  StubDead: (pid: number, detail: string) =>
    new SystrapError('ESTUBDEAD', `stub process ${pid} died (${detail})`, { pid }),
  Released: (what: string) => new SystrapError('ERELEASED', `${what} was released`),
  Closed: () => new SystrapError('ECLOSED', 'the platform is closed'),
  InvalidArg: (message: string) => new SystrapError('EINVALIDARG', message),
  MemoryFileFull: (length: number) =>
    new SystrapError('ENOMEMFILE', `memory file cannot hold ${length} more bytes`),
  Protocol: (message: string, pid?: number) => new SystrapError('EPROTOCOL', message, { pid }),
  Faulted: (pid: number, why: string) => new SystrapError('EFAULTED', `subprocess ${pid} is faulted: ${why}`, { pid }),
  Timeout: (message: string) => new SystrapError('ETIMEDOUT', message),
  Syscall: (name: string, errno: number, pid?: number) =>
    new SystrapError(errnoNameOf(errno), `${name} failed in the stub`, { errno: -errno, syscall: name, pid }),
  /** The stub answered a call with a value the call cannot return (its reply page was forged). */
  ForgedReply: (name: string, got: bigint, expected: string, pid?: number) =>
    new SystrapError('EPROTOCOL', `${name} in stub ${pid ?? '?'} answered 0x${BigInt.asUintN(64, got).toString(16)}, expected ${expected}`, { syscall: name, pid }),
} as const;

/** The largest errno a raw syscall result can encode: -4095..-1 are errors. */
const MAX_ERRNO = 4095n;

/**
 * Checks a stub's raw answer to a call that has one legitimate success value (`expect`), or any
 * non-negative value (`'nonneg'`): a failure becomes the errno's SystrapError, anything else
 * the call cannot return becomes EPROTOCOL (the stub's reply memory is the program's to
 * scribble on: a forged value must never pass for an errno or a success). gVisor's rule: the
 * syscall thread is trusted only for calls with a single legitimate result.
 *
 * @example
 * ```ts
 * checkStubReply(await sp.syscall(SYS.mmap, args), { syscall: 'mmap', expect: addr, pid: sp.pid });
 * ```
 */
export function checkStubReply(ret: bigint, c: { syscall: string; expect: bigint | 'nonneg'; pid?: number }): bigint {
  if (ret < 0n && ret >= -MAX_ERRNO) throw Errors.Syscall(c.syscall, Number(-ret), c.pid);
  if (c.expect === 'nonneg' ? ret >= 0n : ret === c.expect) return ret;
  throw Errors.ForgedReply(c.syscall, ret, c.expect === 'nonneg' ? 'a non-negative value' : `0x${c.expect.toString(16)}`, c.pid);
}

