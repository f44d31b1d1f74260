/**
 * strace-style formatting of one syscall:
 * `openat(AT_FDCWD, "/etc/passwd", O_RDONLY|O_CLOEXEC) = 3`.
 *
 * Pure formatting: the caller supplies the syscall number, the six argument
 * registers, the return register and a {@link MemoryReader} over the
 * traced program's memory. Under `./decode/`:
 *
 * - `calls/`: one decoder per syscall, grouped by family (`calls/args.ts`
 *   has the argument formatters they are built from);
 * - `structs/`: printers for the structs syscalls take or fill in;
 * - `xlat/`: the tables of named constants (strace's xlat), printed by
 *   `xlat.ts`;
 * - `umove.ts` reads the program's memory, `strings.ts` quotes what was
 *   read, `scalars.ts` prints plain numbers; `errno.ts` and `signals.ts`
 *   are what their names say (each call's argument count: src/abi/argCounts.ts).
 *
 * Timing caveat: arguments are read when this is called. Call it at syscall
 * exit for everything except the calls {@link decodeAtEntry} names (execve
 * replaces the memory its arguments live in); in/out arguments
 * (select's fd sets, ppoll's timeout) then show their values after the call.
 *
 * @module
 */

import { MAX_ERRNO } from '../../abi/linux.js';
import { SYS, syscallName } from '../../abi/syscalls.js';
import { syscallArgCount } from '../../abi/argCounts.js';
import type { SyscallDecoder } from './decode/calls/args.js';
import { DESC_DECODERS } from './decode/calls/desc.js';
import { EXEC_DECODERS } from './decode/calls/exec.js';
import { FILE_DECODERS } from './decode/calls/files.js';
import { IO_DECODERS } from './decode/calls/io.js';
import { MEMORY_DECODERS } from './decode/calls/memory.js';
import { NET_DECODERS } from './decode/calls/net.js';
import { POLL_DECODERS } from './decode/calls/poll.js';
import { PROCESS_DECODERS } from './decode/calls/process.js';
import { SIGNAL_DECODERS } from './decode/calls/signal.js';
import { TIME_DECODERS } from './decode/calls/time.js';
import type { DecodeContext } from './decode/context.js';
import { errnoDescription, errnoSymbol, isRestartErrno } from './decode/errno.js';
import { hex } from './decode/scalars.js';
import { signalName } from './decode/signals.js';
import { formatSiginfoBytes } from './decode/structs/signal.js';
import type { MemoryReader } from './decode/umove.js';

/** strace's default `-s`: the longest string (and array) shown. */
const DEFAULT_STRING_LIMIT = 32;

/**
 * Options for {@link formatSyscall}.
 *
 * @example
 * ```ts
 * const opts: FormatOptions = { align: 40, prefix: '[pid  42] ', stringLimit: 64 };
 * ```
 */
export interface FormatOptions {
  /** The longest string shown, in bytes, and the longest array (strace `-s`); default 32. */
  stringLimit?: number;
  /**
   * Pad the call with spaces so `= result` starts at this column, like
   * strace (which uses 40, counting the prefix); default 0: a single space.
   */
  align?: number;
  /** Text put before the call (e.g. `[pid  42] `); counted for `align`. */
  prefix?: string;
  /** Append ` (INJECTED)` to the result, as strace does for `-e inject` results. */
  injected?: boolean;
  /** The stack pointer at syscall entry; lets rt_sigreturn print the mask it restores. */
  stackPointer?: bigint;
  /** `-y`: what an fd names (see DecodeContext.fdPath); fd arguments and fd results show it. */
  fdPath?: (fd: number) => string | undefined;
}

/** Every syscall's decoder, by number; a syscall without one prints its arguments in hex. */
const DECODERS = new Map<number, SyscallDecoder>();
for (const table of [
  IO_DECODERS, FILE_DECODERS, DESC_DECODERS, POLL_DECODERS, EXEC_DECODERS, MEMORY_DECODERS, PROCESS_DECODERS,
  SIGNAL_DECODERS, TIME_DECODERS, NET_DECODERS,
]) {
  for (const [name, decoder] of Object.entries(table)) {
    const nr = (SYS as Readonly<Record<string, number>>)[name];
    if (nr === undefined) throw new Error(`decode: no syscall named ${name}`);
    if (DECODERS.has(nr)) throw new Error(`decode: two decoders for ${name}`);
    DECODERS.set(nr, decoder);
  }
}

