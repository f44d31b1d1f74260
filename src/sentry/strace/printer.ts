import { closeSync, openSync, writeSync } from 'node:fs';
import { MAX_ERRNO } from '../../abi/linux.js';
import { SYS, syscallName } from '../../abi/syscalls.js';
import type { TraceOptions } from '../protocol.js';
import type { MemoryReader } from './decode/umove.js';
import { alignResult, formatCall, formatCallParts, formatExit, formatReturn, formatSignalDelivery, type FormatOptions } from './decoder.js';
import { DEFAULT_STYLE, type TraceStyle } from './style.js';
import { withConstStyle, withVerbose } from './decode/constStyle.js';
import { SyscallSummary } from './summary.js';

/**
 * Wall-clock time minus hrtime, in ns, taken once: an hrtime reading plus this is the time of
 * day with microseconds to spare (Date.now() has milliseconds only), and lines stay in order.
 */
const WALL_MINUS_HRTIME = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6)) - process.hrtime.bigint();

/** The auxv entry naming the file execve was given. */
const AT_EXECFN = 31n;

/** Output is written once this much has been buffered (and before the worker sleeps). */
const FLUSH_BYTES = 65536;

/**
 * What the printer needs to know of the program (the kernel answers).
 *
 * @example
 * ```ts
 * const hooks: PrinterHooks = { memOf: () => mem, pidOf: (tid) => tid, tracees: () => 1, root: () => 2 };
 * ```
 */
export interface PrinterHooks {
  /** The memory of the process a thread belongs to (calls are decoded from their own process). */
  memOf(tid: number | undefined): MemoryReader;
  /** The process (its pid as the program sees it) of a thread. */
  pidOf(tid: number): number;
  /** Threads alive in every traced process: strace's count of tracees (`[pid N]` when > 1). */
  tracees(): number;
  /** The first process's pid (without `-f`, only it is traced). */
  root(): number;
  /** `-y`: what fd `fd` of thread `tid`'s process names (AT_FDCWD: its working directory). */
  fdPath?(tid: number, fd: number): string | undefined;
}

/**
 * Takes the line of thread `tid` to print later with `print`, or says no (false): see
 * StracePrinter.holdLines.
 *
 * @example
 * ```ts
 * const holder: LineHolder = (tid, print) => (pending ? (held.push(print), true) : false);
 * ```
 */
export type LineHolder = (tid: number, print: () => void) => boolean;

/** A call's line in two parts: `call` is aligned, then `= result`. */
type Body = string | { call: string; result: string };

/** Calls printed whole where they are made (exit, exit_group: `= ?` at once; execve: by exec()). */
const WHOLE_AT_ONCE = new Set<number>([SYS.exit, SYS.exit_group, SYS.execve, SYS.execveat]);

/**
 * Everything `systrap run` says about the program, as strace would: one line per traced call,
 * signal deliveries, the exit line, and the `-c` table, in strace's format (its options in
 * {@link TraceStyle}). Lives in the sentry worker; output is buffered and written in blocks (and
 * before the worker sleeps). ("Tracer" in this code base means the ptrace side only: src/tracer/.)
 *
 * @example
 * ```ts
 * const strace = new StracePrinter({ trace: [SYS.openat], outFd: 2, summary: false }, hooks);
 * ```
 */
export class StracePrinter {
  readonly #opts: Pick<TraceOptions, 'trace' | 'outFd' | 'summary' | 'perProcess' | 'toFile' | 'sortBy'>;
  readonly #style: TraceStyle;
  readonly #hooks: PrinterHooks;
  readonly #traced: Set<number>;
  readonly #summary?: SyscallSummary;
  /** `-c -e trace=SET`: the calls counted; undefined: all. */
  readonly #counted?: Set<number>;
  readonly #signals?: Set<number>;
  #buf: string[] = [];
  #bytes = 0;
  /** `-r`: when the previous line began (hrtime ns). */
  #lastLine?: bigint;
  /** `-y`: fds a call closes or replaces, named at its entry (by tid): gone by its exit. */
  readonly #entryPaths = new Map<number, Map<number, string>>();
  /**
   * Traced calls under way, by tid, in order of entry: strace prints a call's entry as it
   * enters, so a line another thread or process prints meanwhile cuts it (`read(3,  <unfinished
   * ...>`, later `<... read resumed>…`). Printed here only when such a line comes (`cut`).
   */
  readonly #open = new Map<number, { sysno: number; args: bigint[]; at: bigint; cut: boolean }>();
  /** `-ff`: each process's file and buffer. */
  readonly #files = new Map<number, { fd: number; buf: string[]; bytes: number }>();
  /** Neither -X nor -v: the decoders' own defaults, no wrapper needed (a line per call counts). */
  readonly #plain: boolean;
  /** Asked before a line is printed: one may take it to print later (see holdLines). */
  readonly #holders = new Set<LineHolder>();

