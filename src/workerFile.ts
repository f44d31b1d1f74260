import { fileURLToPath } from 'node:url';
import { closeSync, existsSync, openSync, readSync } from 'node:fs';

/**
 * piscina loads a worker file with require() first, import() if that throws. Node 20's
 * require() of an ES module (on by default since 20.19) can abort the whole worker on an
 * internal assertion when many workers start at once (`facade->InstantiateModule`, seen in CI):
 * where the flag exists, workers refuse require() of ES modules, and piscina imports them.
 */
const NO_REQUIRE_ESM = process.allowedNodeEnvironmentFlags.has('--no-experimental-require-module') ? ['--no-experimental-require-module'] : [];

/**
 * The file and execArgv of a worker entry point (`workers/NAME`). The worker runs compiled
 * JavaScript (dist/workers/NAME.js) even when the caller runs from TypeScript sources: a
 * TypeScript loader in a worker opens cache files and spawns a compiler service that a worker's
 * exit leaks (fds, zombies). The .ts file is the fallback for a tree that was never built.
 *
 * Node's own exec flags are never passed on: workers refuse many of them
 * (ERR_WORKER_INVALID_EXEC_ARGV for `--expose-gc`, `--inspect`, …) and need none; the one
 * flag given is NO_REQUIRE_ESM's.
 *
 * The sentry's worker runs the CommonJS twin of its file where it is fresh (see twinOf): its
 * start is on a short run's critical path, and Node's ESM loader would add a few ms to it.
 * The others are piscina's, which loads a handler's file itself.
 *
 * @example
 * ```ts
 * const w = resolveWorker('runner');
 * new Piscina({ filename: w.file, execArgv: w.execArgv });
 * ```
 */
export function resolveWorker(name: 'tracer' | 'runner' | 'sentry'): { file: string; execArgv: string[] } {
  const fromSource = import.meta.url.endsWith('.ts');
  const built = fileURLToPath(new URL(fromSource ? `../dist/workers/${name}.js` : `../workers/${name}.js`, import.meta.url));
  if (existsSync(built)) return { file: (name === 'sentry' ? twinOf(built) : undefined) ?? built, execArgv: NO_REQUIRE_ESM };
  return { file: fileURLToPath(new URL(`../workers/${name}.ts`, import.meta.url)), execArgv: ['--import', 'tsx'] };
}


/** The first line of every file scripts/bundle.mjs writes in place of tsc's. */
const BUNDLE_BANNER = '// Bundled by scripts/bundle.mjs';

/**
 * The CommonJS twin (`x.cjs`) of a compiled file `x.js` that scripts/bundle.mjs replaced, or
 * undefined. Why the banner is checked: tsc run alone after the bundler writes `x.js` afresh
 * and leaves the old twin beside it, which must not run. bin/systrap.js makes the same test.
 *
 * @example
 * ```ts
 * const file = twinOf('/pkg/dist/workers/sentry.js') ?? '/pkg/dist/workers/sentry.js';
 * ```
 */
export function twinOf(file: string): string | undefined {
  const twin = file.replace(/\.js$/, '.cjs');
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const head = Buffer.alloc(BUNDLE_BANNER.length);
    readSync(fd, head, 0, head.length, 0);
    return head.toString('latin1') === BUNDLE_BANNER && existsSync(twin) ? twin : undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
