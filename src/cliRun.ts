import { accessSync, closeSync, constants as fsc, openSync, statSync, writeSync } from 'node:fs';
import { delimiter } from 'node:path';
import { createPlatform } from './platform.js';
import { runProgram } from './sentry/run.js';
import type { RunArgs } from './cliRunArgs.js';
import { SystrapError } from './errors.js';
import type { InspectionEvent } from 'xstate';
import type { InspectorServer } from './inspect/server.js';

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
 * `systrap run [options] -- PROGRAM [ARGS...]`, its command line parsed (cliRunArgs.ts): runs
 * PROGRAM under the sentry and returns its exit status, or the signal that killed it.
 *
 * @example
 * ```ts
 * process.exitCode = await run(parseRunArgs(['-e', 'trace=openat', '--', '/bin/cat', '/etc/hostname']));
 * ```
 */
export async function run(a: RunArgs): Promise<number | { signal: number }> {
  const found = findProgram(a.program);
  if (!found.path) {
    console.error(`systrap: ${found.error!.message}`);
    return found.error!.status;
  }
  if (a.outFile !== undefined) {
    try {
      a.trace.outFd = openSync(a.outFile, 'w');
    } catch (e) {
      console.error(`systrap: Can't fopen '${a.outFile}': ${(e as Error).message}`);
      return 1;
    }
  }
  const inspection = await startInspection(a);
  if (!inspection) return 1;
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
    if (end.kind === 'killed') return { signal: end.signal };
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