/** Calls whose result is never seen: strace prints `= ?` for them. */
const NO_RETURN = new Set<number>([SYS.exit, SYS.exit_group]);
/** Calls whose result is a new fd (`-y` shows what it names). */
const FD_RESULT = new Set<number>([
  SYS.open, SYS.openat, SYS.openat2, SYS.creat, SYS.dup, SYS.dup2, SYS.dup3, SYS.socket, SYS.accept, SYS.accept4,
  SYS.epoll_create, SYS.epoll_create1, SYS.eventfd, SYS.eventfd2, SYS.signalfd, SYS.signalfd4, SYS.timerfd_create,
  SYS.memfd_create, SYS.inotify_init, SYS.inotify_init1, SYS.pidfd_open, SYS.pidfd_getfd, SYS.fanotify_init,
  SYS.perf_event_open, SYS.userfaultfd, SYS.open_by_handle_at,
]);
/** Calls whose arguments vanish when they succeed. */
const ENTRY_DECODED = new Set<number>([SYS.execve, SYS.execveat]);

/**
 * The errno of a raw return value, or undefined when it is no error
 * (the kernel encodes errors as -4095..-1).
 *
 * @example
 * ```ts
 * returnErrno(-2n);  // 2
 * returnErrno(3n);   // undefined
 * ```
 */
export function returnErrno(ret: bigint): number | undefined {
  const r = BigInt.asIntN(64, ret);
  return r < 0n && r >= -MAX_ERRNO ? Number(-r) : undefined;
}

/** What the decoders see of one call. */
function context(args: readonly bigint[], ret: bigint | undefined, mem: MemoryReader, opts: FormatOptions): DecodeContext {
  return {
    args,
    ret,
    ok: ret !== undefined && returnErrno(ret) === undefined,
    mem,
    strlen: opts.stringLimit ?? DEFAULT_STRING_LIMIT,
    sp: opts.stackPointer,
    fdPath: opts.fdPath,
  };
}

/**
 * True for syscalls whose arguments must be formatted before the call runs
 * (execve, execveat: a successful exec replaces the memory holding them).
 * Format them at entry with `ret` undefined, then add the result with
 * {@link formatReturn} and {@link alignResult}.
 *
 * @example
 * ```ts
 * decodeAtEntry(SYS.execve); // true
 * decodeAtEntry(SYS.read);   // false
 * ```
 */
export function decodeAtEntry(sysno: number): boolean {
  return ENTRY_DECODED.has(sysno);
}

/**
 * A call's line cut where strace cuts it when another process's line comes first: what it
 * prints at the call's entry (`read(3, `, or all of `close(3`), and what follows
 * `<... read resumed>` when the call returns (`"…", 10)`; `)` when nothing was left).
 *
 * @example
 * ```ts
 * formatCallParts(SYS.wait4, [-1n, addr, 0n, 0n], undefined, mem); // { entry: 'wait4(-1, ', rest: … }
 * ```
 */
export function formatCallParts(sysno: number, args: readonly bigint[], ret: bigint | undefined, mem: MemoryReader, opts: FormatOptions = {}): { entry: string; rest: string } {
  const c = context(args, ret, mem, opts);
  const decoder = DECODERS.get(sysno);
  const shown = decoder ? decoder.args(c) : Array.from({ length: syscallArgCount(sysno) }, (_, i) => hex(args[i] ?? 0n));
  const k = decoder ? firstOutput(decoder, args, mem, opts) ?? shown.length : shown.length;
  const head = shown.slice(0, k).join(', ');
  return { entry: `${syscallName(sysno)}(${head}${k < shown.length && k > 0 ? ', ' : ''}`, rest: `${shown.slice(k).join(', ')})` };
}

/**
 * The first argument a decoder prints only once the call has returned: the first marked so
 * (out(), outBuf()) or whose text changes when the call succeeds (decoders that print an
 * address until then), whichever comes first; undefined when all print at entry.
 */
function firstOutput(decoder: SyscallDecoder, args: readonly bigint[], mem: MemoryReader, opts: FormatOptions): number | undefined {
  const before = decoder.args(context(args, undefined, mem, opts));
  const after = decoder.args(context(args, 1n, mem, opts));
  const changed = before.findIndex((text, n) => text !== after[n]);
  const marked = decoder.firstOut ?? -1;
  const firsts = [changed, marked].filter((i) => i >= 0);
  return firsts.length > 0 ? Math.min(...firsts) : undefined;
}

/**
 * The call part of a trace line, `name(arg, arg, ...)`, without the result.
 * Output arguments (read's buffer, fstat's struct) are decoded only when
 * `ret` says the call succeeded; otherwise they print as addresses.
 *
 * @example
 * ```ts
 * formatCall(SYS.close, [3n], 0n, mem); // 'close(3)'
 * ```
 */
export function formatCall(sysno: number, args: readonly bigint[], ret: bigint | undefined, mem: MemoryReader, opts: FormatOptions = {}): string {
  const c = context(args, ret, mem, opts);
  const decoder = DECODERS.get(sysno);
  let shown: string[];
  if (decoder) {
    shown = decoder.args(c);
  } else {
    shown = [];
    for (let i = 0; i < syscallArgCount(sysno); i++) shown.push(hex(args[i] ?? 0n));
  }
  return `${syscallName(sysno)}(${shown.join(', ')})`;
}

