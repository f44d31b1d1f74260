/**
 * The code cache of the CLI's and workers' bundles (src/codeCache.ts): a first load compiles
 * and, once warm, saves; a later load takes the code from the cache; a cache that V8 refuses
 * (damaged) or that another user could have written is not used; the built CLI leaves its
 * caches private.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { codeCacheDirs, loadBundle } from '../src/codeCache.js';
import { bundleWarm, dynamicImport } from '../src/bundleHooks.js';

/** A folder holding a small CommonJS bundle, and the cache folder its tests use. */
function bundle(t: { teardown(f: () => void): void }, body = 'exports.twice = (x) => 2 * x;') {
  const dir = mkdtempSync(join(tmpdir(), 'systrap-cc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'b.bundle.cjs');
  // Big enough that V8 has functions to keep (a cache of a tiny script can be empty-ish).
  const filler = Array.from({ length: 200 }, (_, i) => `exports.f${i} = (x) => x + ${i};`).join('\n');
  writeFileSync(file, `${body}\n${filler}\n`);
  return { url: pathToFileURL(file), cacheDir: join(dir, 'cache') };
}

const cacheFiles = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.v8')) : []);

const CODE_CACHE = fileURLToPath(new URL('../src/codeCache.ts', import.meta.url));

/**
 * Loads the bundle in a new Node process (V8 keeps what it compiled for a source in memory:
 * within one process a second load would not read the cache at all), calls twice(21) and saves
 * the cache when `save`. Returns how the code was found and the result.
 */
function loadIn(url: URL, key: string, dir: string, save = false): { cache: string; value: number } {
  const code = `import { loadBundle } from ${JSON.stringify(CODE_CACHE)};
const b = loadBundle(new URL(${JSON.stringify(url.href)}), ${JSON.stringify(key)}, [${JSON.stringify(dir)}]);
const value = b.exports.twice(21);
if (${save}) b.saveCache();
console.log(JSON.stringify({ cache: b.cache, value }));`;
  const r = spawnSync(process.execPath, ['--import=tsx', '--input-type=module', '-e', code], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`the loading process failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { cache: string; value: number };
}

test('a first load compiles and saves once warm (0600 in a 0700 folder); the next load is a hit and runs the same code', (t) => {
  const { url, cacheDir } = bundle(t);
  const first = loadBundle(url, 'k1', [cacheDir]);
  t.is(first.cache, 'miss');
  t.is((first.exports.twice as (x: number) => number)(21), 42);
  t.deepEqual(cacheFiles(cacheDir), [], 'nothing is written before the bundle is warm');
  const written = first.saveCache();
  t.truthy(written);
  t.is(statSync(written!).mode & 0o777, 0o600);
  t.is(statSync(cacheDir).mode & 0o777, 0o700);
  t.is(first.saveCache(), undefined, 'saved at most once');
  t.deepEqual(loadIn(url, 'k1', cacheDir), { cache: 'hit', value: 42 }, 'another process takes the code from the file');
});

test('bundleWarm() from inside a bundle saves its cache; a new build (another key) replaces the old file', (t) => {
  const { url, cacheDir } = bundle(t, "exports.work = () => globalThis[Symbol.for('systrap.codeCache.warm')]?.();");
  const a = loadBundle(url, 'old', [cacheDir]);
  (a.exports.work as () => void)();
  t.is(cacheFiles(cacheDir).length, 1);
  t.true(cacheFiles(cacheDir)[0].includes('-old-'));
  const b = loadBundle(url, 'new', [cacheDir]);
  t.is(b.cache, 'miss', 'a cache of other contents is never looked up');
  bundleWarm();
  t.deepEqual(
    cacheFiles(cacheDir).map((f) => f.includes('-new-')),
    [true],
    'the stale cache of the same bundle and Node is gone',
  );
});

test('a damaged cache is refused by V8 (rejected) and written again; the bundle runs all the same', (t) => {
  const { url, cacheDir } = bundle(t);
  loadBundle(url, 'k', [cacheDir]).saveCache();
  const [name] = cacheFiles(cacheDir);
  writeFileSync(join(cacheDir, name), Buffer.alloc(4096, 0x5a));
  chmodSync(join(cacheDir, name), 0o600);
  t.deepEqual(loadIn(url, 'k', cacheDir, true), { cache: 'rejected', value: 42 });
  t.deepEqual(loadIn(url, 'k', cacheDir), { cache: 'hit', value: 42 }, 'written again by the load that refused it');
});

test('a cache file or folder others may write is not read (V8 does not defend against a forged cache)', (t) => {
  const { url, cacheDir } = bundle(t);
  loadBundle(url, 'k', [cacheDir]).saveCache();
  const [name] = cacheFiles(cacheDir);
  chmodSync(join(cacheDir, name), 0o666);
  t.is(loadIn(url, 'k', cacheDir).cache, 'miss', 'a group/world-writable file');
  chmodSync(join(cacheDir, name), 0o600);
  chmodSync(cacheDir, 0o777);
  t.is(loadIn(url, 'k', cacheDir).cache, 'miss', 'a group/world-writable folder');
  const other = loadBundle(url, 'k', [cacheDir]);
  t.is(other.saveCache(), undefined, 'nor written there');
  chmodSync(cacheDir, 0o700);
  t.is(loadIn(url, 'k', cacheDir).cache, 'hit');
});

test('SYSTRAP_NO_CODE_CACHE=1: nothing read, nothing written', (t) => {
  const { url, cacheDir } = bundle(t);
  loadBundle(url, 'k', [cacheDir]).saveCache();
  process.env.SYSTRAP_NO_CODE_CACHE = '1';
  try {
    const b = loadBundle(url, 'k', [cacheDir]);
    t.is(b.cache, 'off');
    t.is(b.saveCache(), undefined);
  } finally {
    delete process.env.SYSTRAP_NO_CODE_CACHE;
  }
});

test('dynamicImport outside a bundle is import(); inside, the loader imports (vm-compiled code cannot)', async (t) => {
  const os = await dynamicImport<typeof import('node:os')>('node:os');
  t.is(typeof os.cpus, 'function');
  const { url, cacheDir } = bundle(t, "exports.load = () => globalThis[Symbol.for('systrap.codeCache.import')]('node:path');");
  const b = loadBundle(url, 'k', [cacheDir]);
  const path = (await (b.exports.load as () => Promise<typeof import('node:path')>)()) as typeof import('node:path');
  t.is(path.join('a', 'b'), 'a/b');
});

test('the built CLI: a run leaves private caches of its bundles, and runs the same from them', (t) => {
  const cli = fileURLToPath(new URL('../bin/systrap.js', import.meta.url));
  const [dir] = codeCacheDirs();
  const run = () => spawnSync(process.execPath, [cli, 'run', '--', '/bin/echo', 'cached'], { encoding: 'utf8', timeout: 60_000 });
  const first = run();
  t.is(first.stdout, 'cached\n', first.stderr);
  // Written by the main thread at the end of the run, by the workers after their first work.
  for (const b of ['cliEarly', 'cliRun', 'tracer', 'sentry']) {
    const f = cacheFiles(dir).find((n) => n.startsWith(`${b}.bundle.cjs-`));
    t.truthy(f, `a cache of ${b}.bundle.cjs in ${dir}`);
    if (f) t.is(statSync(join(dir, f)).mode & 0o077, 0, `${f} is private`);
  }
  const second = run();
  t.is(second.stdout, 'cached\n', second.stderr);
  t.is(second.status, 0);
});
