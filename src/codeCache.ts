import { createRequire } from 'node:module';
import { IMPORT_KEY, WARM_KEY } from './bundleHooks.js';

// Builtins by require(), not import: an ES module's import of a builtin builds a facade that
// reads every export, and node:fs's stream getters then load node:stream (~3 ms of a start-up
// on every thread that loads a bundle).
const require = createRequire(import.meta.url);
const { closeSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } = require('node:fs') as typeof import('node:fs');
const { homedir } = require('node:os') as typeof import('node:os');
const { basename, dirname, join } = require('node:path') as typeof import('node:path');
const { fileURLToPath } = require('node:url') as typeof import('node:url');
const { Script } = require('node:vm') as typeof import('node:vm');

/**
 * Loads the CommonJS bundles of `systrap run`'s hot path (the CLI's run module, the tracer and
 * sentry workers: see scripts/bundle.mjs) through V8's code cache, as Node 22's
 * module.enableCompileCache() would (Node 20 has none).
 *
 * Why: `systrap run -- /bin/true` spends more of its time compiling JavaScript, on three
 * threads and two cores, than doing anything else; a cache saved once after a run holds the
 * bytecode of every function that run needed (measured: 14 ms less on the main thread alone).
 *
 * Trust: V8 does not defend itself against a forged cache, so a cache file is read only from a
 * folder and a file owned by this user (or root) and writable by no one else, and is written
 * with mode 0600 under a private folder: the package's own `.cache/v8` where it may write, else
 * `$XDG_CACHE_HOME/systrap` (`~/.cache/systrap`). Its name holds the bundle's content hash, the
 * Node version and the architecture; V8 itself rejects a cache of other flags or a damaged one,
 * which is then written again. `SYSTRAP_NO_CODE_CACHE=1` turns all of it off.
 */

/** How a bundle's code was found: in a cache (`hit`), or compiled and why. */
export type CodeCacheState = 'hit' | 'miss' | 'rejected' | 'off';

/** A loaded bundle. */
export interface LoadedBundle {
  /** What the bundle's module.exports holds. */
  readonly exports: Record<string, unknown>;
  /** Whether the code came from a cache. */
  readonly cache: CodeCacheState;
  /**
   * Saves the cache now if there was none (or V8 refused it), holding every function compiled
   * so far; at most once, errors ignored. Returns the file written, if any.
   */
  saveCache(): string | undefined;
}

/** The package's root (this file is dist/src/codeCache.js or src/codeCache.ts). */
const ROOT = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '..' : '../..', import.meta.url));

/** A cache file's name: `${prefix}${key}${suffix}`, prefix and suffix naming bundle and Node. */
interface CacheName {
  file: string;
  prefix: string;
  suffix: string;
}

/** Folders a cache is looked for in (and written to, the first that can be made), in order. */
export function codeCacheDirs(): string[] {
  const xdg = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return [join(ROOT, '.cache', 'v8'), join(xdg, 'systrap')];
}

/** Whether a file or folder's owner and mode make it safe to trust (see the module note). */
function trusted(st: { uid: number; mode: number }): boolean {
  const me = process.geteuid?.() ?? -1;
  return (st.uid === me || st.uid === 0) && (st.mode & 0o022) === 0;
}

/** The cache's bytes, from the first folder holding a trusted file of that name. */
function readCache(dirs: readonly string[], name: string): Buffer | undefined {
  for (const dir of dirs) {
    let fd: number | undefined;
    try {
      if (!trusted(statSync(dir))) continue;
      fd = openSync(join(dir, name), 'r');
      if (!trusted(fstatSync(fd))) continue;
      return readFileSync(fd);
    } catch {
      // not there: the next folder
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }
  return undefined;
}

/**
 * Removes what earlier builds and writers left: caches of the same bundle and Node built from
 * other contents (`stalePrefix` + another key + `staleSuffix`), and temporary files older than a
 * minute (a worker that Node's exit terminated between its write and its rename leaves one).
 */
function removeStale(dir: string, name: string, stalePrefix: string, staleSuffix: string): void {
  const old = Date.now() - 60_000;
  for (const f of readdirSync(dir)) {
    const tmp = f.startsWith(stalePrefix) && f.endsWith('.tmp');
    const other = f !== name && f.startsWith(stalePrefix) && f.endsWith(staleSuffix);
    if (!tmp && !other) continue;
    try {
      if (other || statSync(join(dir, f)).mtimeMs < old) unlinkSync(join(dir, f));
    } catch {
      // gone already
    }
  }
}

/** Writes the cache to the first folder that can hold it; the file appears whole (rename). */
function writeCache(dirs: readonly string[], name: CacheName, data: Buffer): string | undefined {
  for (const dir of dirs) {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      if (!trusted(statSync(dir))) continue;
      removeStale(dir, name.file, name.prefix, name.suffix);
      const tmp = join(dir, `${name.file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
      writeFileSync(tmp, data, { mode: 0o600, flag: 'wx' });
      const file = join(dir, name.file);
      renameSync(tmp, file);
      return file;
    } catch {
      // read-only or not ours: the next folder
    }
  }
  return undefined;
}

/**
 * Loads the CommonJS bundle at `url`, whose content hash (from the build) is `key`, with its
 * code from the cache when there is one. Its exports are returned; `bundleWarm()` called by the
 * bundle's code (src/bundleHooks.ts) saves the cache if there was none. Precondition: the
 * bundle calls import() only through dynamicImport (vm code cannot run import()). `dirs`: where
 * caches are looked for and written (tests give their own).
 *
 * @example
 * ```ts
 * const b = loadBundle(new URL('./cliRun.bundle.cjs', import.meta.url), '3f2a9c0d1e4b5a67');
 * export const run = b.exports.run;
 * ```
 */
export function loadBundle(url: URL, key: string, dirs: readonly string[] = codeCacheDirs()): LoadedBundle {
  const file = fileURLToPath(url);
  const source = readFileSync(file, 'utf8');
  const off = process.env.SYSTRAP_NO_CODE_CACHE === '1';
  const prefix = `${basename(file)}-`;
  const suffix = `-${process.version}-${process.arch}.v8`;
  const name: CacheName = { file: `${prefix}${key}${suffix}`, prefix, suffix };
  const cachedData = off ? undefined : readCache(dirs, name.file);
  // Node's own CommonJS wrapper, so that line numbers in stack traces are the bundle's.
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, { filename: file, cachedData });
  const cache: CodeCacheState = off ? 'off' : !cachedData ? 'miss' : script.cachedDataRejected ? 'rejected' : 'hit';
  let saved = cache === 'hit' || off;
  const saveCache = (): string | undefined => {
    if (saved) return undefined;
    saved = true;
    try {
      return writeCache(dirs, name, script.createCachedData());
    } catch {
      return undefined;
    }
  };
  const g = globalThis as { [WARM_KEY]?: () => void; [IMPORT_KEY]?: (s: string) => Promise<unknown> };
  const before = g[WARM_KEY];
  g[WARM_KEY] = () => {
    before?.();
    saveCache();
  };
  g[IMPORT_KEY] ??= (specifier: string) => import(specifier);
  const module = { exports: {} as Record<string, unknown> };
  (script.runInThisContext() as (...args: unknown[]) => void).call(module.exports, module.exports, createRequire(file), module, file, dirname(file));
  return { exports: module.exports, cache, saveCache };
}
