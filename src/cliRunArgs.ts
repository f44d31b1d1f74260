/**
 * `systrap run`'s command line: strace's options with strace's meaning (short, clustered, long,
 * `--opt=value`), and systrap's own. Light on purpose: `--help` and usage errors load nothing else.
 *
 * @module
 */

import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseOptions, UsageError, type OptionSpec } from './cliOptions.js';
import type { TraceOptions } from './sentry/protocol.js';
import { parseDeny } from './sentry/strace/inject.js';
import { parseQualifier } from './sentry/strace/qualifier.js';
import { parseSignalSet, parseStatusSet, type TraceStyle } from './sentry/strace/style.js';
import type { SummarySort } from './sentry/strace/summary.js';
import type { SyscallSelection } from './sentry/strace/traceSpec.js';
import { SYS } from './abi/syscalls.js';

/**
 * A parsed `systrap run` command line.
 *
 * @example
 * ```ts
 * const a: RunArgs = parseRunArgs(['-f', '-e', 'trace=%file', '--', 'make']);
 * ```
 */
export interface RunArgs {
  /** `--help` was asked for: print the usage, run nothing. */
  help?: boolean;
  /** `--version` was asked for. */
  version?: boolean;
  program: string;
  args: string[];
  trace: TraceOptions;
  outFile?: string;
  deny: Map<number, number>;
  maxThreads?: number;
  inspectPort?: number;
  /** `--inspect-wait`: the program waits for a viewer, and the server outlives it until SIGINT. */
  inspectWait?: boolean;
  record?: string;
  sandbox: 'auto' | 'require' | 'off';
  /** `--no-patch`: no syscall patching (see RunProgramOptions.patch). */
  noPatch?: boolean;
}

/** A number option's value, or a usage error naming it (strace: `invalid -s argument: 'x'`). */
function int(v: string | undefined, name: string, min: number, max: number): number {
  const n = Number(v);
  if (v === undefined || !/^\d+$/.test(v) || n < min || n > max) throw new UsageError(`invalid ${name} argument: '${v ?? ''}'`);
  return n;
}

/** Runs a parser that throws `systrap: ...` Errors; its message becomes a usage error. */
function usage<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError((e as Error).message.replace(/^systrap: /, ''));
  }
}

const SORTS: Record<string, SummarySort> = { time: 'time', 'time-percent': 'time', 'time-total': 'time', 'total-time': 'time', calls: 'calls', count: 'calls', errors: 'errors', error: 'errors', name: 'name', syscall: 'name', 'syscall-name': 'name', nothing: 'nothing', none: 'nothing' };

/** What the options say so far (see parseRunArgs). */
interface ArgsState {
  a: RunArgs;
  trace: TraceOptions;
  style: Partial<TraceStyle>;
  /** `-e trace=`: the calls selected; undefined: all. */
  selection?: SyscallSelection;
  /** An option about trace lines was given: strace's output is on. */
  lines: boolean;
  /** `-C`: the lines and the table. */
  summaryAlso: boolean;
  /** `-f` 1, `-ff` 2. */
  follow: number;
}

function newState(): ArgsState {
  const style: Partial<TraceStyle> = {};
  const trace: TraceOptions = { trace: [], outFd: 2, summary: false, inject: [], style };
  const a: RunArgs = { program: '', args: [], trace, deny: new Map(), sandbox: 'auto' };
  return { a, trace, style, lines: false, summaryAlso: false, follow: 0 };
}

/** One `-e EXPR` (or its long form): a selection, an injection, or an output qualifier. */
function qualifier(st: ArgsState, expr: string): void {
  const { style } = st;
  const eq = expr.indexOf('=');
  const key = eq < 0 ? 'trace' : expr.slice(0, eq);
  const value = expr.slice(eq + 1);
  if (key === 'quiet' || key === 'q') return void (style.quiet = value === 'none' ? 0 : 3);
  if (key === 'status') style.status = usage(() => parseStatusSet(value));
  else if (key === 'signal' || key === 'signals') style.signals = usage(() => parseSignalSet(value));
  else if (key === 'decode-fds') style.decodeFds = value === 'none' ? 0 : 1;
  else {
    const q = usage(() => parseQualifier(expr));
    if (q.kind === 'inject') return void st.trace.inject.push({ syscalls: [...q.spec.syscalls], error: q.spec.error, retval: q.spec.retval, when: q.spec.when });
    st.selection = q.selection;
  }
  st.lines = true;
}

