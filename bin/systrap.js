#!/usr/bin/env node
// The `systrap` command: a thin launcher for the compiled CLI (npm install builds dist/).
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { readdirSync, readlinkSync } from 'node:fs';

// `systrap run`: the sentry's worker starts first, while the CLI loads: its start (a worker's
// bootstrap and the sentry's code) is the longest part of a short run's. The CLI adopts it
// (startHostEarly in src/actors/hostPool.ts); for anything else, it is unref()ed and costs
// nothing but the CPU it took (not started for help or version). Its flag is workerFile.ts's
// (see NO_REQUIRE_ESM there).
const args = process.argv.slice(2);
const upTo = args.includes('--') ? args.indexOf('--') : args.length;
const asksHelp = args.slice(0, upTo).some((a) => ['-h', '--help', '-V', '--version'].includes(a));
if (args[0] === 'run' && !asksHelp) {
  try {
    // The fds open before the worker's own, and what each was: those the program may inherit
    // (see inheritedFds), not a number the worker's start reused.
    const links = {};
    for (const name of readdirSync('/proc/self/fd')) {
      try {
        links[name] = readlinkSync(`/proc/self/fd/${name}`);
      } catch {
        // the directory's own fd
      }
    }
    globalThis[Symbol.for('systrap.fdsAtStart')] = links;
  } catch {
    // no /proc: nothing is passed on anyway
  }
  try {
    const file = fileURLToPath(new URL('../dist/workers/sentry.js', import.meta.url));
    const flag = '--no-experimental-require-module';
    const worker = new Worker(file, { execArgv: process.allowedNodeEnvironmentFlags.has(flag) ? [flag] : [] });
    const early = { worker, file, failed: false };
    worker.on('error', () => (early.failed = true));
    worker.on('exit', () => (early.failed = true));
    worker.unref();
    globalThis[Symbol.for('systrap.earlyHost')] = early;
  } catch {
    // the CLI starts one of its own
  }
}
import('../dist/src/cli.js').then((m) => m.main(args)).then(
  (code) => process.exit(code ?? 0),
  (err) => {
    console.error(`systrap: ${err?.message ?? err}`);
    process.exit(1);
  },
);
