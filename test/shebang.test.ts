/**
 * '#!' scripts: execve follows them as Linux's binfmt_script does, at top level (`systrap run --
 * ./script`, a shim found on PATH) and from inside a running program, compared with native runs
 * of the same thing (stdout and exit status) on the real kernel; and the '#!' line parser and
 * the script chain on their own.
 *
 * Natively, top-level runs go through `busybox env`, which maps execve's errors to exit
 * statuses as systrap's CLI does (127 for ENOENT, 126 for the others). Cases where execve fails
 * with ENOEXEC go through the exec-argv fixture instead: execvp (env's) would run such a file
 * with /bin/sh itself, which is the C library's doing, not execve's.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createPlatform } from '../src/index.js';
import { native as addon } from '../src/native.js';
import { AT } from '../src/sentry/exec/auxv.js';
import { loadProgram } from '../src/sentry/exec/loader.js';
import { LoaderError, LoaderErrors } from '../src/sentry/exec/loaderErrors.js';
import { BINPRM_BUF_SIZE, followScripts, isScript, parseShebang, scriptArgv, type ExecFileAccess } from '../src/sentry/exec/script.js';
import { buildFixture } from './fixtures/build.js';
import { childPids, fdTable, isElf, requireTool, until } from './helpers.js';

const CLI = fileURLToPath(new URL('../bin/systrap.js', import.meta.url));
const busybox = () => requireTool('busybox', 'busybox-static');
// Debian's python3, a dynamic ELF program: not a pyenv shim (a bash script that forks).
const python3 = () => realpathSync(requireTool('python3', 'python3', { what: 'an ELF program', test: isElf }));
/** Prints its argv, AT_EXECFN, /proc/self/exe and comm: the interpreter of most scripts here. */
const showargs = () => buildFixture('showargs');
/** execve(PATH, [ARGV0, ARGS...]); prints strerror on failure and exits 99. */
const execArgv = () => buildFixture('exec-argv', ['-static']);

