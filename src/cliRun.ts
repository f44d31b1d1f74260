import { closeSync, openSync, writeSync } from 'node:fs';
import { findProgram } from './sentry/exec/findProgram.js';
import { createPlatform } from './platform.js';
import { runProgram } from './sentry/run.js';
import type { RunArgs } from './cliRunArgs.js';
import { SystrapError } from './errors.js';
import { bundleWarm, dynamicImport } from './bundleHooks.js';
import type { InspectionEvent } from 'xstate';
import type { InspectorServer } from './inspect/server.js';
import type { RingStats } from './sentry/protocol.js';

/** The exit status for a loader error, as a shell would report it. */
function loaderStatus(e: SystrapError): number {
  // A script whose '#!' interpreter is missing is ENOENT too: 127, as env(1) and execvp users say.
  if (e.code === 'ENOENT' || e.code === 'EINTERP') return 127;
  return 126;
}

/**
 * `systrap run [options] -- PROGRAM [ARGS...]`, its command line parsed (cliRunArgs.ts): runs
 * PROGRAM under the sentry and returns its exit status, or the signal that killed it. `inherit`:
 * Node's fds the program gets at the same numbers besides stdio (see inheritedFds).
 *
 * @example
 * ```ts
 * process.exitCode = await run(parseRunArgs(['-e', 'trace=openat', '--', '/bin/cat', '/etc/hostname']));
 * ```
 */
export async function run(a: RunArgs, inherit: readonly number[] = []): Promise<number | { signal: number }> {
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
  if (!inspection || 'signal' in inspection) return inspection ?? 1;
  // One tracer thread and no source stub until one is needed: a program's transactions are few
  // and short, and a sandboxed run never clones the source (each thread costs a worker's start).
  const platform = await createPlatform({ maxSysmsgThreads: a.maxThreads, pool: false, warmSentry: true, sandbox: a.sandbox, tracerThreads: 1, lazySource: true, ...(inspection.observer ? { inspect: inspection.observer } : {}) });
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
        inherit,
        ...(a.noPatch ? { patch: false } : {}),
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
    if (end.summary) writeSync(a.trace.outFd, end.summary + patchedLine(end.patched) + ringLine(end.ring));
    if (end.kind === 'exited') return end.status;
    if (end.kind === 'killed') return { signal: end.signal };
    console.error(`systrap: ${end.message} (${end.code})`);
    return 1;
  } finally {
    for (const [s, f] of forwarders) process.off(s, f);
    // systrap exits as soon as this returns (bin/systrap.js): what an orderly close would do
    // (kill and reap the stubs, end the workers) Node's exit does too, since every stub and
    // sysmsg thread dies with its tracer and with Node (PDEATHSIG, PTRACE_O_EXITKILL, the
    // sandbox's init) and init reaps them. So the close is not waited for, unless the inspector
    // must still see the last lifecycle steps.
    const closing = platform.close();
    if (a.inspectPort !== undefined || a.record !== undefined) await closing;
    else closing.catch(() => undefined);
    await inspection.close();
    if (a.outFile !== undefined) closeSync(a.trace.outFd);
    // Every function of a run has been compiled by now: a first run saves the code cache.
    bundleWarm();
  }
}

function constantsSignal(name: string): number {
  return (({ SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGUSR1: 10, SIGUSR2: 12, SIGTERM: 15, SIGTSTP: 20, SIGWINCH: 28 }) as Record<string, number>)[name];
}

/**
 * The inspector server and/or the JSONL recording asked for; undefined after a one-line error,
 * `{ signal }` when Ctrl-C came while `--inspect-wait` held the program. Plain `--inspect`
 * serves while the program runs (a page open at its end keeps what it got); `--inspect-wait`
 * holds the program until a page (any WebSocket client) connects, so that the page sees it from
 * its start, and keeps serving after its end until SIGINT/SIGTERM.
 */
