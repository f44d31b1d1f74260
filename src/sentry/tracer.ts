import { formatCall, formatExit, formatSignalDelivery, formatSyscall } from './decode.js';
import { SyscallSummary } from './summary.js';
import { syscallName } from '../abi/syscalls.js';
import type { ProgramMemory } from './mem.js';
import type { Task } from './task.js';
import type { TraceOptions } from './protocol.js';
import { writeSync } from 'node:fs';

/** What a policy module's handle(call) may answer. */
export type PolicyAnswer = 'pass' | 'kill' | number | bigint | { errno: number } | { value: number | bigint };

/** The call a policy module sees. */
export interface PolicyCall {
  sysno: number;
  name: string;
  args: bigint[];
  tid: number;
}

/**
 * Everything `systrap run` says about the program (strace-like lines, the `-c` table) and the
 * per-call decisions taken before emulation (`-e inject=`, `--policy`). Lives in the sentry
 * worker; output is buffered and written in blocks (and before the worker sleeps).
 *
 * @example
 * ```ts
 * const tracer = new Tracer({ trace: [SYS.openat], outFd: 2, summary: false, inject: [] }, mem);
 * ```
 */
export class Tracer {
  readonly #traced: Set<number>;
  readonly #inject = new Map<number, bigint>();
  readonly #summary?: SyscallSummary;
  #policy?: (call: PolicyCall) => PolicyAnswer;
  #buf: string[] = [];
  #bytes = 0;
  /** Prefix lines with the thread id (set once the program has had two threads). */
  threaded = false;

  constructor(
    readonly opts: TraceOptions,
    readonly mem: ProgramMemory,
  ) {
    this.#traced = new Set(opts.trace);
    for (const i of opts.inject) for (const s of i.syscalls) this.#inject.set(s, i.error !== undefined ? -BigInt(i.error) : (i.retval ?? 0n));
    if (opts.summary) this.#summary = new SyscallSummary();
  }

  /** Loads the policy module (in this worker). */
  async init(): Promise<void> {
    if (!this.opts.policy) return;
    const mod = (await import(this.opts.policy)) as { handle?: (call: PolicyCall) => PolicyAnswer };
    if (typeof mod.handle !== 'function') throw new Error(`systrap: the policy module ${this.opts.policy} exports no handle(call) function`);
    this.#policy = mod.handle;
  }

  /** An injected result for this call (`-e inject=`), if any. */
  injected(sysno: number): bigint | undefined {
    return this.#inject.get(sysno);
  }

  /** The policy module's answer: pass, kill, or the program's result. */
  policy(t: Task, sysno: number, args: bigint[]): 'pass' | 'kill' | bigint {
    if (!this.#policy) return 'pass';
    const a = this.#policy({ sysno, name: syscallName(sysno), args: [...args], tid: t.tid });
    if (a === undefined || a === 'pass') return 'pass';
    if (a === 'kill') return 'kill';
    if (typeof a === 'number' || typeof a === 'bigint') return BigInt(a);
    if ('errno' in a) return -BigInt(a.errno);
    if ('value' in a) return BigInt(a.value);
    return 'pass';
  }

  enter(_t: Task, _sysno: number, _args: bigint[]): void {
    // Lines are printed when the call returns (one line per call, as strace without -f races).
  }

  /** A call returned (`ret` undefined: it does not return, e.g. rt_sigreturn). */
  exit(t: Task, sysno: number, args: bigint[], ret: bigint | undefined, start: bigint): void {
    if (this.#summary) this.#summary.record(sysno, ret !== undefined && ret < 0n && ret > -4096n, Number(process.hrtime.bigint() - start));
    if (!this.#traced.has(sysno)) return;
    this.line(t, formatSyscall(sysno, args, ret, this.mem));
  }

  /** exit / exit_group: printed before the task goes (strace's -c leaves them out). */
  exitCall(t: Task, sysno: number, args: bigint[]): void {
    if (this.#traced.has(sysno)) this.line(t, formatSyscall(sysno, args, undefined, this.mem));
  }

  newThread(_child: Task): void {
    this.threaded = true;
  }

  /** execve's arguments as strace shows them, read before the old image goes. */
  execCall(sysno: number, args: bigint[]): string | undefined {
    return this.#traced.has(sysno) ? formatCall(sysno, args, undefined, this.mem) : undefined;
  }

  /** execve succeeded (its line was formatted by execCall). */
  exec(t: Task, call: string | undefined, start: bigint): void {
    this.#summary?.record(59, false, Number(process.hrtime.bigint() - start));
    if (call !== undefined) this.line(t, `${call} = 0`);
  }

  signal(t: Task | undefined, signo: number, info: Uint8Array | undefined): void {
    if (this.#traced.size === 0) return;
    const si = info ?? new Uint8Array(128);
    if (!info) new DataView(si.buffer).setInt32(0, signo, true);
    this.line(t, formatSignalDelivery(si));
  }

  killed(signo: number): void {
    if (this.#traced.size > 0) this.line(undefined, formatExit({ signal: signo }));
  }

  exited(status: number): void {
    if (this.#traced.size > 0) this.line(undefined, formatExit({ code: status & 0xff }));
  }

  line(t: Task | undefined, s: string): void {
    if (this.opts.outFd < 0) return;
    const text = (this.threaded && t ? `[pid ${String(t.tid).padStart(5)}] ` : '') + s + '\n';
    this.#buf.push(text);
    this.#bytes += text.length;
    if (this.#bytes > 65536) this.flush();
  }

  flush(): void {
    if (this.#buf.length === 0) return;
    const s = this.#buf.join('');
    this.#buf = [];
    this.#bytes = 0;
    try {
      writeSync(this.opts.outFd, s);
    } catch {
      // the trace output is gone (a closed pipe): the program goes on
    }
  }

  /** The `-c` table, if asked for. */
  summaryText(): string | undefined {
    return this.#summary?.format();
  }
}
