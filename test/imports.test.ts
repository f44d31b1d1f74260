/**
 * The import graph and size rules (scripts/check-imports.ts): the repository's own src/ and
 * workers/ must follow them, and the checker must find each kind of violation in a small tree
 * made for it (so that an empty report means something).
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkImports, MAX_FILE_LINES, MAX_FUNCTION_LINES } from '../scripts/check-imports.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SCRIPT = fileURLToPath(new URL('../scripts/check-imports.ts', import.meta.url));

function checkCli(root: string) {
  return spawnSync(process.execPath, ['--import=tsx', SCRIPT, '--root', root], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
}

test('src/ and workers/ follow the import rules: no cycle, no platform → sentry import, no ._x, no long file or function', (t) => {
  const r = checkCli(ROOT);
  t.is(r.stderr, '');
  // On failure the difference below is the script's list of every violation.
  t.is(r.stdout, 'check-imports: no violations\n');
  t.is(r.status, 0);
});

test('the checker finds each kind of violation in a tree made for it', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'systrap-imports-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const put = (file: string, text: string) => {
    mkdirSync(dirname(join(root, file)), { recursive: true });
    writeFileSync(join(root, file), text);
  };
  const lines = (n: number) => Array.from({ length: n }, (_, i) => `export const v${i} = ${i};`).join('\n') + '\n';
  const body = (n: number) => Array.from({ length: n }, (_, i) => `  x += ${i};`).join('\n');

  // a. A cycle of three through a value import, a type-only import and a re-export; another
  // through a dynamic import and `typeof import()`.
  put('src/a.ts', "import { b } from './b.js';\nexport const a = b;\n");
  put('src/b.ts', "import type { C } from './c.js';\nexport const b: C = 1;\n");
  put('src/c.ts', "export { a } from './a.js';\nexport type C = number;\n");
  put('src/d.ts', "export const d = () => import('./e.js');\n");
  put('src/e.ts', "export type D = typeof import('./d.js');\n");
  // b. Platform files may not import the sentry; index, cli* and scenario may.
  put('src/sentry/k.ts', 'export const k = 1;\n');
  put('src/actors/x.ts', "import { k } from '../sentry/k.js';\nimport type { S } from '../../workers/sentry.js';\nexport const x: S = k;\n");
  put('workers/sentry.ts', "import { k } from '../src/sentry/k.js';\nexport type S = number;\nexport const s = k;\n");
  put('workers/runner.ts', "export const r = () => import('./sentry.js');\n");
  put('src/index.ts', "export * from './sentry/k.js';\n");
  put('src/cliRun.ts', "import { k } from './sentry/k.js';\nexport const run = k;\n");
  put('src/scenario/index.ts', "import { k } from '../sentry/k.js';\nexport const sc = k;\n");
  // c. Underscore reach-ins, any receiver; declarations and `_` alone are not accesses.
  put('src/reach.ts', "export class P { _own = 1; m() { return this._own; } }\nexport const f = (p: { _x: number; _: number }) => p._x + p._ + p['_x'];\n");
  // d. Sizes: the allowlist matches by folder and name, wherever the folder sits.
  put('src/big.ts', lines(MAX_FILE_LINES + 1));
  put('src/ok.ts', lines(MAX_FILE_LINES));
  put('src/abi/syscalls.ts', lines(MAX_FILE_LINES + 50));
  put('src/sentry/strace/decode/flags.ts', lines(MAX_FILE_LINES + 50));
  put('src/sentry/decode/structs.ts', lines(MAX_FILE_LINES + 50));
  put('src/other/flags.ts', lines(MAX_FILE_LINES + 1));
  put(
    'src/long.ts',
    [
      `export function long() {\n  let x = 0;\n${body(MAX_FUNCTION_LINES - 3)}\n  return x;\n}`, // one line too many
      `export function fits() {\n  let x = 0;\n${body(MAX_FUNCTION_LINES - 4)}\n  return x;\n}`, // just fits
      `export class K {\n  method() {\n    let x = 0;\n${body(MAX_FUNCTION_LINES)}\n    return x;\n  }\n}`,
      `export const arrow = () => {\n  let x = 0;\n${body(MAX_FUNCTION_LINES)}\n  return x;\n};`,
    ].join('\n') + '\n',
  );

  const found = checkImports(root).map((v) => `${v.rule} ${v.file}${v.line ? `:${v.line}` : ''} ${v.message}`);
  t.deepEqual(found, [
    'cycle src/a.ts src/a.ts → src/b.ts → src/c.ts → src/a.ts',
    'cycle src/d.ts src/d.ts → src/e.ts → src/d.ts',
    'sentry-boundary src/actors/x.ts:1 imports the sentry file src/sentry/k.ts',
    'sentry-boundary src/actors/x.ts:2 imports types from the sentry file workers/sentry.ts',
    'sentry-boundary workers/runner.ts:1 imports the sentry file workers/sentry.ts',
    'underscore src/reach.ts:1 this._own',
    'underscore src/reach.ts:2 p._x',
    "underscore src/reach.ts:2 p['_x']",
    `file-length src/big.ts ${MAX_FILE_LINES + 1} lines`,
    `file-length src/other/flags.ts ${MAX_FILE_LINES + 1} lines`,
    `function-length src/long.ts:1 long: ${MAX_FUNCTION_LINES + 1} lines`,
    `function-length src/long.ts:163 K.method: ${MAX_FUNCTION_LINES + 4} lines`,
    `function-length src/long.ts:248 arrow: ${MAX_FUNCTION_LINES + 4} lines`,
  ]);

  // The command line prints them grouped by rule and exits 1.
  const r = checkCli(root);
  t.is(r.status, 1);
  t.regex(r.stdout, /^a\. import cycles \(2\):\n {2}src\/a\.ts → src\/b\.ts → src\/c\.ts → src\/a\.ts\n/);
  t.regex(r.stdout, /\nc\. underscore reach-ins \(3\):\n {2}src\/reach\.ts:1: this\._own\n/);
  t.regex(r.stdout, /\ncheck-imports: 13 violations\n$/);
});
