import { accessSync, closeSync, constants as fsc, openSync, statSync, writeSync } from 'node:fs';
import { delimiter, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createPlatform } from './platform.js';
import { runProgram } from './sentry/run.js';
import { parseDeny, parseInject } from './sentry/strace/inject.js';
import { parseTraceSet } from './sentry/strace/traceSpec.js';
import type { TraceOptions } from './sentry/protocol.js';
import { SystrapError } from './errors.js';
import type { InspectionEvent } from 'xstate';
import type { InspectorServer } from './inspect/server.js';

export const RUN_USAGE = `usage: systrap run [options] -- PROGRAM [ARGS...]

Runs PROGRAM (an x86-64 Linux ELF executable, static or dynamic, or a '#!' script) in a stub
process; every syscall it makes goes through the systrap sentry.

options:
  -e trace=SET          print these syscalls strace-like (names, %file, %network, %process,
                        %memory, %signal, %desc, all, none, !name)
  -e inject=SC:error=E  make syscall(s) SC fail with errno E without running them
  -e inject=SC:retval=N make them return N without running them
  -o FILE               write the trace (and -c table) to FILE instead of stderr
  -f                    follow children (always done: every process of the tree is traced)
  -ff                   with -o FILE: each process's trace goes to FILE.PID
  -c                    count calls, errors and time per syscall; print a table at the end
  --deny SC[:ERRNO]     the kernel refuses SC (default EPERM), even from stub code
  --policy FILE.mjs     a module exporting handle(call) -> 'pass' | value | {errno} | 'kill'
  --max-threads N       most host threads running the program's threads (default: CPUs)
  --inspect[=PORT]      serve the live inspector (actor tree, statecharts, timeline) on
                        127.0.0.1:PORT (default 8090) while the program runs
  --record FILE         write every actor's lifecycle as JSONL (the inspector replays it)
  --sandbox=MODE        auto (default): new user, pid, mount and cgroup namespaces when the
                        kernel allows them; require: fail if it does not; off: none

exit status: the program's; 128+N if a signal N killed it; 127 if PROGRAM is not found, 126 if
it cannot be executed, 2 for a bad option, 1 if systrap itself failed.`;

/** A bad command line: a one-line message, exit status 2. */
class UsageError extends Error {}

interface RunArgs {
  program: string;
  args: string[];
  trace: TraceOptions;
  outFile?: string;
  deny: Map<number, number>;
  maxThreads?: number;
  inspectPort?: number;
  record?: string;
  sandbox: 'auto' | 'require' | 'off';
}