  constructor(opts: Pick<TraceOptions, 'trace' | 'outFd' | 'summary' | 'counted' | 'perProcess' | 'style' | 'toFile' | 'sortBy'>, hooks: PrinterHooks) {
    this.#opts = opts;
    this.#style = { ...DEFAULT_STYLE, ...opts.style };
    this.#plain = !this.#style.verbose && this.#style.constStyle === DEFAULT_STYLE.constStyle;
    this.#hooks = hooks;
    this.#traced = new Set(opts.trace);
    if (this.#style.signals) this.#signals = new Set(this.#style.signals);
    if (opts.summary) this.#summary = new SyscallSummary();
    if (opts.counted) this.#counted = new Set(opts.counted);
  }

  /** `-c`: count one call (of the counted ones), which ended at `end`. */
  #count(sysno: number, failed: boolean, start: bigint, end = process.hrtime.bigint()): void {
    if (this.#summary && (!this.#counted || this.#counted.has(sysno))) this.#summary.record(sysno, failed, Number(end - start));
  }

  /** strace's output is on: some call is traced, or `-e trace=none` with output asked for. */
  get #on(): boolean {
    return this.#traced.size > 0 || this.#style.on;
  }

  /**
   * True when thread `tid`'s calls are traced and counted. Without `-f`, the first process's
   * first thread only (its tid is the process's pid): strace follows no clone without it, a
   * thread's as little as a process's.
   */
  #follows(tid: number | undefined): boolean {
    return this.#style.follow || tid === undefined || tid === this.#hooks.root();
  }

  /**
   * A traced call begins (the sentry saw it trap). With `-y`, what close/dup2/dup3 are about to
   * close is named now: strace prints `close(3</etc/passwd>)`.
   */
  enter(tid: number, sysno: number, args: bigint[], at = process.hrtime.bigint()): void {
    if (this.#opts.perProcess === undefined && this.#traced.has(sysno) && !WHOLE_AT_ONCE.has(sysno) && this.#follows(tid) && this.#statusShown(undefined, false) && !this.#style.paths) {
      // Its entry is a line begun: one another thread had begun is cut now, as strace cuts it.
      this.#cutOthers(tid);
      this.#open.set(tid, { sysno, args, at, cut: false });
    }
    if (this.#style.decodeFds === 0 && this.#style.paths === undefined) return;
    const fd = sysno === SYS.close ? args[0] : sysno === SYS.dup2 || sysno === SYS.dup3 ? args[1] : undefined;
    if (fd === undefined || !this.#traced.has(sysno)) return;
    const path = this.#hooks.fdPath?.(tid, Number(BigInt.asIntN(32, fd)));
    if (path !== undefined) this.#entryPaths.set(tid, new Map([[Number(BigInt.asIntN(32, fd)), path]]));
  }

  /**
   * A call returned (`ret` undefined: it never will). `how.injected`: by `-e inject=`; `how.sp`:
   * the stack pointer at its entry (rt_sigreturn's frame is there); `how.mem`: what to decode
   * its arguments from (default the process's memory); `how.end`: when it returned (default now).
   */
  exit(tid: number, sysno: number, args: bigint[], ret: bigint | undefined, start: bigint, how: { injected?: boolean; sp?: bigint; mem?: MemoryReader; end?: bigint } = {}): void {
    const open = this.#open.get(tid);
    this.#open.delete(tid);
    if (!this.#follows(tid)) return;
    const failed = ret !== undefined && ret < 0n && ret >= -MAX_ERRNO;
    const end = how.end ?? process.hrtime.bigint();
    this.#count(sysno, failed, start, end);
    const named = this.#entryPaths.get(tid);
    this.#entryPaths.delete(tid);
    if (!this.#traced.has(sysno) || !this.#statusShown(ret, failed)) return;
    const opts = this.#format(tid, named, how);
    const mem = how.mem ?? this.#hooks.memOf(tid);
    const call = this.#call(sysno, args, ret, mem, opts);
    if (!this.#onPath(tid, sysno, args, ret, call, named)) return;
    let result = this.#ret(sysno, args, ret, mem, opts);
    if (this.#style.syscallTimes && ret !== undefined) result += ` <${seconds(end - start)}>`;
    if (open?.cut && open.sysno === sysno) {
      const rest = this.#styled(() => formatCallParts(sysno, args, ret, mem, opts)).rest;
      return this.#line(tid, { call: `<... ${syscallName(sysno)} resumed>${rest}`, result }, end);
    }
    this.#line(tid, { call, result }, start);
  }

  /**
   * A call the stub made and recorded itself (the trace ring, see TraceRing): its entry and its
   * exit at once, at the times it recorded, decoded from what it copied of its arguments.
   */
  recorded(tid: number, sysno: number, args: bigint[], ret: bigint, mem: MemoryReader, entryNs: bigint, exitNs: bigint): void {
    // Decoded after the thread's next call entered (a trap answered first): that one stays open.
    const open = this.#open.get(tid);
    if (open) this.#open.delete(tid);
    // Its entry and exit at once: what enter() would cut is cut, nothing of its own stays open.
    if (this.#open.size > 0 && this.#opts.perProcess === undefined && this.#traced.has(sysno) && this.#follows(tid) && this.#statusShown(undefined, false)) this.#cutOthers(tid);
    this.exit(tid, sysno, args, ret, entryNs, { mem, end: exitNs });
    if (open) this.#open.set(tid, open);
  }

  /**
   * Lets `holder` take lines from now on: a process whose trace ring holds calls not decoded
   * yet keeps its next lines (its threads' next calls, its signals, its end) to print after
   * them, calling `print` then. Returns what undoes it.
   */
  holdLines(holder: LineHolder): () => void {
    this.#holders.add(holder);
    return () => this.#holders.delete(holder);
  }

  /** The entry of every call another thread has under way, cut: `read(3,  <unfinished ...>`. */
  #cutOthers(tid: number | undefined): void {
    for (const [other, o] of this.#open) {
      if (other === tid || o.cut) continue;
      o.cut = true;
      const entry = this.#styled(() => formatCallParts(o.sysno, o.args, undefined, this.#hooks.memOf(other), this.#format(other, this.#entryPaths.get(other)))).entry;
      this.#line(other, `${entry} <unfinished ...>`, o.at);
    }
  }

  /** `f` with -X's and -v's styles. */
  #styled<T>(f: () => T): T {
    return withVerbose(this.#style.verbose, () => withConstStyle(this.#style.constStyle, f));
  }

  /** exit / exit_group: printed before the task goes (strace's -c leaves them out). */
  exitCall(tid: number, sysno: number, args: bigint[]): void {
    // -P: exit and exit_group name no path.
    if (!this.#traced.has(sysno) || !this.#follows(tid) || !this.#statusShown(undefined, false) || this.#style.paths) return;
    const start = process.hrtime.bigint();
    this.#line(tid, { call: this.#call(sysno, args, undefined, this.#hooks.memOf(tid), this.#format(tid)), result: '?' }, start);
  }

  /** execve's arguments as strace shows them, read before the old image goes. */
  execCall(tid: number, sysno: number, args: bigint[]): string | undefined {
    return this.#traced.has(sysno) && this.#follows(tid) ? this.#call(sysno, args, undefined, this.#hooks.memOf(tid), this.#format(tid)) : undefined;
  }

  /** execve succeeded (its line was formatted by execCall). */
  exec(tid: number, call: string | undefined, start: bigint): void {
    if (!this.#follows(tid)) return;
    this.#count(SYS.execve, false, start);
    if (call === undefined || !this.#statusShown(0n, false)) return;
    const result = this.#style.syscallTimes ? `0 <${seconds(process.hrtime.bigint() - start)}>` : '0';
    this.#line(tid, { call, result }, start);
  }

  /**
   * The first line, for the exec systrap itself made: `execve("/bin/ls", ["ls"], 0x7ff... /* 3
   * vars *\/) = 0`, decoded from the new stack (`sp`: argc, argv, envp, the auxv's AT_EXECFN);
   * `loadNs`: how long loading the program took (its time with -T and -c).
   */
  start(tid: number, sp: bigint, loadNs = 0): void {
    const began = process.hrtime.bigint() - BigInt(Math.round(loadNs));
    this.#count(SYS.execve, false, began);
    if (!this.#traced.has(SYS.execve) || !this.#statusShown(0n, false)) return;
    const mem = this.#hooks.memOf(tid);
    const word = (addr: bigint): bigint | undefined => {
      const b = mem.read(addr, 8);
      return b ? new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true) : undefined;
    };
    const argc = word(sp);
    if (argc === undefined || argc > 1n << 20n) return;
    const argv = sp + 8n;
    const envp = argv + (argc + 1n) * 8n;
    let at = envp;
    for (let i = 0; i < 1 << 16 && (word(at) ?? 0n) !== 0n; i++) at += 8n;
    let execfn: bigint | undefined;
    for (let aux = at + 8n, i = 0; i < 64; i++, aux += 16n) {
      const type = word(aux);
      if (type === undefined || type === 0n) break;
      if (type === AT_EXECFN) execfn = word(aux + 8n);
    }
    if (execfn === undefined) return;
    const call = this.#call(SYS.execve, [execfn, argv, envp], undefined, mem, this.#format(tid));
    if (!this.#onPath(tid, SYS.execve, [execfn, argv, envp], 0n, call)) return;
    this.#line(tid, { call, result: this.#style.syscallTimes ? `0 <${seconds(BigInt(Math.round(loadNs)))}>` : '0' }, began);
  }

  /**
   * A signal was delivered: `--- SIGCHLD {...} ---`, from its siginfo (a bare one naming only
   * the signal when there is none). Printed whenever anything is traced, as strace does, unless
   * `-e signal=` leaves it out.
   */
  signal(tid: number | undefined, signo: number, info: Uint8Array | undefined): void {
    if (!this.#on || !this.#follows(tid) || (this.#signals && !this.#signals.has(signo))) return;
    const si = info ?? new Uint8Array(128);
    if (!info) new DataView(si.buffer).setInt32(0, signo, true);
    this.#line(tid, withConstStyle(this.#style.constStyle, () => formatSignalDelivery(si)), process.hrtime.bigint());
  }

  /** A process was killed by `signo`: `+++ killed by SIGKILL +++`. */
  killed(signo: number, pid: number): void {
    // strace leaves it out with the signal's own lines (-e signal=).
    if (this.#on && this.#style.quiet < 2 && this.#follows(pid) && (!this.#signals || this.#signals.has(signo))) this.#line(pid, formatExit({ signal: signo }), process.hrtime.bigint());
  }

  /** A process exited: `+++ exited with 0 +++` (the low 8 bits of `status`). */
  exited(status: number, pid: number): void {
    if (this.#on && this.#style.quiet < 2 && this.#follows(pid)) this.#line(pid, formatExit({ code: status & 0xff }), process.hrtime.bigint());
  }

  /** `-f`: a new process or thread is traced (strace says so on its stderr unless `-q`). */
  attached(tid: number): void {
    if (this.#on && this.#style.follow && this.#style.quiet === 0) writeAll(2, `systrap: Process ${tid} attached\n`);
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
    for (const f of this.#files.values()) if (f.fd >= 0) closeSync(f.fd);
    this.#files.clear();
  }

  /** The `-c` table, if asked for. */
  summaryText(): string | undefined {
    return this.#summary?.format(this.#opts.sortBy);
  }

  /** formatCall with `-X`'s style. */
  #call(sysno: number, args: readonly bigint[], ret: bigint | undefined, mem: MemoryReader, opts: FormatOptions): string {
    if (this.#plain) return formatCall(sysno, args, ret, mem, opts);
    return withVerbose(this.#style.verbose, () => withConstStyle(this.#style.constStyle, () => formatCall(sysno, args, ret, mem, opts)));
  }

  /** formatReturn with `-X`'s style. */
  #ret(sysno: number, args: readonly bigint[], ret: bigint | undefined, mem: MemoryReader, opts: FormatOptions): string {
    if (this.#plain) return formatReturn(sysno, args, ret, mem, opts);
    return withVerbose(this.#style.verbose, () => withConstStyle(this.#style.constStyle, () => formatReturn(sysno, args, ret, mem, opts)));
  }

  /** Decoder options for a call of thread `tid` (`named`: fds named at its entry). */
  #format(tid: number, named?: Map<number, string>, how: { injected?: boolean; sp?: bigint } = {}): FormatOptions {
    const fdPath = this.#hooks.fdPath;
    // One shape for every call's options (no spreads, no keys added later): this runs once per
    // traced call, and objects of changing shapes made it several times slower.
    return {
      stringLimit: this.#style.stringLimit,
      stackPointer: how.sp,
      injected: how.injected === true,
      fdPath: this.#style.decodeFds > 0 && fdPath ? (fd: number) => named?.get(fd) ?? fdPath(tid, fd) : undefined,
    };
  }

  /** `-e status=`, `-z`, `-Z`: is a call that ended so printed? */
  #statusShown(ret: bigint | undefined, failed: boolean): boolean {
    const only = this.#style.status;
    if (only === undefined) return true;
    return only.includes(ret === undefined ? 'unfinished' : failed ? 'failed' : 'successful');
  }

  /** `-P PATH`: does the call name one of the paths (as a string argument or through an fd)? */
  #onPath(tid: number, sysno: number, args: bigint[], ret: bigint | undefined, call: string, atEntry?: Map<number, string>): boolean {
    const paths = this.#style.paths;
    if (paths === undefined) return true;
    const fdPath = this.#hooks.fdPath;
    const withFds = { ...this.#format(tid), fdPath: (fd: number) => atEntry?.get(fd) ?? fdPath?.(tid, fd) };
    let named = this.#style.decodeFds > 0 || !fdPath ? call : formatCall(sysno, args, ret, this.#hooks.memOf(tid), withFds);
    // execve names its file first; its argv and envp are no paths.
    if (sysno === SYS.execve || sysno === SYS.execveat) named = named.slice(0, named.indexOf('['));
    return paths.some((p) => named.includes(`"${p}"`) || named.includes(`<${p}>`));
  }

  /**
   * One line as strace prints it: the pid (`[pid N] ` on stderr while several are traced,
   * `N ` in every line of a `-f -o FILE` trace), the timestamp, then the call with its result
   * aligned (the prefix counted), or a `---`/`+++` line. With -ff, into the process's file.
   */
  #line(tid: number | undefined, body: Body, at: bigint): void {
    if (tid !== undefined) for (const h of this.#holders) if (h(tid, () => this.#print(tid, body, at))) return;
    this.#print(tid, body, at);
  }

  /** #line's printing (a held line is printed by it later). */
  #print(tid: number | undefined, body: Body, at: bigint): void {
    const perProcess = this.#opts.perProcess !== undefined && tid !== undefined;
    if (this.#open.size > 0 && !perProcess) this.#cutOthers(tid);
    let head = '';
    if (!perProcess && tid !== undefined) {
      if (this.#opts.toFile && this.#style.follow) head = `${String(tid).padEnd(5)} `;
      else if (!this.#opts.toFile && this.#style.follow && this.#hooks.tracees() > 1) head = `[pid ${String(tid).padStart(5)}] `;
    }
    head += this.#stamp(at);
    let text: string;
    if (typeof body === 'string') text = head + body;
    else text = alignResult(body.call, body.result, { align: this.#style.align, prefix: head });
    if (perProcess) return this.#fileLine(this.#hooks.pidOf(tid), text + '\n');
    if (this.#opts.outFd < 0) return;
    this.#buf.push(text + '\n');
    this.#bytes += text.length + 1;
    if (this.#bytes > FLUSH_BYTES) this.flush();
  }

  /** `-t`/`-tt`/`-ttt`/`-r`: the time a line began, as strace prints it. */
  #stamp(at: bigint): string {
    let out = '';
    if (this.#style.relative) {
      const d = this.#lastLine === undefined ? 0n : at - this.#lastLine;
      this.#lastLine = at;
      out += `${seconds(d > 0n ? d : 0n).padStart(13)} `;
    }
    const ts = this.#style.timestamps;
    if (ts === 0) return out;
    const us = (at + WALL_MINUS_HRTIME) / 1000n;
    const secs = us / 1000000n;
    const frac = (us % 1000000n).toString().padStart(6, '0');
    if (ts === 3) return `${out}${secs}.${frac} `;
    const d = new Date(Number(secs) * 1000);
    const hms = [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
    return `${out}${hms}${ts === 2 ? `.${frac}` : ''} `;
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
}

/** Nanoseconds as strace's `seconds.microseconds`. */
function seconds(ns: bigint): string {
  const us = ns / 1000n;
  return `${us / 1000000n}.${(us % 1000000n).toString().padStart(6, '0')}`;
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
