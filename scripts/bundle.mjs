/**
 * Bundles the compiled CLI and worker entry points (run after tsc: `npm run build:ts`).
 *
 * Why: `systrap run` starts Node, then imports ~80 modules on the main thread and ~100 in the
 * sentry worker, each a file to find, read, parse and link; one file per entry point starts
 * ~100 ms sooner. And the three that every run needs are CommonJS bundles loaded through V8's
 * code cache (src/codeCache.ts), since compiling them is the largest part of what is left.
 *
 * Each bundle replaces the file tsc wrote for its entry point, or sits beside it with a small
 * loader in its place, so that every path a module finds from its `import.meta.url`
 * (package.json, the addon, the workers) stays right, and so that a tree compiled again by tsc
 * alone runs tsc's fresh files, never an old bundle:
 *
 *   dist/src/cli.js (+ dist/src/*.chunk.js: what cli.ts imports only for one command), ESM
 *   dist/src/cliRun.js, the loader of dist/src/cliRun.bundle.cjs
 *   dist/workers/{tracer,sentry}.js, the loaders of dist/workers/{tracer,sentry}.bundle.cjs
 *   dist/workers/runner.js, ESM
 *
 * and, beside them, their CommonJS twins for the paths of `systrap run` (bin/systrap.js takes
 * them when the file tsc wrote has been replaced by this script, i.e. the twins are not stale):
 * Node's ESM loader costs a few ms on each thread that starts it, on a run's critical path.
 *
 *   dist/src/cli.cjs (cli.ts whose imports of cliEarly.js and cliRun.js are require()s of:)
 *   dist/src/cliEarly.cjs, dist/src/cliRun.cjs, dist/workers/sentry.cjs, loaders of the same
 *   bundles through dist/src/codeCache.cjs (codeCache.ts as CommonJS)
 *
 * Left out (imported from node_modules or dist/ as they are): ws and node-gyp-build (found at
 * run time), piscina (loaded at a pool's first start), and src/inspect/** (the viewer server finds the
 * viewer's files from its own place in dist/). The CommonJS bundles import nothing but
 * through src/bundleHooks.ts's dynamicImport (code compiled by vm cannot run import()): the
 * build fails if one does.
 *
 * Usage: node scripts/bundle.mjs
 */
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
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
  target: 'node20',
  // piscina: loaded at a pool's first start, from its installed folder (src/actors/piscinaModule.ts).
  external: ['ws', 'node-gyp-build', 'piscina'],
  logLevel: 'warning',
  legalComments: 'none',
};

const BANNER = '// Bundled by scripts/bundle.mjs from the files tsc wrote.';
/** Entry points written by tsc that this script replaces. */
const ESM_ENTRIES = ['dist/src/cli.js', 'dist/workers/runner.js'];
const CJS_ENTRIES = ['dist/src/cliEarly.js', 'dist/src/cliRun.js', 'dist/workers/tracer.js', 'dist/workers/sentry.js'];
/** Global key of the early bundle's modules (see buildEarly). */
const SHARED = "Symbol.for('systrap.bundle.shared')";
// A second run without tsc in between would bundle bundles (whose chunks it is about to remove).
for (const e of [...ESM_ENTRIES, ...CJS_ENTRIES]) {
  if (readFileSync(`${root}${e}`, 'utf8').startsWith(BANNER)) {
    console.error(`bundle: ${e} is a bundle already: run tsc first (npm run build:ts)`);
    process.exit(1);
  }
}

// Chunks of an earlier build (their names carry a hash): gone before the new ones are written.
for (const f of readdirSync(`${root}dist/src`)) if (f.endsWith('.chunk.js')) rmSync(`${root}dist/src/${f}`);

const esm = { ...common, format: 'esm', allowOverwrite: true, banner: { js: BANNER }, plugins: [inspectExternal] };
const cjs = {
  ...common,
  format: 'cjs',
  write: false,
  // import.meta.url of every module is the bundle's (same folder as the file tsc wrote).
  define: { 'import.meta.url': '__bundleUrl' },
  banner: { js: `${BANNER}\nvar __bundleUrl = require('node:url').pathToFileURL(__filename).href;` },
  plugins: [inspectExternal],
};

