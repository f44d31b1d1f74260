/**
 * Bundles the compiled CLI and worker entry points in place (run after tsc: `npm run build:ts`).
 *
 * Why: `systrap run` starts Node, then imports ~80 modules on the main thread and ~100 in the
 * sentry worker, each a file to find, read, parse and link; one file per entry point starts
 * ~100 ms sooner. Each bundle replaces the file tsc wrote for its entry point, so that every
 * path a module finds from its `import.meta.url` (package.json, the addon, the workers) stays
 * right, and so that a tree compiled again by tsc alone runs tsc's fresh files, never an old
 * bundle:
 *
 *   dist/src/cli.js (+ dist/src/*.chunk.js: what cli.ts imports only for one command)
 *   dist/workers/NAME.js for the tracer, runner and sentry workers
 *
 * Left out (imported from node_modules or dist/ as they are): piscina (it starts its workers
 * from its own folder), ws and node-gyp-build (found at run time), and src/inspect/** (the
 * viewer server finds the viewer's files from its own place in dist/).
 *
 * Usage: node scripts/bundle.mjs
 */
import { build } from 'esbuild';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Imports of src/inspect/** stay imports of the compiled files in dist/src/inspect/. */
const inspectExternal = {
  name: 'inspect-external',
  setup(b) {
    b.onResolve({ filter: /(^|\/)inspect\// }, (args) => (args.importer.includes('/dist/src/inspect/') ? undefined : { path: args.path, external: true }));
  },
};

const common = {
  absWorkingDir: root,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['piscina', 'ws', 'node-gyp-build'],
  logLevel: 'warning',
  legalComments: 'none',
  plugins: [inspectExternal],
};

const BANNER = '// Bundled by scripts/bundle.mjs from the files tsc wrote.';
const ENTRIES = ['dist/src/cli.js', ...['tracer', 'runner', 'sentry'].map((n) => `dist/workers/${n}.js`)];
// A second run without tsc in between would bundle bundles (whose chunks it is about to remove).
for (const e of ENTRIES) {
  if (readFileSync(`${root}${e}`, 'utf8').startsWith(BANNER)) {
    console.error(`bundle: ${e} is a bundle already: run tsc first (npm run build:ts)`);
    process.exit(1);
  }
}

// Chunks of an earlier build (their names carry a hash): gone before the new ones are written.
for (const f of readdirSync(`${root}dist/src`)) if (f.endsWith('.chunk.js')) rmSync(`${root}dist/src/${f}`);

const inPlace = { ...common, allowOverwrite: true, banner: { js: BANNER } };
await Promise.all([
  build({ ...inPlace, entryPoints: { cli: 'dist/src/cli.js' }, outdir: 'dist/src', splitting: true, chunkNames: '[name]-[hash].chunk' }),
  ...ENTRIES.slice(1).map((e) => build({ ...inPlace, entryPoints: [e], outfile: e })),
]);
