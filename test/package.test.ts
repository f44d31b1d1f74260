/**
 * The published package: packed, installed into a fresh project where no compiler can run (CC
 * and CXX point nowhere), then `npx systrap run`. It must install from its prebuilt addon
 * (nothing compiled, no build/), load that addon, run a program, and declare types that check
 * without the internals (stripInternal).
 *
 * The tarball is packed from a copy of this checkout, so that nothing is built into the
 * checkout while tests use it. The copy runs the package's own scripts, prepare (dist/) and
 * build:prebuild, then packs with `--ignore-scripts`: prepack's other step, build:native, would
 * compile the addon again (~25 s on two cores) where the suite's npm install already did, so
 * the copy takes build/Release/systrap.node as built.
 */
import test from 'ava';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { oneLineError, requireTool } from './helpers.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PREBUILD = 'prebuilds/linux-x64/systrap.napi.glibc.node';
/** Not part of a checkout's published tree: dependencies, local builds, scratch, test output. */
const NOT_COPIED = new Set(['.git', 'node_modules', 'build', 'dist', 'prebuilds', 'scratch', '.scratch', 'test/artifacts']);

interface Packed {
  /** Paths in the tarball, relative to its package/ folder. */
  files: string[];
  project: string;
  installed: string;
  install: SpawnSyncReturns<string>;
}

let packed: Packed | undefined;
let setupError: Error | undefined;
const tmp: string[] = [];

/** The environment of a nested npm: none of the npm_* variables of an `npm test` around us. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k) && k !== 'INIT_CWD'));
  return { ...env, ...extra };
}

function run(cmd: string, args: string[], cwd: string, env = cleanEnv(), timeout = 120_000): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout });
  if (r.error) throw r.error;
  return r;
}

function mustRun(what: string, cmd: string, args: string[], cwd: string, env?: NodeJS.ProcessEnv): SpawnSyncReturns<string> {
  const r = run(cmd, args, cwd, env);
  if (r.status !== 0) {
    // The end of the output says why (a build's log is long).
    const tail = `${r.stderr}${r.stdout}`.split('\n').slice(-40).join('\n');
    throw new Error(`${what} failed (${r.status ?? r.signal}):\n${tail}`);
  }
  return r;
}

/** This checkout's sources and its addon in build/Release, as a publisher's tree before pack. */
function stage(): string {
  const addon = join(ROOT, 'build/Release/systrap.node');
  if (!existsSync(addon)) throw oneLineError('build/Release/systrap.node is missing: run npm run build:native');
  const dir = mkdtempSync(join(tmpdir(), 'systrap-stage-'));
  tmp.push(dir);
  cpSync(ROOT, dir, { recursive: true, filter: (src) => !NOT_COPIED.has(relative(ROOT, src)) && !src.endsWith('.tgz') });
  mkdirSync(join(dir, 'build/Release'), { recursive: true });
  copyFileSync(addon, join(dir, 'build/Release/systrap.node'));
  // For tsc (prepare) and node-gyp-build (asked by the prebuild script which file it would load).
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  return dir;
}