const dir = mkdtempSync(join(tmpdir(), 'systrap-shebang-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

/** Writes a file into the test folder (mode 0755 unless told); returns its absolute path. */
function file(name: string, text: string | Buffer, mode = 0o755): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  chmodSync(p, mode);
  return p;
}

/** `DIR/sh`, a link to busybox: as "#!DIR/sh" it runs busybox's sh, as "#!/bin/sh" would. */
let shPath: string | undefined;
function sh(): string {
  if (!shPath) {
    shPath = join(dir, 'sh');
    symlinkSync(busybox(), shPath);
  }
  return shPath;
}

interface Ran {
  /** Why the process could not be started (spawnSync's error), if so. */
  error?: string;
  status: number | null;
  stdout: string;
  stderr: string;
}

interface RunOpts {
  env?: NodeJS.ProcessEnv;
}

function ran(r: ReturnType<typeof spawnSync<string>>): Ran {
  return { error: r.error?.message, status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `systrap run ARGS` from the test folder. */
function systrap(args: string[], o: RunOpts = {}): Ran {
  return ran(spawnSync(process.execPath, [CLI, 'run', ...args], { cwd: dir, env: o.env ?? process.env, encoding: 'utf8', timeout: 60_000 }));
}

/** `cmd` run natively from the test folder. */
function native(cmd: string[], o: RunOpts = {}): Ran {
  return ran(spawnSync(cmd[0], cmd.slice(1), { cwd: dir, env: o.env ?? process.env, encoding: 'utf8', timeout: 60_000 }));
}

/** Natively through `busybox env`, whose exit statuses for a failed execve are systrap's. */
function viaEnv(cmd: string[], o: RunOpts = {}): Ran {
  return native([busybox(), 'env', ...cmd], o);
}

/**
 * The comm line of showargs: after an execve inside a program, the stub's threads keep their
 * old name (a known limit of nameStub: another process's comm cannot be written).
 */
const noComm = (s: string) => s.replace(/^comm=.*\n/m, '');

test('the #! line parser: blanks, one argument, CR, NUL, and the 256-byte buffer', (t) => {
  const parse = (s: string) => parseShebang(Buffer.from(s, 'latin1'));
  t.deepEqual(parse('#!/bin/sh\necho hi\n'), { interpreter: '/bin/sh' });
  t.deepEqual(parse('#! \t/bin/sh  -e  \n'), { interpreter: '/bin/sh', arg: '-e' });
  // The rest of the line is one argument, blanks inside kept (no splitting, unlike env -S).
  t.deepEqual(parse('#!/usr/bin/env python3 -u\tx \t\n'), { interpreter: '/usr/bin/env', arg: 'python3 -u\tx' });
  // A CRLF line: the '\r' is part of the name (or of the argument).
  t.deepEqual(parse('#!/bin/sh\r\n'), { interpreter: '/bin/sh\r' });
  t.deepEqual(parse('#!/bin/sh -x\r\n'), { interpreter: '/bin/sh', arg: '-x\r' });
  // No newline in a short file (the kernel's buffer is NUL-padded): trailing blanks stay.
  t.deepEqual(parse('#!/bin/sh'), { interpreter: '/bin/sh' });
  t.deepEqual(parse('#!/bin/sh -x  '), { interpreter: '/bin/sh', arg: '-x  ' });
  t.deepEqual(parse('#!/bin/sh   '), { interpreter: '/bin/sh', arg: '' });
  // A NUL ends the strings; before the newline, it also hides the newline (strnchr stops there).
  t.deepEqual(parse('#!/bin/sh -x  \0\n'), { interpreter: '/bin/sh', arg: '-x  ' });
  t.deepEqual(parse('#!/bin/sh\0 -x\n'), { interpreter: '/bin/sh' });
  // An empty name is not refused by the parser: execve then opens the cwd (EACCES).
  t.deepEqual(parse('#!\0/bin/sh\n'), { interpreter: '' });
  t.deepEqual(parse('#!'), { interpreter: '' });
  for (const s of ['#!\n', '#!  \t \n', '#!' + ' '.repeat(BINPRM_BUF_SIZE - 2)]) {
    const e = t.throws<LoaderError>(() => parse(s), undefined, JSON.stringify(s));
    t.like(e, { code: 'ENOEXEC', errno: -8 });
  }
  // Longer than 256 bytes without a newline in them: the argument is cut (the 256th byte too),
  t.deepEqual(parse('#!/bin/sh ' + 'x'.repeat(290)), { interpreter: '/bin/sh', arg: 'x'.repeat(245) });
  // a name that may be cut is refused, even if a newline comes later,
  t.regex(t.throws<LoaderError>(() => parse('#!/' + 'a'.repeat(297))).message, /does not end within the first 256 bytes/);
  t.like(t.throws<LoaderError>(() => parse('#!/' + 'a'.repeat(297) + '\n')), { code: 'ENOEXEC' });
  // a name ended by a blank at byte 255 is whole, and blanks up to byte 256 end it too.
  t.deepEqual(parse('#!/' + 'a'.repeat(252) + ' more'), { interpreter: '/' + 'a'.repeat(252) });
  t.deepEqual(parse('#!/bin/sh' + ' '.repeat(250) + '\nrest'), { interpreter: '/bin/sh' });

  t.true(isScript(Buffer.from('#!')));
  t.false(isScript(Buffer.from('#')));
  t.false(isScript(Buffer.from('\x7fELF')));
  t.false(isScript(Buffer.from(' #!/bin/sh\n')));
  t.deepEqual(scriptArgv({ interpreter: '/bin/sh', arg: 'a b' }, './x.sh', ['zero', '1', '2']), ['/bin/sh', 'a b', './x.sh', '1', '2']);
  // An empty argv (Linux makes it [""]) loses nothing but its argv[0].
  t.deepEqual(scriptArgv({ interpreter: 'i' }, 'x', []), ['i', 'x']);
});

/** An ExecFileAccess over an in-memory folder, counting opens and closes. */
function memoryAccess(files: Record<string, string>, noExec: string[] = []) {
  const open = new Set<string>();
  const access: ExecFileAccess<string> = {
    open: async (p) => {
      if (!(p in files)) throw LoaderErrors.NoFile(p);
      if (noExec.includes(p)) throw LoaderErrors.Access(p, 'is not executable');
      open.add(p);
      return p;
    },
    head: async (p) => Buffer.from(files[p], 'latin1'),
    close: async (p) => void open.delete(p),
  };
  return { access, open };
}

test('the script chain: argv at each level, five scripts deep and no more, errors naming the script', async (t) => {
  const { access, open } = memoryAccess({ '/a': '#!/b argA\n', '/b': '#!/c arg B\n', '/c': '\x7fELF' });
  const r = await followScripts(access, '/a', ['zero', 'x'], './a');
  t.like(r, { file: '/c', path: '/c', argv: ['/c', 'arg B', '/b', 'argA', './a', 'x'], scripts: ['./a', '/b'] });
  t.deepEqual([...open], ['/c'], 'only the file returned is left open');

  const chain: Record<string, string> = { '/s0': '\x7fELF' };
  for (let i = 1; i <= 7; i++) chain[`/s${i}`] = `#!/s${i - 1}\n`;
  const five = await followScripts(memoryAccess(chain).access, '/s5', ['s5']);
  t.deepEqual(five.argv, ['/s0', '/s1', '/s2', '/s3', '/s4', '/s5']);
  const six = memoryAccess(chain);
  t.like(await t.throwsAsync<LoaderError>(followScripts(six.access, '/s6', ['s6'])), { code: 'ELOOP', errno: -40 });
  t.is(six.open.size, 0, 'nothing left open');
  // The interpreter is opened before the depth is judged: a missing one is ENOENT even there.
  const missing = { ...chain, '/s0': '#!/nowhere\n' };
  const e = await t.throwsAsync<LoaderError>(followScripts(memoryAccess(missing).access, '/s5', ['s5']));
  t.like(e, { code: 'ENOENT', errno: -2, path: '/nowhere' });
  t.regex(e.message, /bad '#!' interpreter "\/nowhere" of \/s0/);
  const denied = await t.throwsAsync<LoaderError>(followScripts(memoryAccess(chain, ['/s0']).access, '/s1', ['s1']));
  t.like(denied, { code: 'EACCES', errno: -13 });
  t.like(await t.throwsAsync<LoaderError>(followScripts(memoryAccess({ '/x': '#!\n' }).access, '/x', [])), { code: 'ENOEXEC' });
});

test('top level: a #!/bin/sh-style script prints "$0 $1 $#" as natively, by relative and absolute path', (t) => {
  const hello = file('hello.sh', `#!${sh()}\necho "$0 $1 $#"\nexit 3\n`);
  for (const path of ['./hello.sh', hello]) {
    const n = viaEnv([path, 'one', 'two']);
    const s = systrap(['--', path, 'one', 'two']);
    t.is(n.stdout, `${path} one 2\n`);
    t.is(s.stdout, n.stdout);
    t.is(s.status, 3, s.stderr);
    t.is(n.status, 3);
  }
});

test('top level: the optional argument is one string, blanks inside; argv[0] is dropped; exe is the interpreter', (t) => {
  file('arg.sh', `#!${showargs()}  one two\t \nignored\n`);
  const n = viaEnv(['./arg.sh', 'a b', 'c']);
  const s = systrap(['--', './arg.sh', 'a b', 'c']);
  t.is(n.error, undefined);
  t.is(s.stdout, n.stdout);
  t.is(s.status, n.status, s.stderr);
  const exe = realpathSync(showargs());
  t.is(
    s.stdout,
    `argc=5\nargv[0]=[${showargs()}]\nargv[1]=[one two]\nargv[2]=[./arg.sh]\nargv[3]=[a b]\nargv[4]=[c]\n` +
      `execfn=[./arg.sh]\nexe=[${exe}]\ncomm=[arg.sh]\n`,
  );
  t.is(s.status, 5);
  // busybox with "sh" as the argument: argv = [busybox, "sh", script, ...].
  file('bbsh.sh', `#!${busybox()} sh\necho "$0|$1|$#"\n`);
  const bn = viaEnv(['./bbsh.sh', 'x']);
  const bs = systrap(['--', './bbsh.sh', 'x']);
  t.is(bn.stdout, './bbsh.sh|x|1\n');
  t.is(bs.stdout, bn.stdout);
  t.is(bs.status, 0, bs.stderr);
});

test('top level: a shim on PATH that execs the real program, named DIR/NAME as execvp names it', (t) => {
  const shims = join(dir, 'shims');
  mkdirSync(shims, { recursive: true });
  file('shims/shimtool', `#!${sh()}\nexec ${showargs()} "$0" "$@"\n`);
  const env = { ...process.env, PATH: `${shims}${delimiter}${process.env.PATH ?? ''}` };
  const n = viaEnv(['shimtool', 'x y', 'z'], { env });
  const s = systrap(['--', 'shimtool', 'x y', 'z'], { env });
  t.is(n.error, undefined);
  t.regex(n.stdout, new RegExp(`argv\\[1\\]=\\[${shims}/shimtool\\]`));
  // The shim's sh execs showargs: a second execve, inside the program (comm stays the shim's).
  t.is(noComm(s.stdout), noComm(n.stdout));
  t.is(s.status, n.status, s.stderr);
  t.is(s.status, 4);
});

test('top level: a python3 script with an interpreter option', (t) => {
  const py = python3();
  file('hello.py', `#!${py} -B\nimport os, sys\nprint(sys.argv, sys.flags.dont_write_bytecode, os.readlink('/proc/self/exe'))\nsys.exit(len(sys.argv))\n`);
  const n = viaEnv(['./hello.py', 'arg']);
  const s = systrap(['--', './hello.py', 'arg']);
  t.is(n.stdout, `['./hello.py', 'arg'] 1 ${py}\n`);
  t.is(s.stdout, n.stdout);
  t.is(s.status, 2, s.stderr);
});

test('inside a program: execve of a script (also with an empty argv), strace shows the call as made', (t) => {
  file('inner.sh', `#!${showargs()} -v\n`);
  for (const args of [['./inner.sh', 'zero', 'A', 'B'], ['./inner.sh', '--none']]) {
    const n = native([execArgv(), ...args]);
    const s = systrap(['--', execArgv(), ...args]);
    t.is(noComm(s.stdout), noComm(n.stdout));
    t.is(s.status, n.status, s.stderr);
  }
  const s = systrap(['-e', 'trace=execve', '--', execArgv(), './inner.sh', 'zero', 'A']);
  t.is(noComm(s.stdout), `argc=4\nargv[0]=[${showargs()}]\nargv[1]=[-v]\nargv[2]=[./inner.sh]\nargv[3]=[A]\nexecfn=[./inner.sh]\nexe=[${realpathSync(showargs())}]\n`);
  t.regex(s.stderr, /^execve\("\.\/inner\.sh", \["zero", "A"\], 0x[0-9a-f]+ \/\* \d+ vars \*\/\) = 0$/m);
  // A shell's `exec` (no fork: exec replaces the shell).
  file('hello2.sh', `#!${sh()}\necho "$0 $1 $#"\n`);
  const cmd = [busybox(), 'sh', '-c', 'exec ./hello2.sh p q'];
  const bn = native(cmd);
  const bs = systrap(['--', ...cmd]);
  t.is(bn.stdout, './hello2.sh p 2\n');
  t.is(bs.stdout, bn.stdout);
  t.is(bs.status, 0, bs.stderr);
});

test("a file without '#!': ENOEXEC from execve, then busybox sh runs it itself by re-executing /proc/self/exe", (t) => {
  file('plain', 'echo "plain $0 $#"\nexit 4\n');
  const cmd = [busybox(), 'sh', '-c', 'exec ./plain x y'];
  const n = native(cmd);
  const s = systrap(['-e', 'trace=execve', '--', ...cmd]);
  t.is(n.stdout, 'plain ./plain 2\n');
  t.is(s.stdout, n.stdout);
  t.is(s.status, 4, s.stderr);
  t.regex(s.stderr, /^execve\("\.\/plain", .*\) = -1 ENOEXEC/m);
  // The program's own /proc/self/exe, not the stub's (Node's).
  t.regex(s.stderr, /^execve\("\/proc\/self\/exe", \["ash", "\.\/plain", "x", "y"\].*\) = 0$/m);
  // A program that re-executes itself that way, then a script.
  file('again.sh', `#!${showargs()}\n`);
  const args = [execArgv(), '/proc/self/exe', 'again', './again.sh', 'zero', 'A'];
  const an = native(args);
  const as = systrap(['--', ...args]);
  t.regex(an.stdout, /^argc=3\nargv\[0\]=\[.*showargs\]\nargv\[1\]=\[\.\/again\.sh\]\nargv\[2\]=\[A\]\n/);
  t.is(noComm(as.stdout), noComm(an.stdout));
  t.is(as.status, an.status, as.stderr);
});

test('nesting: five scripts in a row run, a sixth is ELOOP, natively and under systrap', (t) => {
  // n0 is one script (its interpreter is a program), n4 five, n5 six.
  file('n0', `#!${showargs()}\n`);
  for (let i = 1; i <= 5; i++) file(`n${i}`, `#!${join(dir, `n${i - 1}`)}\n`);
  for (let i = 0; i <= 5; i++) {
    const n = native([execArgv(), `./n${i}`, 'zero', 'A']);
    const s = systrap(['--', execArgv(), `./n${i}`, 'zero', 'A']);
    t.is(noComm(s.stdout), noComm(n.stdout), `n${i}`);
    t.is(s.status, n.status, `n${i}: ${s.stderr}`);
  }
  t.regex(native([execArgv(), './n4', 'zero']).stdout, /^argc=6\n/);
  t.is(native([execArgv(), './n5', 'zero']).stdout, 'execve ./n5: Too many levels of symbolic links\n');
  const n = viaEnv(['./n5']);
  const s = systrap(['--', './n5']);
  t.is(n.status, 126);
  t.is(s.status, 126);
  t.regex(s.stderr, /ELOOP/);
  // The seventh file is opened before the depth is judged: missing, it is ENOENT, not ELOOP.
  file('m0', '#!/nonexistent/interpreter\n');
  for (let i = 1; i <= 5; i++) file(`m${i}`, `#!${join(dir, `m${i - 1}`)}\n`);
  const mn = native([execArgv(), './m5', 'zero']);
  t.is(mn.stdout, 'execve ./m5: No such file or directory\n');
  t.is(systrap(['--', execArgv(), './m5', 'zero']).stdout, mn.stdout);
});

test('failures as natively: missing or non-executable interpreter, non-executable script, CRLF, bad lines', (t) => {
  const cases: Record<string, [string | Buffer, number?]> = {
    'missing-interp': ['#!/nonexistent/interpreter\n'],
    'noexec-script': [`#!${showargs()}\n`, 0o644],
    'interp-noexec': [`#!${join(dir, 'noexec-script')}\n`],
    'interp-dir': [`#!${dir}\n`],
    crlf: [`#!${showargs()}\r\necho\r\n`],
    'long-name': ['#!/' + 'a'.repeat(297)],
    'long-arg': [`#!${showargs()} ` + 'x'.repeat(300)],
    'no-name': ['#!\n'],
    'empty-name': ['#!\0/bin/sh\n'],
    'no-shebang': ['echo hi\n'],
  };
  for (const [name, [text, mode]] of Object.entries(cases)) file(name, text, mode);
  const outcomes: string[] = [];
  for (const name of Object.keys(cases)) {
    const n = native([execArgv(), `./${name}`, 'zero']);
    const s = systrap(['--', execArgv(), `./${name}`, 'zero']);
    t.is(noComm(s.stdout), noComm(n.stdout), name);
    t.is(s.status, n.status, `${name}: ${s.stderr}`);
    outcomes.push(n.stdout.split('\n')[0]);
  }
  // What the kernel said, to be sure each case is the one meant.
  t.deepEqual(outcomes, [
    'execve ./missing-interp: No such file or directory',
    'execve ./noexec-script: Permission denied',
    'execve ./interp-noexec: Permission denied',
    'execve ./interp-dir: Permission denied',
    'execve ./crlf: No such file or directory',
    'execve ./long-name: Exec format error',
    'argc=3',
    'execve ./no-name: Exec format error',
    'execve ./empty-name: Permission denied',
    'execve ./no-shebang: Exec format error',
  ]);

  // At top level: the CLI's statuses are env's (127 for ENOENT, 126 else); its message quotes
  // the interpreter, so that a CRLF line shows its '\r'.
  for (const [name, status] of [['missing-interp', 127], ['noexec-script', 126], ['interp-noexec', 126], ['crlf', 127]] as const) {
    const n = viaEnv([`./${name}`]);
    const s = systrap(['--', `./${name}`]);
    t.is(n.status, status, name);
    t.is(s.status, status, `${name}: ${s.stderr}`);
    t.is(s.stderr.trim().split('\n').length, 1, s.stderr);
  }
  t.regex(systrap(['--', './crlf']).stderr, /bad '#!' interpreter ".*showargs\\r" of \.\/crlf: no such file or directory/);
});

test('loadProgram follows a script: the interpreter is mapped, argv rewritten, AT_EXECFN the name given, no fd left', async (t) => {
  const script = file('load.sh', `#!${showargs()} opt\n`);
  const platform = await createPlatform();
  t.teardown(() => platform.close());
  const as = await platform.newAddressSpace();
  t.teardown(() => as.release().catch(() => undefined));
  const fds = fdTable(as.pid);
  const img = await loadProgram(as, { path: script, argv: ['zero', 'a'], envp: [], execfn: 'load.sh' });
  t.is(img.path, showargs());
  t.deepEqual(img.argv, [showargs(), 'opt', 'load.sh', 'a']);
  t.deepEqual(img.scripts, ['load.sh']);
  t.is(img.interp, '/lib64/ld-linux-x86-64.so.2');
  const execfn = img.auxv.find(([type]) => type === AT.EXECFN)![1];
  t.is(addon.processVmReadv(as.pid, execfn, 8).toString('latin1'), 'load.sh\0');
  t.deepEqual(fdTable(as.pid), fds);
});

test('nothing is left running', async (t) => {
  t.true(await until(() => childPids().length === 0, 5000), `children: ${childPids().join(',')}`);
});
