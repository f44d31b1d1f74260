/**
 * What a per-syscall decoder is made of: one formatter per argument
 * register (fd, path, flags from a table, an output buffer...), combined
 * with {@link sig}. Most decoders are a single `sig(...)` line.
 *
 * @module
 */

import type { DecodeContext } from '../context.js';
import { arg } from '../context.js';
import { dirfd, hex, int, long, octal, ptr, uint, ulong } from '../scalars.js';
import { formatSigsetAt, signalName } from '../signals.js';
import { formatBuffer, formatCString } from '../strings.js';
import type { Xlat } from '../xlat.js';
import { formatEnum, formatFlags } from '../xlat.js';

/**
 * Prints one argument register.
 *
 * @example
 * ```ts
 * const fd: ArgFormatter = (v) => BigInt.asIntN(32, v).toString();
 * ```
 */
export type ArgFormatter = (v: bigint, c: DecodeContext) => string;

/**
 * A syscall's decoder.
 *
 * @example
 * ```ts
 * const close: SyscallDecoder = sig(FD); // close(3)
 * ```
 */
export interface SyscallDecoder {
  /** The printed arguments, in order (without the parentheses). */
  args(c: DecodeContext): string[];
  /**
   * The first argument strace prints only when the call returns (an output), or -1 when all
   * are printed at its entry: where a line cut by another process's splits (`read(3, ` then
   * `<... read resumed>"…", 10) = 10`). Undefined: not known, all at entry.
   */
  firstOut?: number;
  /** The text after `= ` for a successful return (default: signed decimal). */
  ret?(c: DecodeContext, ret: bigint): string;
}

/**
 * Decoders by syscall name.
 *
 * @example
 * ```ts
 * const table: DecoderTable = { close: sig(FD), dup2: sig(FD, FD) };
 * ```
 */
export type DecoderTable = Readonly<Record<string, SyscallDecoder>>;

/**
 * PATH_MAX: paths are printed whole up to this, not cut at `-s`.
 *
 * @example
 * ```ts
 * formatCString(mem, addr, PATH_MAX); // a whole path, not cut at -s
 * ```
 */
export const PATH_MAX = 4096;

/**
 * A decoder printing argument i with formatter i.
 *
 * @example
 * ```ts
 * const lseek = sig(FD, L, enumOf(WHENCE, 'SEEK_')); // lseek(3, 0, SEEK_SET)
 * ```
 */
export function sig(...fmts: ArgFormatter[]): SyscallDecoder {
  return { args: (c) => fmts.map((f, i) => f(arg(c, i), c)), firstOut: fmts.findIndex((f) => OUTPUTS.has(f)) };
}

/** The formatters made by {@link out}: arguments printed when the call returns. */
const OUTPUTS = new WeakSet<ArgFormatter>();

/**
 * {@link sig} with a return formatter.
 *
 * @example
 * ```ts
 * const brk = sigRet(retHex, P); // brk(NULL) = 0x55d0c0000000
 * ```
 */
export function sigRet(ret: (c: DecodeContext, r: bigint) => string, ...fmts: ArgFormatter[]): SyscallDecoder {
  return { ...sig(...fmts), ret };
}

/**
 * A C `int` argument in decimal (fds, pids).
 *
 * @example
 * ```ts
 * I(0xffffffffn, c); // '-1'
 * ```
 */
export const I: ArgFormatter = (v) => int(v);
/**
 * A C `unsigned int` argument in decimal.
 *
 * @example
 * ```ts
 * U(0xffffffffn, c); // '4294967295'
 * ```
 */
export const U: ArgFormatter = (v) => uint(v);
/**
 * A C `long` / `off_t` argument in decimal.
 *
 * @example
 * ```ts
 * L(-5n, c); // '-5'
 * ```
 */
export const L: ArgFormatter = (v) => long(v);
/**
 * A `size_t` argument in decimal.
 *
 * @example
 * ```ts
 * UL(8192n, c); // '8192'
 * ```
 */
export const UL: ArgFormatter = (v) => ulong(v);
/**
 * An argument in hex (`%#lx`), as strace prints undecoded ones.
 *
 * @example
 * ```ts
 * X(0x20n, c); // '0x20'
 * ```
 */
export const X: ArgFormatter = (v) => hex(v);
/**
 * A pointer argument: `NULL` or hex.
 *
 * @example
 * ```ts
 * P(0n, c); // 'NULL'
 * ```
 */
export const P: ArgFormatter = (v) => ptr(v);
/**
 * A file descriptor.
 *
 * @example
 * ```ts
 * FD(3n, c); // '3', or '3</etc/passwd>' with -y
 * ```
 */
export const FD: ArgFormatter = (v, c) => withPath(BigInt.asIntN(32, v).toString(), Number(BigInt.asIntN(32, v)), c);
/**
 * A directory fd of the `*at()` calls (`AT_FDCWD`).
 *
 * @example
 * ```ts
 * DFD(-100n, c); // 'AT_FDCWD', or 'AT_FDCWD</home/me>' with -y
 * ```
 */
