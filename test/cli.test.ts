/**
 * The command line's conventions: getopt_long-style options (clusters, attached values,
 * `--opt=value`), strace's meaning for `systrap run`'s options, usage errors (status 1, one
 * line and a hint), help and version without starting anything.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseOptions, UsageError, type OptionSpec } from '../src/cliOptions.js';
import { parseRunArgs } from '../src/cliRunArgs.js';
import { SYS } from '../src/abi/syscalls.js';

const CLI = fileURLToPath(new URL('../bin/systrap.js', import.meta.url));
const cli = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });

test('options: clusters, attached and separate values, long --opt=value and --opt value, -- and the first word end them', (t) => {
  const seen: string[] = [];
  const specs: OptionSpec[] = [
    { short: 'f', apply: () => seen.push('f') },
    { short: 'q', long: 'quiet', value: 'optional', apply: (v) => seen.push(`q=${v ?? ''}`) },
    { short: 's', long: 'string-limit', value: 'required', apply: (v) => seen.push(`s=${v}`) },
  ];
  t.is(parseOptions(['-fqq', '-s64', '-s', '8', '--string-limit=9', '--string-limit', '10', '--quiet', '--quiet=all', 'prog', '-f'], specs), 9);
  t.deepEqual(seen, ['f', 'q=', 'q=', 's=64', 's=8', 's=9', 's=10', 'q=', 'q=all']);
  t.is(parseOptions(['-f', '--', '-f'], specs), 2);
  t.is(parseOptions(['-fs', '3', 'x'], specs), 2, 'a value-taking option ends its cluster and takes the next word');
  t.is(parseOptions([], specs), 0);
  const bad = (argv: string[], message: string) => t.throws(() => parseOptions(argv, specs), { instanceOf: UsageError, message });
  bad(['-k'], "invalid option -- 'k'");
  bad(['--bogus'], "unrecognized option '--bogus'");
  bad(['-s'], "option requires an argument -- 's'");
  bad(['--string-limit'], "option '--string-limit' requires an argument");
  bad(['--quiet=x', '--frob=1'], "unrecognized option '--frob'");
});

test('systrap run: output is on only when a trace option asks for it; -c alone is the table only; -C both', (t) => {
  const quiet = parseRunArgs(['ls']).trace;
  t.deepEqual(quiet.trace, []);
  t.false(quiet.style?.on);
  const all = parseRunArgs(['-f', 'ls']).trace;
  t.true(all.trace.includes(SYS.openat) && all.trace.includes(SYS.exit_group), '-f alone: strace traces everything');
  t.true(all.style?.follow);
  t.deepEqual(parseRunArgs(['-e', 'trace=openat', 'ls']).trace.trace, [SYS.openat]);
  const none = parseRunArgs(['-e', 'trace=none', 'ls']).trace;
  t.deepEqual(none.trace, []);
  t.true(none.style?.on, 'trace=none still prints signals and exits');
  const c = parseRunArgs(['-c', '-e', 'trace=%file', '-o', 'x', 'ls']).trace;
  t.true(c.summary);
  t.deepEqual(c.trace, [], '-c: no lines');
  t.true(c.counted!.includes(SYS.openat) && !c.counted!.includes(SYS.read), '-c counts the selected calls');
  const both = parseRunArgs(['-C', '-e', 'trace=openat', 'ls']).trace;
  t.true(both.summary);
  t.deepEqual(both.trace, [SYS.openat]);
  t.deepEqual(parseRunArgs(['-e', 'inject=openat:error=EACCES:when=2+', 'ls']).trace.inject, [{ syscalls: [SYS.openat], error: 13, retval: undefined, when: { first: 2, step: 1 } }]);
  t.deepEqual(parseRunArgs(['--inject=openat:error=EACCES', 'ls']).trace.trace, [], 'an injection alone prints nothing');
});

test('systrap run: each strace option sets its style field, long forms too', (t) => {
  const style = (argv: string[]) => parseRunArgs([...argv, 'ls']).trace.style!;
  t.is(style(['-ttt']).timestamps, 3);
  t.is(style(['-t', '--absolute-timestamps']).timestamps, 2);
  t.true(style(['-T']).syscallTimes && style(['--syscall-times']).syscallTimes);
  t.true(style(['-r']).relative);
  t.is(style(['-yy']).decodeFds, 2);
  t.is(style(['--decode-fds=all']).decodeFds, 1);
  t.is(style(['-s', '100']).stringLimit, 100);
  t.is(style(['--string-limit=5']).stringLimit, 5);
  t.is(style(['-a20']).align, 20);
  t.is(style(['-qqq']).quiet, 3);
  t.deepEqual(style(['-z']).status, ['successful']);
  t.deepEqual(style(['-Z']).status, ['failed']);
  t.deepEqual(style(['-e', 'status=!successful']).status, ['failed', 'unfinished', 'unavailable', 'detached']);
  t.deepEqual(style(['--signal=CHLD,SIGUSR1']).signals, [10, 17]);
  t.deepEqual(style(['-e', 'signal=none']).signals, []);
  t.is(style(['-X', 'raw']).constStyle, 'raw');
  t.true(style(['-v']).verbose && style(['--no-abbrev']).verbose);
  t.deepEqual(style(['-P', '/etc/passwd', '--trace-path=/tmp']).paths, ['/etc/passwd', '/tmp']);
  const ff = parseRunArgs(['-ff', '-o', 'out', 'ls']).trace;
  t.is(ff.perProcess, 'out');
  t.is(parseRunArgs(['-o', 'x', 'ls']).outFile, 'x');
  t.is(parseRunArgs(['--output=x', 'ls']).outFile, 'x');
  t.is(parseRunArgs(['--deny=mkdir:EACCES', 'ls']).deny.get(SYS.mkdir), 13);
  t.is(parseRunArgs(['--max-threads=2', 'ls']).maxThreads, 2);
  t.is(parseRunArgs(['--inspect', 'ls']).inspectPort, 8090);
  t.is(parseRunArgs(['--inspect=0', 'ls']).inspectPort, 0);
  t.is(parseRunArgs(['--record=r.jsonl', 'ls']).record, 'r.jsonl');
  t.is(parseRunArgs(['--sandbox', 'off', 'ls']).sandbox, 'off');
  t.deepEqual(parseRunArgs(['ls', '-l', '--', 'x']).args, ['-l', '--', 'x'], "the program's own options are its own");
});

test('systrap run: bad command lines are usage errors with strace-like messages', (t) => {
  const bad = (argv: string[], message: RegExp) => t.throws(() => parseRunArgs(argv), { instanceOf: UsageError, message });
  bad([], /must have PROG/);
  bad(['-f'], /must have PROG/);
  bad(['-s', 'x', 'ls'], /invalid -s argument: 'x'/);
  bad(['-e', 'trace=nosuch', 'ls'], /invalid system call 'nosuch'/);
  bad(['-e', 'status=maybe', 'ls'], /invalid status 'maybe'/);
  bad(['-e', 'signal=SIGNOPE', 'ls'], /invalid signal 'SIGNOPE'/);
  bad(['-X', 'fancy', 'ls'], /invalid -X argument: 'fancy'/);
  bad(['-S', 'color', 'ls'], /invalid sortby: 'color'/);
  bad(['-ff', 'ls'], /-ff needs -o FILE/);
  bad(['--max-threads=0', 'ls'], /invalid --max-threads argument/);
  bad(['--sandbox=maybe', 'ls'], /--sandbox needs auto, require or off/);
  bad(['--deny', 'nosuch', 'ls'], /nosuch/);
});

test('the systrap command: bare is a usage error (1), --help / --version / COMMAND --help answer without starting anything', (t) => {
  const bare = cli([]);
  t.is(bare.status, 1);
  t.regex(bare.stderr, /^usage: systrap <command>/);
  const help = cli(['--help']);
  t.is(help.status, 0);
  t.regex(help.stdout, /^usage: systrap <command>/);
  const version = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  for (const args of [['--version'], ['-V'], ['run', '--version'], ['run', '-V', 'ls']]) {
    const v = cli(args);
    t.is(v.status, 0, args.join(' '));
    t.is(v.stdout, `systrap -- version ${version.version}\n`);
  }
  // probe --help must not probe (it would print the stub's maps); run --help must not run.
  const probe = cli(['probe', '--help']);
  t.is(probe.status, 0);
  t.regex(probe.stdout, /^usage: systrap probe/);
  t.notRegex(probe.stdout, /^stub region +[0-9a-f]+-/m);
  const run = cli(['run', '--help', '--', '/bin/echo', 'ran']);
  t.is(run.status, 0);
  t.regex(run.stdout, /^usage: systrap run/);
  t.notRegex(run.stdout, /^ran$/m);
  const inspect = cli(['inspect', '--help']);
  t.is(inspect.status, 0);
  t.regex(inspect.stdout, /^usage: systrap inspect/);
  const unknown = cli(['frobnicate']);
  t.is(unknown.status, 1);
  t.regex(unknown.stderr, /unknown command 'frobnicate'/);
  const extra = cli(['probe', 'extra']);
  t.is(extra.status, 1);
  t.regex(extra.stderr, /^systrap: unexpected argument 'extra'\nTry 'systrap probe --help' for more information\.\n$/);
});

test('help, version and usage errors load none of the runtime (xstate, piscina, the addon)', (t) => {
  // A resolve hook (in a file: hooks run off the main thread) notes every ES module resolved,
  // a preloaded script every CommonJS one (the launcher takes the CommonJS CLI where it can).
  const dir = mkdtempSync(join(tmpdir(), 'systrap-cli-'));
  try {
    const log = join(dir, 'loaded.txt');
    writeFileSync(join(dir, 'hooks.mjs'), `import { appendFileSync } from 'node:fs';
export async function resolve(spec, ctx, next) { const r = await next(spec, ctx); appendFileSync(${JSON.stringify(log)}, r.url + '\\n'); return r; }`);
    writeFileSync(join(dir, 'register.mjs'), `import { register } from 'node:module'; register(${JSON.stringify(pathToFileURL(join(dir, 'hooks.mjs')).href)});`);
    writeFileSync(join(dir, 'preload.cjs'), `const M = require('node:module'); const { appendFileSync } = require('node:fs'); const { pathToFileURL } = require('node:url');
const resolve = M._resolveFilename; M._resolveFilename = function (...a) { const r = resolve.apply(this, a); if (r.startsWith('/')) appendFileSync(${JSON.stringify(log)}, pathToFileURL(r).href + '\\n'); return r; };`);
    for (const args of [['--help'], ['--version'], ['run', '--help'], ['probe', '--help'], ['run', '--bogus']]) {
      writeFileSync(log, '');
      const r = spawnSync(process.execPath, ['--require', join(dir, 'preload.cjs'), '--import', pathToFileURL(join(dir, 'register.mjs')).href, CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
      t.true(r.status === 0 || r.status === 1, r.stderr);
      const loaded = readFileSync(log, 'utf8').trim().split('\n');
      t.true(loaded.some((u) => /\/dist\/src\/cli\.c?js$/.test(u)), `the hooks saw the CLI load: ${loaded.join(' ')}`);
      t.deepEqual(loaded.filter((u) => /xstate|piscina|\.node$|\/native\.js$|\/platform\.js$|\/cliRun(-\w+\.chunk)?\.c?js$/.test(u)), [], args.join(' '));
      // With the CLI bundled (scripts/bundle.mjs), xstate and the platform sit inside chunks:
      // what was read must stay small (the run chunk and the platform's are hundreds of KB).
      const bytes = loaded.filter((u) => u.includes('/dist/')).reduce((n, u) => n + statSync(fileURLToPath(u)).size, 0);
      t.true(bytes < 64 * 1024, `${args.join(' ')}: ${bytes} bytes of dist read: ${loaded.join(' ')}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