// The early bundle (cliEarly: the tracer pool and what it imports) first: the run module's
// bundle takes those modules from it (see shareFrom) instead of holding second copies.
const early = await buildEarly();
// The CommonJS CLI, built from tsc's cli.js before the ESM bundle below takes its place.
const cliCjs = await build({ ...cjs, entryPoints: ['dist/src/cli.js'], plugins: [...cjs.plugins, cjsTwins(/^\.\/(cliEarly|cliRun)\.js$/)] });
const [, , ...bundles] = await Promise.all([
  build({ ...esm, entryPoints: { cli: 'dist/src/cli.js' }, outdir: 'dist/src', splitting: true, chunkNames: '[name]-[hash].chunk', plugins: [...esm.plugins, apart(/^\.\/(cliRun|cliEarly)\.js$/)] }),
  build({ ...esm, entryPoints: ['dist/workers/runner.js'], outfile: 'dist/workers/runner.js' }),
  build({ ...cjs, entryPoints: ['dist/src/cliRun.js'], plugins: [...cjs.plugins, shareFrom(early.shared)] }),
  ...['dist/workers/tracer.js', 'dist/workers/sentry.js'].map((e) => build({ ...cjs, entryPoints: [e] })),
]);
writeLoader('dist/src/cliEarly.js', early.text);
writeLoader('dist/src/cliRun.js', bundles[0].outputFiles[0].text, ["import './cliEarly.js'; // its modules first (see shareFrom)"]);
writeLoader('dist/workers/tracer.js', bundles[1].outputFiles[0].text);
writeLoader('dist/workers/sentry.js', bundles[2].outputFiles[0].text);
// The CommonJS twins (see the module note): the code cache's loader, the CLI, and loaders of
// the bundles `systrap run` loads on the main thread and in the sentry's worker.
const codeCacheCjs = await build({ ...cjs, entryPoints: ['dist/src/codeCache.js'] });
writeFileSync(`${root}dist/src/codeCache.cjs`, codeCacheCjs.outputFiles[0].text);
writeFileSync(`${root}dist/src/cli.cjs`, cliCjs.outputFiles[0].text);
writeCjsLoader('dist/src/cliEarly.js', early.text);
writeCjsLoader('dist/src/cliRun.js', bundles[0].outputFiles[0].text, ["require('./cliEarly.cjs'); // its modules first (see shareFrom)"]);
writeCjsLoader('dist/workers/sentry.js', bundles[2].outputFiles[0].text);

/**
 * Builds the early bundle: cliEarly.js's module graph, whose entry also registers the
 * namespace of each of its modules under a global key for the run module's
 * bundle. Returns its text and the registered keys.
 */
async function buildEarly() {
  const probe = await build({ ...cjs, entryPoints: ['dist/src/cliEarly.js'], metafile: true });
  const mods = Object.keys(probe.metafile.inputs).filter((p) => p.startsWith('dist/src/'));
  const entry = [
    ...mods.map((p, i) => `import * as m${i} from './${p}';`),
    `globalThis[${SHARED}] = { ${mods.map((p, i) => `'${p}': m${i}`).join(', ')} };`,
    "export * from './dist/src/cliEarly.js';",
  ].join('\n');
  const out = await build({ ...cjs, stdin: { contents: entry, resolveDir: root, sourcefile: 'cliEarly.entry.js', loader: 'js' } });
  return { text: out.outputFiles[0].text, shared: new Set(mods) };
}

/** Imports of the early bundle's modules resolved to its registered namespaces. */
function shareFrom(shared) {
  return {
    name: 'share-from-early',
    setup(b) {
      b.onResolve({ filter: /.*/ }, (args) => {
        if (args.kind === 'entry-point') return undefined;
        const key = args.path.startsWith('.') ? relative(root, resolve(args.resolveDir, args.path)) : undefined;
        return key !== undefined && shared.has(key) ? { path: key, namespace: 'shared' } : undefined;
      });
      // An ES module of constants, so that importers use them directly: a CommonJS stub
      // (module.exports = the namespace) would have every importer copy all its properties
      // (esbuild's __toESM: ~4 ms of the run module's load). The names are tsc's file's; a
      // name missing here fails the build ("No matching export"). Shared modules export no
      // `let` (a copied binding would not follow it).
      b.onLoad({ filter: /.*/, namespace: 'shared' }, (args) => {
        const names = Object.keys(exportsOf(args.path));
        if (names.includes('default')) throw new Error(`bundle: ${args.path} has a default export: share it by name`);
        const text = readFileSync(`${root}${args.path}`, 'utf8');
        if (/^export (let|var) /m.test(text)) throw new Error(`bundle: ${args.path} exports a let or var: see shareFrom`);
        return { contents: `export const { ${names.join(', ')} } = globalThis[${SHARED}][${JSON.stringify(args.path)}];`, loader: 'js' };
      });
    },
  };
}

