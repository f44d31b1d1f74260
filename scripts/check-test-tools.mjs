#!/usr/bin/env node
/**
 * Checks up front that every system tool the tests run (test/tools.json) is here, so that
 * `npm test` on a machine without one says what to install instead of failing tests one by one
 * further on. npm's pretest runs it; .ci/run asks it which packages to install.
 *
 * Usage: node scripts/check-test-tools.mjs [--only-path] [--missing-packages]
 *   (no option)         one line per missing tool on stderr, `systrap tests need TOOL: apt-get
 *                       install PACKAGE`, and exit 1; nothing and exit 0 when all are here.
 *   --missing-packages  the Debian packages of the missing tools on stdout, one a line, exit 0.
 *   --only-path         look on PATH only, not also in Debian's bin folders (for its own test).
 *
 * Plain Node, no dependency and no TypeScript: it runs before anything is compiled, and fast
 * (file checks, and one `gcc -print-file-name` when gcc is here).
 */
import { spawnSync } from 'node:child_process';
import { accessSync, closeSync, constants, existsSync, openSync, readFileSync, readSync, realpathSync, statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where Debian installs programs: a package installed counts even if PATH misses its folder. */
export const DEBIAN_BIN_DIRS = ['/usr/bin', '/bin', '/usr/sbin', '/sbin'];

/** The rows of test/tools.json: { tool, package, check?, for }. */
export function toolTable() {
  return JSON.parse(readFileSync(new URL('../test/tools.json', import.meta.url), 'utf8')).tools;
}

function executable(p) {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Executable files called `name` in `dirs`, in that order, once each (by real path). */
export function toolCandidates(name, dirs) {
  if (isAbsolute(name)) return executable(name) ? [name] : [];
  const out = [];
  const seen = new Set();
  for (const dir of dirs) {
    const p = dir ? join(dir, name) : '';
    if (!p || !executable(p)) continue;
    const real = realpathSync(p);
    if (seen.has(real)) continue;
    seen.add(real);
    out.push(p);
  }
  return out;
}

/** True if the file starts with the ELF magic (a program, not a script or a pyenv shim). */
export function isElf(path) {
  try {
    const fd = openSync(path, 'r');
    try {
      const b = Buffer.alloc(4);
      return readSync(fd, b, 0, 4, 0) === 4 && b.readUInt32BE(0) === 0x7f454c46;
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
}

/**
 * Why a row's tool is not usable here (one line's worth), or undefined when it is. `found` maps
 * tool names already checked to their path, for rows that depend on another (libc.a on gcc).
 */
function problem(row, dirs, found) {
  if (row.check === 'gcc-file') {
    // Asked of gcc, as test/fixtures/build.ts does: without libc.a it prints the bare name back.
    const gcc = found.get('gcc');
    if (!gcc) return `${row.tool} (found through gcc, which is missing too)`;
    const r = spawnSync(gcc, [`-print-file-name=${row.tool}`], { encoding: 'utf8' });
    const path = (r.stdout ?? '').trim();
    return isAbsolute(path) && existsSync(path) ? undefined : `${row.tool} (static C library and C headers)`;
  }
  const candidates = toolCandidates(row.tool, dirs);
  const ok = row.check === 'elf' ? candidates.find(isElf) : candidates[0];
  if (ok) {
    found.set(row.tool, ok);
    return undefined;
  }
  if (candidates.length > 0) return `${row.tool} as an ELF program (found only ${candidates.join(', ')})`;
  return row.tool;
}

/** The rows not usable here, each with the line that says what to install. */
export function missingTools(options = {}) {
  const pathDirs = (options.path ?? process.env.PATH ?? '').split(delimiter);
  const dirs = options.onlyPath ? pathDirs : [...pathDirs, ...DEBIAN_BIN_DIRS];
  const found = new Map();
  const out = [];
  for (const row of toolTable()) {
    const what = problem(row, dirs, found);
    if (what) out.push({ ...row, line: `systrap tests need ${what}: apt-get install ${row.package}` });
  }
  return out;
}

function main(argv) {
  const missing = missingTools({ onlyPath: argv.includes('--only-path') });
  if (argv.includes('--missing-packages')) {
    for (const p of new Set(missing.map((m) => m.package))) console.log(p);
    return 0;
  }
  for (const m of missing) console.error(m.line);
  return missing.length ? 1 : 0;
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) process.exitCode = main(process.argv.slice(2));