function parseArgs(argv: string[]): RunArgs {
  const trace: TraceOptions = { trace: [], outFd: 2, summary: false, inject: [] };
  const deny = new Map<number, number>();
  let outFile: string | undefined;
  let maxThreads: number | undefined;
  let inspectPort: number | undefined;
  let record: string | undefined;
  let sandbox: RunArgs['sandbox'] = 'auto';
  let perProcess = false;
  let i = 0;
  const value = (opt: string): string => {
    const v = argv[++i];
    if (v === undefined) throw new UsageError(`option ${opt} needs a value`);
    return v;
  };
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      i++;
      break;
    }
    if (!a.startsWith('-')) break;
    if (a === '-e' || a.startsWith('-e')) {
      const spec = a === '-e' ? value(a) : a.slice(2);
      const eq = spec.indexOf('=');
      const key = eq < 0 ? 'trace' : spec.slice(0, eq);
      const v = eq < 0 ? spec : spec.slice(eq + 1);
      if (key === 'trace') trace.trace = [...parseTraceSet(v)];
      else if (key === 'inject') {
        const inj = parseInject(v);
        trace.inject.push({ syscalls: [...inj.syscalls], error: inj.error, retval: inj.retval });
      } else throw new UsageError(`unknown -e qualifier '${key}' (trace= and inject= are supported)`);
    } else if (a === '-o') outFile = value(a);
    else if (a === '-f') continue;
    else if (a === '-ff') perProcess = true;
    else if (a === '-c') trace.summary = true;
    else if (a === '--deny') {
      const d = parseDeny(value(a));
      deny.set(d.sysno, d.errno);
    } else if (a === '--policy') trace.policy = pathToFileURL(resolve(value(a))).href;
    else if (a === '--max-threads') {
      maxThreads = Number(value(a));
      if (!Number.isInteger(maxThreads) || maxThreads < 1 || maxThreads > 64) throw new UsageError('--max-threads needs an integer in 1..64');
    } else if (a === '--inspect' || a.startsWith('--inspect=')) {
      inspectPort = a === '--inspect' ? 8090 : Number(a.slice('--inspect='.length));
      if (!Number.isInteger(inspectPort) || inspectPort < 0 || inspectPort > 65535) throw new UsageError('--inspect=PORT needs a port number');
    } else if (a === '--record') record = value(a);
    else if (a === '--sandbox' || a.startsWith('--sandbox=')) {
      const m = a === '--sandbox' ? value(a) : a.slice('--sandbox='.length);
      if (m !== 'auto' && m !== 'require' && m !== 'off') throw new UsageError(`--sandbox needs auto, require or off (got '${m}')`);
      sandbox = m;
    }
    else if (a === '-h' || a === '--help') throw new UsageError('');
    else throw new UsageError(`unknown option '${a}'`);
  }
  const program = argv[i];
  if (program === undefined) throw new UsageError('no program given');
  if (perProcess) {
    if (outFile === undefined) throw new UsageError('-ff needs -o FILE (each process writes FILE.PID)');
    trace.perProcess = outFile;
    outFile = undefined;
  }
  return { program, args: argv.slice(i + 1), trace, outFile, deny, maxThreads, inspectPort, record, sandbox };
}

/**
 * Finds PROGRAM as execvp would: a path if it has a slash, else the first match on PATH, named
 * DIR/PROGRAM as execvp names it (that name is what a script's interpreter gets as the script's
 * path, and AT_EXECFN).
 */
function findProgram(program: string): { path?: string; error?: { status: number; message: string } } {
  const check = (p: string): { path?: string; error?: { status: number; message: string } } => {
    let st;
    try {
      st = statSync(p);
    } catch {
      return { error: { status: 127, message: `${program}: No such file or directory` } };
    }
    if (st.isDirectory()) return { error: { status: 126, message: `${program}: Is a directory` } };
    try {
      accessSync(p, fsc.X_OK);
    } catch {
      return { error: { status: 126, message: `${program}: Permission denied` } };
    }
    return { path: p };
  };
  if (program.includes('/')) return check(program);
  for (const dir of (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter)) {
    if (!dir) continue;
    const p = `${dir}/${program}`;
    try {
      accessSync(p, fsc.X_OK);
      if (statSync(p).isFile()) return { path: p };
    } catch {
      // next
    }
  }
  return { error: { status: 127, message: `${program}: command not found` } };
}

/** The exit status for a loader error, as a shell would report it. */
function loaderStatus(e: SystrapError): number {
  // A script whose '#!' interpreter is missing is ENOENT too: 127, as env(1) and execvp users say.
  if (e.code === 'ENOENT' || e.code === 'EINTERP') return 127;
  return 126;
}

/**
 * `systrap run [options] -- PROGRAM [ARGS...]`: runs PROGRAM under the sentry and returns its
 * exit status (128+N when a signal killed it).
 *
 * @example
 * ```ts
 * process.exitCode = await run(['-e', 'trace=openat', '--', '/bin/cat', '/etc/hostname']);
 * ```
 */