export const DFD: ArgFormatter = (v, c) => withPath(dirfd(v), Number(BigInt.asIntN(32, v)), c);

/** `-y`: `text<path>` when the fd names something, else `text`. */
function withPath(text: string, fd: number, c: DecodeContext): string {
  const path = c.fdPath?.(fd);
  return path === undefined ? text : `${text}<${path}>`;
}
/**
 * A signal number (`SIGKILL`, `0`).
 *
 * @example
 * ```ts
 * SIG(9n, c); // 'SIGKILL'
 * ```
 */
export const SIG: ArgFormatter = (v) => signalName(v);
/**
 * A file mode in octal (`0644`).
 *
 * @example
 * ```ts
 * MODE(0o644n, c); // '0644'
 * ```
 */
export const MODE: ArgFormatter = (v) => octal(BigInt.asUintN(32, v));
/**
 * A path: whole (up to PATH_MAX), NULL, or the address when unreadable.
 *
 * @example
 * ```ts
 * PATH(addr, c); // '"/etc/passwd"'
 * ```
 */
export const PATH: ArgFormatter = (v, c) => formatCString(c.mem, v, PATH_MAX);
/**
 * A NUL-terminated string cut at `-s`.
 *
 * @example
 * ```ts
 * STR(addr, c); // '"a very long argument that is lon"...'
 * ```
 */
export const STR: ArgFormatter = (v, c) => formatCString(c.mem, v, c.strlen);

/**
 * A sigset_t pointer whose size in bytes is argument `sizeArg`: shown when that is the kernel's
 * 8 bytes (or, with `minSize`, between it and 8: rt_sigpending), as its address otherwise.
 *
 * @example
 * ```ts
 * sigset(3)(addr, c); // rt_sigprocmask's set: '[INT TERM]'
 * ```
 */
export function sigset(sizeArg: number, minSize?: number): ArgFormatter {
  return (v, c) => formatSigsetAt(c.mem, v, Number(arg(c, sizeArg)), minSize);
}

/**
 * A bit set from `table` (`zero` when no bit is set), of a C `unsigned int`; unnamed bits alone
 * get strace's `/* PREFIX??? *\/` comment when `unknownPrefix` is given.
 *
 * @example
 * ```ts
 * flags(PROT, 'PROT_NONE')(3n, c); // 'PROT_READ|PROT_WRITE'
 * ```
 */
export function flags(table: Xlat, zero = '0', unknownPrefix?: string): ArgFormatter {
  return (v) => formatFlags(BigInt.asUintN(32, v), table, zero, unknownPrefix);
}

/**
 * One value of `table`, `0x7 /* PREFIX??? *\/` when unknown; `signed` compares as a C int.
 *
 * @example
 * ```ts
 * enumOf(WHENCE, 'SEEK_')(7n, c); // '0x7 /* SEEK_??? *\/'
 * ```
 */
export function enumOf(table: Xlat, prefix?: string, signed = false): ArgFormatter {
  return (v) => formatEnum(signed ? BigInt.asIntN(32, v) : BigInt.asUintN(32, v), table, prefix);
}

/**
 * An output argument: `f` once the call succeeded, the pointer otherwise.
 *
 * @example
 * ```ts
 * out(STR)(addr, c); // the string once the call succeeded, else '0x7ffd...'
 * ```
 */
export function out(f: ArgFormatter): ArgFormatter {
  const o: ArgFormatter = (v, c) => (c.ok ? f(v, c) : ptr(v));
  OUTPUTS.add(o);
  return o;
}

/**
 * An input buffer whose length is argument `lenArg`.
 *
 * @example
 * ```ts
 * inBuf(2)(addr, c); // write's buffer, argument 2 bytes long: '"hello\\n"'
 * ```
 */
export function inBuf(lenArg: number): ArgFormatter {
  return (v, c) => formatBuffer(c.mem, v, arg(c, lenArg), c.strlen);
}

/**
 * An output buffer filled with as many bytes as the call returned.
 *
 * @example
 * ```ts
 * outBuf()(addr, c); // read's buffer, as many bytes as it returned
 * ```
 */
export function outBuf(hexBytes = false): ArgFormatter {
  const o: ArgFormatter = (v, c) => (c.ok ? formatBuffer(c.mem, v, c.ret ?? 0n, c.strlen, { hex: hexBytes }) : ptr(v));
  OUTPUTS.add(o);
  return o;
}

/**
 * Format the return value in hex (pointer-returning calls).
 *
 * @example
 * ```ts
 * retHex(c, 0x7f0000000000n); // '0x7f0000000000'
 * ```
 */
export const retHex = (_c: DecodeContext, r: bigint): string => hex(r);
/**
 * Format the return value in octal (umask).
 *
 * @example
 * ```ts
 * retOctal(c, 0o22n); // '022'
 * ```
 */
export const retOctal = (_c: DecodeContext, r: bigint): string => octal(r);