test.before(() => {
  try {
    const npm = requireTool('npm', 'npm');
    const dir = stage();
    mustRun('npm run prepare', npm, ['run', 'prepare'], dir);
    mustRun('npm run build:prebuild', npm, ['run', 'build:prebuild'], dir);
    const out = mkdtempSync(join(tmpdir(), 'systrap-pack-'));
    tmp.push(out);
    const pack = mustRun('npm pack', npm, ['pack', '--json', '--ignore-scripts', '--pack-destination', out], dir);
    const [info] = JSON.parse(pack.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    const tarball = join(out, info.filename);

    const project = mkdtempSync(join(tmpdir(), 'systrap-consumer-'));
    tmp.push(project);
    // Approved by its resolved identity (what `npm install-scripts approve` writes), so that the
    // install script runs even under a policy that blocks unreviewed ones.
    const manifest = { name: 'consumer', private: true, type: 'module', allowScripts: { [`file:${tarball}`]: true } };
    writeFileSync(join(project, 'package.json'), JSON.stringify(manifest, null, 2));
    const noCompiler = cleanEnv({ CC: '/nonexistent', CXX: '/nonexistent', npm_config_build_from_source: 'false' });
    const flags = ['--prefer-offline', '--no-audit', '--no-fund', '--foreground-scripts'];
    const install = mustRun('npm install of the tarball', npm, ['install', tarball, ...flags], project, noCompiler);
    packed = { files: info.files.map((f) => f.path), project, installed: join(project, 'node_modules/systrap'), install };
  } catch (e) {
    setupError = e as Error;
  }
});

test.after.always(() => {
  for (const dir of tmp) rmSync(dir, { recursive: true, force: true });
});

function setup(): Packed {
  if (!packed) throw setupError ?? new Error('no package');
  return packed;
}

test('the tarball holds the prebuilt addon, what a build from source needs, the license, and no tests', (t) => {
  const { files } = setup();
  for (const f of [PREBUILD, 'binding.gyp', 'native/addon.cc', 'native/stub/stub.S', 'dist/src/index.js', 'dist/workers/sentry.js', 'bin/systrap.js', 'LICENSE'])
    t.true(files.includes(f), f);
  t.deepEqual(files.filter((f) => f.startsWith('test/') || f.startsWith('build/') || f.startsWith('scripts/')), []);
});

test('npm install runs the install script and compiles nothing: no build/, the prebuilt addon is the one loaded', (t) => {
  const { project, installed, install } = setup();
  // npm's banner of a lifecycle script: `> systrap@0.1.0 install` then `> node-gyp-build`.
  t.regex(install.stdout, /^> node-gyp-build$/m);
  t.false(existsSync(join(installed, 'build')), 'build/ exists: the install compiled the addon');
  const probe = "await import('systrap'); const { readFileSync } = await import('node:fs');" +
    "console.log(readFileSync('/proc/self/maps', 'utf8').split('\\n').map((l) => l.split(/\\s+/)[5]).find((p) => p?.endsWith('.node')))";
  const r = mustRun('import systrap', process.execPath, ['--input-type=module', '-e', probe], project);
  t.is(r.stdout, `${join(installed, PREBUILD)}\n`);
});

test('npx systrap run in the installed project runs the program', (t) => {
  const { project } = setup();
  const r = run(requireTool('npx', 'npm'), ['systrap', 'run', '--', '/bin/echo', 'hello'], project);
  t.is(r.stdout, 'hello\n', r.stderr);
  t.is(r.status, 0);
});

test('the declarations check without internals: no @internal member shipped, constructors private', (t) => {
  const { project, installed } = setup();
  const dts = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? dts(join(dir, e.name)) : e.name.endsWith('.d.ts') ? [join(dir, e.name)] : []));
  t.deepEqual(dts(join(installed, 'dist')).filter((f) => readFileSync(f, 'utf8').includes('@internal')).map((f) => relative(installed, f)), []);
  const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
  if (!existsSync(tsc)) throw oneLineError('node_modules/typescript is missing: run npm install');
  writeFileSync(join(project, 'consumer.ts'), [
    "import { AddressSpace, createPlatform, parseDeny, parseInject, parseTraceSet, Platform, runProgram } from 'systrap';",
    "import { Scenario } from 'systrap/scenario';",
    'export const open = (): Promise<Platform> => createPlatform();',
    'export const pid = (as: AddressSpace): number => as.pid;',
    '// What the parsers return is what the options take (a strict consumer found they did not).',
    "export const run = (p: Platform) => runProgram(p, { path: 'ls', argv: ['ls'], env: [], trace: { trace: parseTraceSet('%file'), inject: [parseInject('openat:error=EACCES')], style: { timestamps: 2 } }, deny: parseDeny('mkdir') });",
    "export const denyList = (p: Platform) => runProgram(p, { path: 'ls', argv: ['ls'], env: [], deny: [parseDeny('mkdir'), parseDeny('rmdir:EPERM')] });",
    'export type S = Scenario;',
    '// @ts-expect-error the constructor is the platform\'s',
    'export const made = () => new AddressSpace();',
    '',
  ].join('\n'));
  const options = { module: 'nodenext', moduleResolution: 'nodenext', target: 'ES2022', strict: true, noEmit: true, skipLibCheck: false, types: ['node'], typeRoots: [join(ROOT, 'node_modules/@types')] };
  writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({ compilerOptions: options, files: ['consumer.ts'] }));
  const r = run(process.execPath, [tsc, '-p', 'tsconfig.json'], project);
  t.is(r.stdout, '');
  t.is(r.status, 0);
});