/**
 * The result part of a trace line, without the `= `: `3`, `0x7f12000`,
 * `-1 ENOENT (No such file or directory)`, `? ERESTARTSYS (To be restarted
 * if SA_RESTART is set)`, or `?` when `ret` is undefined (exit_group, or a
 * call the process died in).
 *
 * @example
 * ```ts
 * formatReturn(SYS.openat, [], -2n, mem); // '-1 ENOENT (No such file or directory)'
 * formatReturn(SYS.mmap, [], 0x7f0000000000n, mem); // '0x7f0000000000'
 * ```
 */
export function formatReturn(sysno: number, args: readonly bigint[], ret: bigint | undefined, mem: MemoryReader, opts: FormatOptions = {}): string {
  let text: string;
  if (ret === undefined || NO_RETURN.has(sysno)) {
    text = '?';
  } else {
    const errno = returnErrno(ret);
    if (errno !== undefined) {
      text = `${isRestartErrno(errno) ? '?' : '-1'} ${errnoSymbol(errno)} (${errnoDescription(errno)})`;
    } else {
      const decoder = DECODERS.get(sysno);
      const r = BigInt.asIntN(64, ret);
      text = decoder?.ret ? decoder.ret(context(args, ret, mem, opts), r) : r.toString();
      const path = FD_RESULT.has(sysno) ? opts.fdPath?.(Number(r)) : undefined;
      if (path !== undefined) text += `<${path}>`;
    }
  }
  return opts.injected ? `${text} (INJECTED)` : text;
}

/**
 * Join a call and its result as strace does: `call = result`, the `=`
 * padded to `opts.align` (counting `opts.prefix`, which is prepended).
 *
 * @example
 * ```ts
 * alignResult('close(3)', '0');                 // 'close(3) = 0'
 * alignResult('close(3)', '0', { align: 40 });  // 'close(3)' + 32 spaces + '= 0'
 * ```
 */
export function alignResult(call: string, result: string, opts: Pick<FormatOptions, 'align' | 'prefix'> = {}): string {
  const head = (opts.prefix ?? '') + call;
  const pad = Math.max(1, (opts.align ?? 0) - head.length);
  return `${head}${' '.repeat(pad)}= ${result}`;
}

/**
 * One complete strace line for a syscall (no trailing newline).
 *
 * @example
 * ```ts
 * formatSyscall(SYS.write, [1n, 0x1000n, 6n], 6n, mem);      // 'write(1, "hello\n", 6) = 6'
 * formatSyscall(SYS.openat, [-100n, 0x2000n, 0n], -2n, mem); // 'openat(AT_FDCWD, "/x", O_RDONLY) = -1 ENOENT (No such file or directory)'
 * formatSyscall(SYS.exit_group, [0n], undefined, mem);       // 'exit_group(0) = ?'
 * ```
 */
export function formatSyscall(sysno: number, args: readonly bigint[], ret: bigint | undefined, mem: MemoryReader, opts: FormatOptions = {}): string {
  return alignResult(formatCall(sysno, args, ret, mem, opts), formatReturn(sysno, args, ret, mem, opts), opts);
}

/**
 * strace's line for a delivered signal, from the 128-byte siginfo:
 * `--- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, ...} ---`.
 *
 * @example
 * ```ts
 * formatSignalDelivery(siginfo); // '--- SIGSEGV {si_signo=SIGSEGV, si_code=SEGV_MAPERR, si_addr=NULL} ---'
 * ```
 */
export function formatSignalDelivery(siginfo: Uint8Array): string {
  const signo = siginfo.length >= 4 ? new DataView(siginfo.buffer, siginfo.byteOffset, 4).getInt32(0, true) : 0;
  return `--- ${signalName(signo)} ${formatSiginfoBytes(siginfo)} ---`;
}

/**
 * strace's last line for a process: `+++ exited with 0 +++` or
 * `+++ killed by SIGKILL +++` (`(core dumped)` added when it did).
 *
 * @example
 * ```ts
 * formatExit({ code: 0 });                       // '+++ exited with 0 +++'
 * formatExit({ signal: 9 });                     // '+++ killed by SIGKILL +++'
 * formatExit({ signal: 11, coreDumped: true });  // '+++ killed by SIGSEGV (core dumped) +++'
 * ```
 */
export function formatExit(how: { code: number } | { signal: number; coreDumped?: boolean }): string {
  if ('code' in how) return `+++ exited with ${how.code} +++`;
  return `+++ killed by ${signalName(how.signal)}${how.coreDumped ? ' (core dumped)' : ''} +++`;
}
