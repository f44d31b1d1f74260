import { closeSync, openSync, writeSync } from 'node:fs';
import { MAX_ERRNO } from '../../abi/linux.js';
import { SYS } from '../../abi/syscalls.js';
import type { TraceOptions } from '../protocol.js';
import type { MemoryReader } from './decode/umove.js';
import { formatCall, formatExit, formatSignalDelivery, formatSyscall } from './decoder.js';
import { SyscallSummary } from './summary.js';

/** Output is written once this much has been buffered (and before the worker sleeps). */
const FLUSH_BYTES = 65536;

/**
 * Everything `systrap run` says about the program, as strace would: one line per traced call,
 * signal deliveries, the exit line, and the `-c` table. Lives in the sentry worker; output is
 * buffered and written in blocks (and before the worker sleeps). ("Tracer" in this code base
 * means the ptrace side only: src/tracer/.)
 *
 * @example
 * ```ts
 * const strace = new StracePrinter({ trace: [SYS.openat], outFd: 2, summary: false }, mem);
 * ```
 */
export class StracePrinter {
  readonly #opts: Pick<TraceOptions, 'trace' | 'outFd' | 'summary' | 'perProcess'>;
  /** The memory of the process a thread belongs to (calls are decoded from their own process). */
  readonly #memOf: (tid: number | undefined) => MemoryReader;
  readonly #traced: Set<number>;
  readonly #summary?: SyscallSummary;
  #buf: string[] = [];
  #bytes = 0;
  /** Prefix lines with the thread id (set once the program has had two threads). */
  #threaded = false;

  /** `-ff`: the process (tgid) of a thread, and each process's file and buffer. */
  readonly #pidOf: (tid: number) => number;
  readonly #files = new Map<number, { fd: number; buf: string[]; bytes: number }>();

  constructor(
    opts: Pick<TraceOptions, 'trace' | 'outFd' | 'summary' | 'perProcess'>,
    memOf: (tid: number | undefined) => MemoryReader,
    pidOf: (tid: number) => number = (tid) => tid,
  ) {
    this.#opts = opts;
    this.#memOf = memOf;
    this.#pidOf = pidOf;
    this.#traced = new Set(opts.trace);
    if (opts.summary) this.#summary = new SyscallSummary();
  }

  /** A call returned (`ret` undefined: it does not return, e.g. rt_sigreturn). */
  exit(tid: number, sysno: number, args: bigint[], ret: bigint | undefined, start: bigint): void {
    if (this.#summary) this.#summary.record(sysno, ret !== undefined && ret < 0n && ret >= -MAX_ERRNO, Number(process.hrtime.bigint() - start));
    if (!this.#traced.has(sysno)) return;
    this.#line(tid, formatSyscall(sysno, args, ret, this.#memOf(tid)));
  }

  /** exit / exit_group: printed before the task goes (strace's -c leaves them out). */
  exitCall(tid: number, sysno: number, args: bigint[]): void {
    if (this.#traced.has(sysno)) this.#line(tid, formatSyscall(sysno, args, undefined, this.#memOf(tid)));
  }

  /** A second thread or process exists: lines carry `[pid TID]` from now on, as strace -f prints them. */
  newThread(): void {
    this.#threaded = true;
  }

  /** execve's arguments as strace shows them, read before the old image goes. */
  execCall(tid: number, sysno: number, args: bigint[]): string | undefined {
    return this.#traced.has(sysno) ? formatCall(sysno, args, undefined, this.#memOf(tid)) : undefined;
  }

  /** execve succeeded (its line was formatted by execCall). */
  exec(tid: number, call: string | undefined, start: bigint): void {
    this.#summary?.record(SYS.execve, false, Number(process.hrtime.bigint() - start));
    if (call !== undefined) this.#line(tid, `${call} = 0`);
  }

  /**
   * A signal was delivered: `--- SIGCHLD {...} ---`, from its siginfo (a bare one naming only
   * the signal when there is none). Printed whenever anything is traced, as strace does.
   */
  signal(tid: number | undefined, signo: number, info: Uint8Array | undefined): void {
    if (this.#traced.size === 0) return;
    const si = info ?? new Uint8Array(128);
    if (!info) new DataView(si.buffer).setInt32(0, signo, true);
    this.#line(tid, formatSignalDelivery(si));
  }

  /** A process was killed by `signo`: `+++ killed by SIGKILL +++` (`[pid N]` once there are several). */
  killed(signo: number, pid?: number): void {
    if (this.#traced.size > 0) this.#line(pid, formatExit({ signal: signo }));
  }

  /** A process exited: `+++ exited with 0 +++` (the low 8 bits of `status`). */
  exited(status: number, pid?: number): void {
    if (this.#traced.size > 0) this.#line(pid, formatExit({ code: status & 0xff }));
  }

  /** -ff: a line into PREFIX.PID (opened at the process's first line; a file that cannot be made drops its lines). */
  #fileLine(pid: number, text: string): void {
    let f = this.#files.get(pid);
    if (!f) {
      let fd = -1;
      try {
        fd = openSync(`${this.#opts.perProcess}.${pid}`, 'w');
      } catch {
        // no file: its lines are lost, as strace's would be
      }
      f = { fd, buf: [], bytes: 0 };
      this.#files.set(pid, f);
    }
    if (f.fd < 0) return;
    f.buf.push(text);
    f.bytes += text.length;
    if (f.bytes > FLUSH_BYTES) this.flush();
  }

  /** Write out what is buffered. */
  flush(): void {
    for (const f of this.#files.values()) {
      if (f.buf.length === 0) continue;
      writeAll(f.fd, f.buf.join(''));
      f.buf = [];
      f.bytes = 0;
    }
    if (this.#buf.length === 0) return;
    const s = this.#buf.join('');
    this.#buf = [];
    this.#bytes = 0;
    writeAll(this.#opts.outFd, s);
  }

  /** Closes the per-process files (-ff) once everything is written. */
  close(): void {
    this.flush();
    for (const f of this.#files.values()) closeSync(f.fd);
    this.#files.clear();
  }

  /** The `-c` table, if asked for. */
  summaryText(): string | undefined {
    return this.#summary?.format();
  }

  /** Buffer one line, `[pid TID] `-prefixed once the program is threaded (or into its process's file with -ff). */
  #line(tid: number | undefined, s: string): void {
    if (this.#opts.perProcess !== undefined && tid !== undefined) return this.#fileLine(this.#pidOf(tid), s + '\n');
    if (this.#opts.outFd < 0) return;
    const text = (this.#threaded && tid !== undefined ? `[pid ${String(tid).padStart(5)}] ` : '') + s + '\n';
    this.#buf.push(text);
    this.#bytes += text.length;
    if (this.#bytes > FLUSH_BYTES) this.flush();
  }
}

/** Writes `s` to `fd`; an output that is gone (a closed pipe) is ignored: the program goes on. */
function writeAll(fd: number, s: string): void {
  if (fd < 0) return;
  try {
    writeSync(fd, s);
  } catch {
    // gone
  }
}
