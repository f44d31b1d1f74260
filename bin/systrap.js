#!/usr/bin/env node
// The `systrap` command: a thin launcher for the compiled CLI (npm install builds dist/).
//
// CommonJS (bin/package.json), and so is what it loads for `run`, help and version: Node's ESM
// loader costs a few ms on each thread that starts it, and a short run waits for both the main
// thread and the sentry's worker (see scripts/bundle.mjs, "CommonJS twins").
'use strict';
const { Worker } = require('node:worker_threads');
const { closeSync, existsSync, openSync, readSync, readdirSync, readlinkSync } = require('node:fs');
const { join } = require('node:path');

const DIST = join(__dirname, '..', 'dist');

/**
 * The CommonJS twin of a file the bundler replaced (`x.js` -> `x.cjs`), or undefined: tsc alone
 * run after the bundler rewrites `x.js` (no banner) and leaves an old twin, which must not run.
 * The same test as src/workerFile.ts's `twinOf` (which this launcher cannot import cheaply).
 */
function twinOf(file) {
  const banner = '// Bundled by scripts/bundle.mjs';
  const twin = file.replace(/\.js$/, '.cjs');
  let fd;
  try {
    fd = openSync(file, 'r');
    const head = Buffer.alloc(banner.length);
    readSync(fd, head, 0, banner.length, 0);
    return head.toString('latin1') === banner && existsSync(twin) ? twin : undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

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
    const js = join(DIST, 'workers', 'sentry.js');
    const file = twinOf(js) ?? js;
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

// probe and inspect: the ESM bundle (their commands' code is split from it); anything else the
// CommonJS one where it is fresh.
const cliJs = join(DIST, 'src', 'cli.js');
const cjs = args[0] === 'probe' || args[0] === 'inspect' ? undefined : twinOf(cliJs);
const cli = cjs ? new Promise((resolve) => resolve(require(cjs))) : import(require('node:url').pathToFileURL(cliJs).href);
cli.then((m) => m.main(args)).then(
  (code) => process.exit(code ?? 0),
  (err) => {
    console.error(`systrap: ${err?.message ?? err}`);
    process.exit(1);
  },
);