export async function run(argv: string[]): Promise<number> {
  let a: RunArgs;
  try {
    a = parseArgs(argv);
  } catch (e) {
    if (e instanceof UsageError && e.message === '') {
      console.log(RUN_USAGE);
      return 0;
    }
    console.error(`systrap: ${(e as Error).message}\nTry 'systrap run --help'.`);
    return 2;
  }
  const found = findProgram(a.program);
  if (!found.path) {
    console.error(`systrap: ${found.error!.message}`);
    return found.error!.status;
  }
  if (a.outFile !== undefined) {
    try {
      a.trace.outFd = openSync(a.outFile, 'w');
    } catch (e) {
      console.error(`systrap: cannot open ${a.outFile}: ${(e as Error).message}`);
      return 2;
    }
  }
  const inspection = await startInspection(a);
  if (!inspection) return 2;
  const platform = await createPlatform({ maxSysmsgThreads: a.maxThreads, pool: false, warmSentry: true, sandbox: a.sandbox, ...(inspection.observer ? { inspect: inspection.observer } : {}) });
  // Forwarded to the program (the terminal's foreground group, see sys_tty.ts): SIGTSTP and
  // SIGWINCH too, which the real terminal sends Node's group for the program's jobs.
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGTSTP', 'SIGWINCH'] as const;
  const forwarders: Array<[NodeJS.Signals, () => void]> = [];
  try {
    const env = Object.entries(process.env).map(([k, v]) => `${k}=${v}`);
    let handle;
    try {
      handle = await runProgram(platform, {
        // As found, not resolved: it is the name execve is given (runProgram resolves it).
        path: found.path,
        argv: [a.program, ...a.args],
        env,
        trace: a.trace,
        deny: a.deny,
      });
    } catch (e) {
      const err = e as SystrapError;
      if (['ENOENT', 'EACCES', 'ENOEXEC', 'EARCH', 'EINTERP', 'ELOOP', 'E2BIG', 'ENOMEM'].includes(err.code)) {
        console.error(`systrap: ${a.program}: ${err.message}`);
        return loaderStatus(err);
      }
      throw e;
    }
    for (const s of signals) {
      const f = () => handle.kill(constantsSignal(s));
      process.on(s, f);
      forwarders.push([s, f]);
    }
    // The program's first process stopped: so does systrap, as the program would at a shell
    // (whose `fg` then continues systrap, which continues the program).
    handle.onStop((stopped) => {
      if (stopped) process.kill(process.pid, 'SIGSTOP');
    });
    const cont = () => handle.kill(18); // SIGCONT
    process.on('SIGCONT', cont);
    forwarders.push(['SIGCONT', cont]);
    const end = await handle.done;
    if (end.summary) writeSync(a.trace.outFd, end.summary);
    if (end.kind === 'exited') return end.status;
    if (end.kind === 'killed') return 128 + end.signal;
    console.error(`systrap: ${end.message} (${end.code})`);
    return 1;
  } finally {
    for (const [s, f] of forwarders) process.off(s, f);
    await platform.close();
    await inspection.close();
    if (a.outFile !== undefined) closeSync(a.trace.outFd);
  }
}

function constantsSignal(name: string): number {
  return (({ SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGUSR1: 10, SIGUSR2: 12, SIGTERM: 15, SIGTSTP: 20, SIGWINCH: 28 }) as Record<string, number>)[name];
}

/** The inspector server and/or the JSONL recording asked for; undefined after a one-line error. */
async function startInspection(a: RunArgs): Promise<{ observer?: (e: InspectionEvent) => void; close(): Promise<void> } | undefined> {
  if (a.inspectPort === undefined && a.record === undefined) return { close: async () => undefined };
  // Loaded only when asked for: the WebSocket server costs start-up time every run would pay.
  const { InspectionRecorder } = await import('./inspect/record.js');
  const { startInspectorServer } = await import('./inspect/server.js');
  let server: InspectorServer | undefined;
  let fd: number | undefined;
  try {
    if (a.record !== undefined) fd = openSync(a.record, 'w');
    if (a.inspectPort !== undefined) {
      server = await startInspectorServer({ port: a.inspectPort });
      console.error(`systrap: inspector at ${server.url}`);
    }
  } catch (e) {
    console.error(`systrap: ${a.record !== undefined && fd === undefined ? `cannot open ${a.record}` : 'cannot start the inspector'}: ${(e as Error).message}`);
    if (fd !== undefined) closeSync(fd);
    return undefined;
  }
  const rec = new InspectionRecorder((r) => {
    if (fd !== undefined) writeSync(fd, JSON.stringify(r) + '\n');
    server?.push(r);
  });
  return {
    observer: rec.observer,
    close: async () => {
      if (fd !== undefined) closeSync(fd);
      await server?.close();
    },
  };
}