async function startInspection(a: RunArgs): Promise<{ observer?: (e: InspectionEvent) => void; close(): Promise<void> } | { signal: number } | undefined> {
  if (a.inspectPort === undefined && a.record === undefined) return { close: async () => undefined };
  // Loaded only when asked for: the WebSocket server costs start-up time every run would pay.
  // Not bundled (the viewer server finds its files from its own place in dist/).
  const { InspectionRecorder } = await dynamicImport<typeof import('./inspect/record.js')>(new URL('./inspect/record.js', import.meta.url).href);
  const { startInspectorServer } = await dynamicImport<typeof import('./inspect/server.js')>(new URL('./inspect/server.js', import.meta.url).href);
  let server: InspectorServer | undefined;
  let fd: number | undefined;
  try {
    if (a.record !== undefined) fd = openSync(a.record, 'w');
    if (a.inspectPort !== undefined) {
      server = await startInspectorServer({ port: a.inspectPort });
      // A short run is over before a page can open: say how not to miss it, on the same line
      // (a second `systrap:` line would read as a complaint).
      console.error(`systrap: inspector at ${server.url}${a.inspectWait ? '' : ' (until the program ends; --inspect-wait holds it for a viewer)'}`);
    }
  } catch (e) {
    console.error(`systrap: ${a.record !== undefined && fd === undefined ? `cannot open ${a.record}` : 'cannot start the inspector'}: ${(e as Error).message}`);
    if (fd !== undefined) closeSync(fd);
    return undefined;
  }
  const rec = new InspectionRecorder(
    (r) => {
      if (fd !== undefined) writeSync(fd, JSON.stringify(r) + '\n');
      server?.push(r);
    },
    { program: a.program, argv: [a.program, ...a.args] },
  );
  // Our own SIGINT/SIGTERM listeners: the program's forwarders are not installed yet (waiting)
  // or removed already (after its end), so Ctrl-C is for systrap.
  const signalled = () => {
    let stop = () => undefined as void;
    const signal = new Promise<number>((resolve) => {
      const [int, term] = [() => (stop(), resolve(2)), () => (stop(), resolve(15))];
      stop = () => void process.off('SIGINT', int).off('SIGTERM', term);
      process.on('SIGINT', int).on('SIGTERM', term);
    });
    return { signal, stop };
  };
  const wait = a.inspectWait && server ? server : undefined;
  if (wait && wait.connections === 0) {
    console.error('systrap: the program starts when a viewer connects (open the page above; Ctrl-C to give up)');
    const interrupt = signalled();
    const signal = await Promise.race([wait.connected().then(() => 0), interrupt.signal]);
    interrupt.stop();
    if (signal) {
      if (fd !== undefined) closeSync(fd);
      await wait.close();
      return { signal };
    }
  }
  return {
    observer: rec.observer,
    close: async () => {
      if (fd !== undefined) closeSync(fd);
      server?.setMode('ended');
      if (wait) {
        console.error(`systrap: the program has ended; the inspector stays at ${wait.url} until Ctrl-C`);
        await signalled().signal;
      }
      await server?.close();
    },
  };
}

/**
 * The line `-c` adds under strace's table: the call sites syscall patching rewrote and the calls
 * made through them, which entered the stub with no signal (see RunProgramOptions.patch).
 */
function patchedLine(p: { sites: number; calls: number } | undefined): string {
  return p ? `systrap: ${p.sites} call site${p.sites === 1 ? '' : 's'} patched, ${p.calls} call${p.calls === 1 ? '' : 's'} made through them with no signal\n` : '';
}

/**
 * The line `-c` adds for the trace ring: the calls the program's stubs made and recorded
 * themselves (no round trip), and how often one waited for room (see TraceOptions.ring).
 */
function ringLine(r: RingStats | undefined): string {
  if (!r || r.records === 0) return '';
  const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? '' : 's'}`;
  const over = r.corrupt > 0 ? `, written over by the program ${plural(r.corrupt, 'time')} (what it held then was skipped)` : '';
  return `systrap: ${plural(r.records, 'call')} made and recorded by the stub (trace ring), ${plural(r.fullWaits, 'wait')} for room${over}\n`;
}
