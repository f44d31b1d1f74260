/**
 * scripts/check-test-tools.mjs (npm's pretest): one line per missing system tool naming its
 * Debian package, exit 1; silent and exit 0 here, where CI installed them all. And test/tools.json,
 * its table, names every tool the tests ask requireTool for, with the same package.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageOf, requireTool } from './helpers.js';

const CHECKER = fileURLToPath(new URL('../scripts/check-test-tools.mjs', import.meta.url));
const TEST_DIR = fileURLToPath(new URL('.', import.meta.url));
const rows = (JSON.parse(readFileSync(new URL('./tools.json', import.meta.url), 'utf8')) as { tools: Array<{ tool: string; package: string; check?: string }> }).tools;
const dir = mkdtempSync(join(tmpdir(), 'systrap-tools-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

function check(args: string[], env: NodeJS.ProcessEnv = process.env) {
  return spawnSync(process.execPath, [CHECKER, ...args], { env, encoding: 'utf8', timeout: 60_000 });
}

test('with every tool here: no output, exit 0', (t) => {
  const r = check([]);
  t.is(r.stderr, '', 'the lines of the missing tools');
  t.is(r.stdout, '');
  t.is(r.status, 0);
});

test('a PATH without the tools: one line per missing tool naming its package, exit 1; a shim is not Debian python3', (t) => {
  // PATH holds busybox (so it is not missing) and a python3 script (so python3 is, as an ELF program).
  symlinkSync(requireTool('busybox', 'busybox-static'), join(dir, 'busybox'));
  writeFileSync(join(dir, 'python3'), '#!/bin/sh\nexit 0\n');
  chmodSync(join(dir, 'python3'), 0o755);
  const r = check(['--only-path'], { PATH: dir });
  t.is(r.status, 1, r.stderr);
  const lines = r.stderr.trimEnd().split('\n');
  // Absolute paths (/bin/sh, /bin/ls, ...) stay found: they are not looked up on PATH.
  const missingRows = rows.filter((row) => !isAbsolute(row.tool) && row.tool !== 'busybox');
  const expected = missingRows.map((row) => {
    if (row.tool === 'python3') return `systrap tests need python3 as an ELF program (found only ${join(dir, 'python3')}): apt-get install python3`;
    if (row.tool === 'libc.a') return 'systrap tests need libc.a (found through gcc, which is missing too): apt-get install libc6-dev';
    return `systrap tests need ${row.tool}: apt-get install ${row.package}`;
  });
  t.deepEqual(lines, expected);
  t.true(lines.includes('systrap tests need readelf: apt-get install binutils'));
  t.true(lines.includes('systrap tests need strace: apt-get install strace'));

  const p = check(['--only-path', '--missing-packages'], { PATH: dir });
  t.is(p.status, 0, p.stderr);
  t.deepEqual(p.stdout.trimEnd().split('\n'), [...new Set(missingRows.map((row) => row.package))]);
});

/** test/**\/*.ts except this file. */
function testSources(sub = ''): string[] {
  return readdirSync(join(TEST_DIR, sub), { withFileTypes: true }).flatMap((e) => {
    const rel = join(sub, e.name);
    if (e.isDirectory()) return e.name === 'artifacts' || e.name === 'node_modules' ? [] : testSources(rel);
    return e.name.endsWith('.ts') && rel !== 'testTools.test.ts' ? [rel] : [];
  });
}

test('every tool a test asks for by name is in test/tools.json, with the same package', (t) => {
  const table = new Map(rows.map((row) => [row.tool, row.package]));
  const asked: string[] = [];
  for (const file of testSources()) {
    const src = readFileSync(join(TEST_DIR, file), 'utf8');
    for (const m of src.matchAll(/\b(?:requireTool|missing)\('([^']+)'(?:,\s*'([^']+)')?/g)) {
      // missing('libc.a (static libc and C headers)', …) names the file first.
      const tool = m[1].split(' ')[0];
      asked.push(tool);
      t.true(table.has(tool), `${file}: ${tool} is not in test/tools.json`);
      if (m[2] && table.has(tool)) t.is(m[2], table.get(tool), `${file}: the package of ${tool}`);
    }
  }
  t.true(asked.includes('busybox') && asked.includes('libc.a'), `found the calls: ${asked.join(' ')}`);
});

test('requireTool takes the package from the table, and refuses a tool the table lacks', (t) => {
  t.is(packageOf('readelf'), 'binutils');
  t.is(t.throws(() => requireTool('no-such-tool-here'))!.message, 'no-such-tool-here is not in test/tools.json: add its row (tool, Debian package) there');
});