/**
 * Imports of `filter` (the ESM loaders of bundles) turned into require() of their CommonJS
 * twins (see writeCjsLoader), so that a CommonJS bundle importing them, even by import(),
 * never starts Node's ESM loader. Other imports of the CLI's own commands stay import()s.
 */
function cjsTwins(filter) {
  return {
    name: 'cjs-twins',
    setup(b) {
      b.onResolve({ filter }, (args) => ({ path: args.path, namespace: 'twin' }));
      b.onLoad({ filter: /.*/, namespace: 'twin' }, (args) => ({ contents: `module.exports = require(${JSON.stringify(args.path.replace(/\.js$/, '.cjs'))});`, loader: 'js' }));
      b.onResolve({ filter: /\.cjs$/, namespace: 'twin' }, (args) => ({ path: args.path, external: true }));
      b.onResolve({ filter: /^\.\/cli(Probe|Inspect)\.js$/ }, (args) => ({ path: args.path, external: true }));
    },
  };
}

/** Imports of `filter` left as imports (of the loaders written below). */
function apart(filter) {
  return { name: 'apart', setup: (b) => b.onResolve({ filter }, (args) => ({ path: args.path, external: true })) };
}

/**
 * Writes `text` as ENTRY's bundle (ENTRY with .bundle.cjs) and ENTRY as its loader: the same
 * exports as tsc's file had (a default one, a piscina handler, and named ones).
 */
function writeLoader(entry, text, before = []) {
  // import() left in a CommonJS bundle would throw when vm-compiled code runs it.
  const dynamic = text.match(/\bimport\([^)]*\)/g)?.filter((m) => m !== 'import(specifier)');
  if (dynamic?.length) throw new Error(`bundle: ${entry} calls import() (${dynamic.join(', ')}): use dynamicImport (src/bundleHooks.ts)`);
  const bundleFile = entry.replace(/\.js$/, '.bundle.cjs');
  writeFileSync(`${root}${bundleFile}`, text);
  const key = createHash('sha256').update(text).digest('hex').slice(0, 16);
  const codeCache = entry.startsWith('dist/src/') ? './codeCache.js' : '../src/codeCache.js';
  const name = bundleFile.split('/').pop();
  const exported = exportsOf(entry);
  const names = Object.keys(exported).filter((n) => n !== 'default');
  const lines = [
    BANNER,
    `// The loader of ${name}, compiled with a V8 code cache: see src/codeCache.ts.`,
    ...before,
    `import { loadBundle } from '${codeCache}';`,
    `const bundle = loadBundle(new URL('./${name}', import.meta.url), '${key}');`,
    ...(names.length ? [`export const { ${names.join(', ')} } = bundle.exports;`] : []),
    ...(exported.default ? ['export default bundle.exports.default;'] : []),
  ];
  writeFileSync(`${root}${entry}`, `${lines.join('\n')}\n`);
}

/**
 * Writes ENTRY's CommonJS loader (ENTRY with .cjs) of the bundle writeLoader wrote from `text`:
 * the same loading through the code cache, its exports as module.exports, and no ESM loader.
 * Precondition: writeLoader(entry, text) ran (the bundle file exists).
 */
function writeCjsLoader(entry, text, before = []) {
  const key = createHash('sha256').update(text).digest('hex').slice(0, 16);
  const name = entry.replace(/\.js$/, '.bundle.cjs').split('/').pop();
  const codeCache = entry.startsWith('dist/src/') ? './codeCache.cjs' : '../src/codeCache.cjs';
  const lines = [
    BANNER,
    `// The CommonJS loader of ${name}, compiled with a V8 code cache: see src/codeCache.ts.`,
    "'use strict';",
    ...before,
    `const { loadBundle } = require('${codeCache}');`,
    `module.exports = loadBundle(require('node:url').pathToFileURL(require('node:path').join(__dirname, '${name}')), '${key}').exports;`,
  ];
  writeFileSync(`${root}${entry.replace(/\.js$/, '.cjs')}`, `${lines.join('\n')}\n`);
}

/** The names tsc's file exports (read from its export statements). */
function exportsOf(entry) {
  const text = readFileSync(`${root}${entry}`, 'utf8');
  const names = {};
  for (const m of text.matchAll(/^export (?:async )?(?:function\*?|const|let|class) (\w+)/gm)) names[m[1]] = true;
  for (const m of text.matchAll(/^export \{([^}]*)\}/gm)) for (const part of m[1].split(',')) names[part.trim().split(/\s+as\s+/).pop()] = true;
  if (/^export default /m.test(text)) names.default = true;
  delete names[''];
  return names;
}