/** `systrap run`'s options: strace's, then systrap's own. */
function runOptions(st: ArgsState): OptionSpec[] {
  const { a, trace, style } = st;
  const on = (): void => void (st.lines = true);
  const count = (key: 'timestamps' | 'decodeFds' | 'quiet', max: number) => (): void => {
    style[key] = Math.min(max, (style[key] ?? 0) + 1) as never;
  };
  return [
    { short: 'e', value: 'required', apply: (v) => qualifier(st, v!) },
    { long: ['trace'], value: 'required', apply: (v) => qualifier(st, `trace=${v}`) },
    { long: ['signal', 'signals'], value: 'required', apply: (v) => qualifier(st, `signal=${v}`) },
    { long: 'status', value: 'required', apply: (v) => qualifier(st, `status=${v}`) },
    { long: 'inject', value: 'required', apply: (v) => qualifier(st, `inject=${v}`) },
    { long: 'fault', value: 'required', apply: (v) => qualifier(st, `fault=${v}`) },
    { short: 'o', long: 'output', value: 'required', apply: (v) => ((a.outFile = v), on()) },
    { short: 'f', long: 'follow-forks', apply: () => ((st.follow = Math.min(2, st.follow + 1)), on()) },
    { long: 'output-separately', apply: () => ((st.follow = 2), on()) },
    { short: 'c', long: 'summary-only', apply: () => (trace.summary = true) },
    { short: 'C', long: 'summary', apply: () => ((trace.summary = true), (st.summaryAlso = true), on()) },
    {
      short: 'S', long: 'summary-sort-by', value: 'required', apply: (v) => {
        if (!Object.hasOwn(SORTS, v!)) throw new UsageError(`invalid sortby: '${v}'`);
        trace.sortBy = SORTS[v!];
      },
    },
    { short: 'T', long: 'syscall-times', apply: () => ((style.syscallTimes = true), on()) },
    { short: 't', long: 'absolute-timestamps', apply: () => (count('timestamps', 3)(), on()) },
    { short: 'r', long: 'relative-timestamps', apply: () => ((style.relative = true), on()) },
    { short: 'y', long: 'decode-fds', value: 'optional', apply: () => (count('decodeFds', 2)(), on()) },
    { short: 's', long: 'string-limit', value: 'required', apply: (v) => ((style.stringLimit = int(v, '-s', 0, 1 << 20)), on()) },
    { short: 'a', long: 'columns', value: 'required', apply: (v) => ((style.align = int(v, '-a', 0, 1 << 10)), on()) },
    { short: 'q', long: 'quiet', value: 'optional', apply: () => count('quiet', 3)() },
    { short: 'z', long: 'successful-only', apply: () => ((style.status = ['successful']), on()) },
    { short: 'Z', long: 'failed-only', apply: () => ((style.status = ['failed']), on()) },
    {
      short: 'X', long: 'const-print-style', value: 'required', apply: (v) => {
        if (v !== 'raw' && v !== 'abbrev' && v !== 'verbose') throw new UsageError(`invalid -X argument: '${v}'`);
        style.constStyle = v;
        on();
      },
    },
    { short: 'v', long: 'no-abbrev', apply: () => ((style.verbose = true), on()) },
    { short: 'P', long: 'trace-path', value: 'required', apply: (v) => ((style.paths = [...(style.paths ?? []), resolve(v!)]), on()) },
    { long: 'deny', value: 'required', apply: (v) => usage(() => { const d = parseDeny(v!); a.deny.set(d.sysno, d.errno); }) },
    { long: 'policy', value: 'required', apply: (v) => (trace.policy = pathToFileURL(resolve(v!)).href) },
    { long: 'max-threads', value: 'required', apply: (v) => (a.maxThreads = int(v, '--max-threads', 1, 64)) },
    { long: 'inspect', value: 'optional', apply: (v) => (a.inspectPort = v === undefined ? 8090 : int(v, '--inspect', 0, 65535)) },
    { long: 'inspect-wait', value: 'optional', apply: (v) => ((a.inspectPort = v === undefined ? 8090 : int(v, '--inspect-wait', 0, 65535)), (a.inspectWait = true)) },
    { long: 'record', value: 'required', apply: (v) => (a.record = v) },
    {
      long: 'sandbox', value: 'required', apply: (v) => {
        if (v !== 'auto' && v !== 'require' && v !== 'off') throw new UsageError(`--sandbox needs auto, require or off (got '${v}')`);
        a.sandbox = v;
      },
    },
    { long: 'no-patch', apply: () => (a.noPatch = true) },
    { long: 'no-trace-ring', apply: () => (a.trace.ring = false) },
    { short: 'h', long: 'help', apply: () => (a.help = true) },
    { short: 'V', long: 'version', apply: () => (a.version = true) },
  ];
}

/**
 * Parses `systrap run [options] [--] PROGRAM [ARGS...]`. Tracing is on (strace's `trace=all`
 * unless `-e trace=` says otherwise) as soon as an option about trace lines is given (`-e trace=`,
 * `-o`, `-f`, `-t`, `-T`, `-y`, `-s`, ...); a bare `systrap run -- PROGRAM` prints nothing of
 * its own, and `-c` alone prints only the table.
 *
 * @throws UsageError with a one-line message (exit status 1, as strace).
 * @example
 * ```ts
 * parseRunArgs(['-tt', '-e', 'trace=openat', 'cat', '/etc/hostname']).trace.style; // { timestamps: 2 }
 * ```
 */
export function parseRunArgs(argv: readonly string[]): RunArgs {
  const st = newState();
  const { a, trace, style } = st;
  const i = parseOptions(argv, runOptions(st));
  if (a.help || a.version) return a;
  if (i >= argv.length) throw new UsageError('must have PROG [ARGS]');
  a.program = argv[i];
  a.args = argv.slice(i + 1);
  if (st.follow === 2) {
    if (a.outFile === undefined) throw new UsageError('-ff needs -o FILE (each process writes FILE.PID)');
    trace.perProcess = a.outFile;
    a.outFile = undefined;
  }
  style.follow = st.follow > 0;
  trace.toFile = a.outFile !== undefined;
  // -c alone: the table only (of the selected calls); any option about lines: strace's trace=all.
  const chosen = [...new Set(Object.values(SYS))].filter((nr) => (st.selection ? st.selection.has(nr) : true));
  if (trace.summary) trace.counted = chosen;
  trace.trace = st.lines && (!trace.summary || st.summaryAlso) ? chosen : [];
  style.on = trace.trace.length > 0 || (st.lines && (!trace.summary || st.summaryAlso));
  return a;
}
