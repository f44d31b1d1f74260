/**
 * `systrap run`: real programs under the sentry, compared with native runs of the same command
 * (stdout and exit status), on the real kernel. Each test runs the CLI as a child process, the
 * way users do.
 */
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildFixture } from './fixtures/build.js';
import { isElf, requireTool, until } from './helpers.js';

const CLI = fileURLToPath(new URL('../bin/systrap.js', import.meta.url));
// Found when a test needs them, so that a missing one fails those tests with what to install.
const busybox = () => requireTool('busybox', 'busybox-static');
// Debian's python3, a dynamic ELF program: not a wrapper script such as a pyenv shim on PATH.
const python3 = () => requireTool('python3', 'python3', { what: 'an ELF program', test: isElf });
const dir = mkdtempSync(join(tmpdir(), 'systrap-run-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

interface Ran {
  /** Why the process could not be started or waited for (spawnSync's error), if so. */
  error?: string;
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function systrap(args: string[], input?: string): Ran {
  const r = spawnSync(process.execPath, [CLI, 'run', ...args], { input, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

function native(cmd: string[], input?: string): Ran {
  const r = spawnSync(cmd[0], cmd.slice(1), { input, encoding: 'utf8', timeout: 60_000 });
  return { error: r.error?.message, status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Runs `cmd` natively and under systrap; both must print the same and exit the same. `mask`
 * blanks what legitimately differs between two runs (the link count of /proc is the number of
 * processes on the host, which the runtime's own stub changes). `cmd` is a function when it
 * names a tool that may be missing: it is resolved inside the test.
 */
function same(name: string, cmd: string[] | (() => string[]), input?: string, mask = (s: string) => s): void {
  test(`same as native: ${name}`, (t) => {
    const argv = typeof cmd === 'function' ? cmd() : cmd;
    const n = native(argv, input);
    const s = systrap(['--', ...argv], input);
    t.is(n.error, undefined, 'the command ran natively');
    t.is(mask(s.stdout), mask(n.stdout));
    t.is(s.status, n.status, s.stderr);
    t.true(n.stdout.length > 0 || argv.includes('true'), 'the command printed something natively');
  });
}

const sample = join(dir, 'sample.txt');
writeFileSync(sample, Array.from({ length: 500 }, (_, i) => `line ${(i * 7919) % 500} ${'x'.repeat(i % 13)}`).join('\n') + '\n');

// /proc: its link count is the number of processes; in a sandbox it is the sandbox's own proc
// mount, dated when the sandbox was made.
same('/bin/ls -l /', ['/bin/ls', '-l', '/'], undefined, (s) => s.replace(/^(dr-xr-xr-x) +\d+ (\S+ +\S+ +\S+) .* proc$/m, '$1 N $2 DATE proc'));
same('/bin/cat of a file', ['/bin/cat', sample]);
same('/usr/bin/sort', ['/usr/bin/sort', sample]);
same('/usr/bin/sort from stdin', ['/usr/bin/sort', '-r'], readFileSync(sample, 'utf8'));
same('/usr/bin/sha256sum', ['/usr/bin/sha256sum', sample, '/bin/ls']);
same('python3 -c', () => [python3(), '-c', 'import json, hashlib, sys\nd = {str(i): hashlib.sha1(bytes([i])).hexdigest() for i in range(50)}\nprint(json.dumps(d, sort_keys=True)[:300]); sys.exit(7)']);
same('/proc/self/exe is the program, not the stub', () => [python3(), '-c', 'import os, sys\nprint(sys.executable, os.readlink("/proc/self/exe"), os.readlink("/proc/%d/exe" % os.getpid()))']);
same('busybox ls -la /usr', () => [busybox(), 'ls', '-la', '/usr']);
same('busybox sha256sum', () => [busybox(), 'sha256sum', sample]);
// A tree that is the same on every machine: this repository's fixtures.
same('busybox find', () => [busybox(), 'find', fileURLToPath(new URL('./fixtures/', import.meta.url)), '-type', 'f']);
same('busybox sh -c (a pipeline in one process)', () => [busybox(), 'sh', '-c', 'read a; echo "got $a"; exit 5'], 'hello\n');
same('busybox wc', () => [busybox(), 'wc', '-lwc', sample]);
same('busybox sort -n', () => [busybox(), 'sort', '-n', '-k2', sample]);
same('a syscall number with bits above its low 32: the call those bits name, as Linux takes it', () => [buildFixture('sysno-hibits')]);
same('every argument a call takes is handled (futex\'s 6th, prctl\'s 5th), junk in those it does not take changes nothing', () => [buildFixture('callargs')]);

test('fds the shell gave systrap beyond stdio are the program\'s at the same numbers (3<file, <(…) as /dev/fd/N), and none of Node\'s own, as natively', (t) => {
  // They were not passed on: `systrap run -- cat <(echo hi)` failed with ENOENT on /dev/fd/63.
  const bash = requireTool('bash', 'bash');
  const line = (prefix: string) => `${prefix}cat <(echo substituted) /dev/fd/3 /dev/fd/40 3<${sample} 40<<<here; ${prefix}ls /proc/self/fd 7</dev/null`;
  const n = native([bash, '-c', line('')]);
  t.regex(n.stdout, /^substituted\n/);
  for (const mode of ['auto', 'off']) {
    const s = native([bash, '-c', line(`'${process.execPath}' '${CLI}' run --sandbox=${mode} -- `)]);
    t.is(s.stdout, n.stdout, `sandbox ${mode}: ${s.stderr}`);
    t.is(s.status, 0);
  }
});

test('pthreads: more threads than sysmsg threads, data through futexes and condition variables', (t) => {
  const exe = buildFixture('threads', ['-pthread']);
  const n = native([exe]);
  const s = systrap(['--max-threads', '2', '--', exe]);
  t.is(n.status, 0);
  t.is(s.status, 0, s.stderr);
  t.is(s.stdout, n.stdout);
  t.regex(s.stdout, /^threads 8 total \d+\n$/);
});

test("the program's own handlers for the stub's signals (SIGSEGV, SIGILL), masks, pending, alt stack", (t) => {
  const exe = buildFixture('signals');
  const n = native([exe]);
  const s = systrap(['--', exe]);
  t.is(s.stdout, n.stdout);
  t.regex(s.stdout, /SIGUSR2 handled after unblock: 1, sigprocmask returned 0\n/);
  t.is(n.signal, 'SIGSEGV');
  t.is(s.status, 128 + 11); // the last fault, with SIG_DFL: killed by SIGSEGV
});

test('rt_sigtimedwait (sigwaitinfo, sigtimedwait, sigwait): pending, sent while waiting, timeouts, interrupts, a waited SIGTERM, careless calls, as natively', (t) => {
  const exe = buildFixture('sigwait');
  const n = native([exe]);
  const s = systrap(['--', exe]);
  t.is(s.status, 0, s.stderr);
  t.is(s.stdout, n.stdout);
  // What the fixture must have seen for the comparison to mean something.
  t.regex(s.stdout, /^SIGTERM from a child: Terminated code=0 from-expected=1$/m);
  t.regex(s.stdout, /^status 7 exited 1$/m);
  t.regex(s.stdout, /^no second one queued: Resource temporarily unavailable$/m);
  t.regex(s.stdout, /^handler ran for 2$/m);
  t.regex(s.stdout, /^the waiting thread took User defined signal 1$/m);
});

test('memory calls over the stub region answer as Linux does for address space the program cannot have; the stub survives', (t) => {
  const s = systrap(['--', buildFixture('mm')]);
  t.is(s.status, 0, s.stderr);
  t.is(
    s.stdout,
    [
      'mmap MAP_FIXED over the stub: Cannot allocate memory',
      // Nothing of the program's is there: unmapping it succeeds, as natively; the stub stays.
      'munmap of the stub: unmapped',
      'mprotect of the stub: Cannot allocate memory',
      "munmap across the stub's start: unmapped",
      'munmap of the stub, length 0: Invalid argument',
      'mprotect of the stub, length 0: changed',
      'madvise of the stub: Cannot allocate memory',
      'mprotect unaligned in the stub: Invalid argument',
      'mmap with a hint in the stub: elsewhere',
      'close(1000): Bad file descriptor',
      'still running: 1',
      '',
    ].join('\n'),
  );
});

test('sleeping threads hold no host thread: others go on with fewer stub threads than sleepers', (t) => {
  const exe = buildFixture('sleepers', ['-pthread']);
  const n = native([exe]);
  const s = systrap(['--max-threads', '1', '--', exe]);
  t.is(n.stdout, 'token passing done before the sleepers woke: 1\n');
  t.is(s.stdout, n.stdout);
  t.is(s.status, 0, s.stderr);
});

test('a program that execve()s another: the new image runs in the same stub', (t) => {
  const exe = buildFixture('exec');
  const bb = busybox();
  const s = systrap(['-e', 'trace=execve', '--', exe, bb, 'echo', 'from', 'busybox']);
  t.is(s.status, 0, s.stderr);
  t.is(s.stdout, 'before exec pid=1\nfrom busybox\n');
  const q = JSON.stringify(bb).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  t.regex(s.stderr, new RegExp(`execve\\(${q}, \\[${q}, "echo", "from", "busybox"\\], 0x[0-9a-f]+ /\\* \\d+ vars \\*/\\) = 0`));
  const fail = systrap(['--', exe, '/nonexistent/x']);
  t.is(fail.status, 99);
  t.regex(fail.stderr, /execv: No such file or directory/);
});

/** Starts the sigint fixture under systrap, sends SIGINT to systrap once it is ready. */
function interrupted(args: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }> {
  const exe = buildFixture('sigint');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'run', '--', exe, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.startsWith('ready\n')) child.kill('SIGINT');
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ code, signal, stdout: out }));
  });
}

test('SIGINT: a handler runs (the program exits as it decides), else the default kills, and systrap dies by SIGINT too (as strace)', async (t) => {
  const handled = await interrupted(['handle']);
  t.is(handled.stdout, 'ready\ngot signal 2\n');
  t.is(handled.code, 3);
  const killed = await interrupted([]);
  t.is(killed.stdout, 'ready\n');
  t.is(killed.signal, 'SIGINT');
  t.is(killed.code, null);
});

test('SIGPIPE: writing to a closed pipe kills the program as natively (141)', (t) => {
  const bb = busybox();
  const r = spawnSync('/bin/sh', ['-c', `${process.execPath} ${CLI} run -- ${bb} yes | head -n 2; echo "status \${PIPESTATUS:-}"`], { encoding: 'utf8' });
  t.is(r.stdout.split('\n').slice(0, 2).join('\n'), 'y\ny');
  const s = spawnSync('/bin/bash', ['-c', `${process.execPath} ${CLI} run -- ${bb} yes | head -n 1 >/dev/null; echo \${PIPESTATUS[0]}`], { encoding: 'utf8' });
  t.is(s.stdout.trim(), '141');
});

test("systrap's own output into a reader that stops early (systrap probe | head -1): exit 0, no stack trace", (t) => {
  const bash = spawnSync('bash', ['-c', `"${process.execPath}" "${CLI}" probe | head -1 >/dev/null; echo "\${PIPESTATUS[0]}"`], { encoding: 'utf8', timeout: 60_000 });
  t.is(bash.stdout.trim(), '0', `systrap's status: ${bash.stderr}`);
  t.notRegex(bash.stderr, /Unhandled|EPIPE/);
});

test('--deny openat:EACCES: the kernel refuses it, also from stub code (hostile fixture)', (t) => {
  const exe = buildFixture('hostile-deny', ['-static']);
  const a = join(dir, 'direct');
  const b = join(dir, 'via-stub');
  // Without --deny both calls create their file: the jump into stub code reaches the kernel.
  const free = systrap(['--', exe, a, b]);
  t.regex(free.stdout, /^direct created\njumping into stub code\n/);
  t.true(existsSync(a) && existsSync(b));
  rmSync(a);
  rmSync(b);
  // With it, neither does; the program is killed for trapping in stub code (SIGSYS).
  const denied = systrap(['--deny', 'openat:EACCES', '--', exe, a, b]);
  t.regex(denied.stdout, /^direct Permission denied\njumping into stub code\n/);
  t.false(existsSync(a));
  t.false(existsSync(b));
  t.is(denied.status, 128 + 31);
});

test('--deny of a traced call: the trace shows it refused, as strace shows an error; still refused from stub code', (t) => {
  const bb = busybox();
  const s = systrap(['-e', 'trace=openat', '--deny', 'openat:EACCES', '--', bb, 'cat', sample]);
  t.is(s.status, 1);
  t.regex(s.stderr, new RegExp(`^openat\\(AT_FDCWD, "${sample.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}", O_RDONLY\\) += -1 EACCES \\(Permission denied\\)$`, 'm'));
  t.regex(s.stderr, /cat: .*Permission denied/);
  // -c counts it as an error.
  const c = systrap(['-c', '--deny', 'openat:EACCES', '--', bb, 'cat', sample]);
  t.regex(c.stderr, /^ *[\d.]+ +[\d.]+ +\d+ +1 +1 +openat$/m, c.stderr);
  // The hostile fixture: its direct call traced and refused, its jump into stub code refused by
  // the kernel all the same (no file, SIGSYS).
  const exe = buildFixture('hostile-deny', ['-static']);
  const a = join(dir, 'traced-direct');
  const b = join(dir, 'traced-via-stub');
  const h = systrap(['-e', 'trace=openat', '--deny', 'openat:EACCES', '--', exe, a, b]);
  t.regex(h.stdout, /^direct Permission denied\njumping into stub code\n/);
  t.regex(h.stderr, /traced-direct", O_WRONLY\|O_CREAT, 0644\) += -1 EACCES \(Permission denied\)/);
  t.false(existsSync(a));
  t.false(existsSync(b));
  t.is(h.status, 128 + 31);
});

test('--deny changes exactly that call: cat fails to open, everything else works', (t) => {
  const bb = busybox();
  const s = systrap(['--deny', 'openat:EACCES', '--', bb, 'cat', sample]);
  t.is(s.status, 1);
  t.regex(s.stderr, /Permission denied/);
  const ok = systrap(['--deny', 'mkdir:EPERM', '--', bb, 'cat', sample]);
  t.is(ok.stdout, readFileSync(sample, 'utf8'));
});

test('-e inject=: the call is not made and returns the injected error or value', (t) => {
  const bb = busybox();
  const target = join(dir, 'never');
  const s = systrap(['-e', 'inject=mkdir:error=EEXIST', '--', bb, 'mkdir', target]);
  t.false(existsSync(target));
  t.is(s.status, 1);
  t.regex(s.stderr, /File exists/);
  const v = systrap(['-e', 'inject=geteuid:retval=4242', '--', bb, 'id', '-u']);
  t.is(v.stdout, '4242\n');
});

test('--sandbox=MODE: off shows the host pids, auto and require a namespace of its own (parent 1), a bad mode is a usage error (1)', (t) => {
  const bb = busybox();
  const pids = (mode: string) => {
    const r = spawnSync(process.execPath, [CLI, 'run', `--sandbox=${mode}`, '--', bb, 'sh', '-c', 'echo $PPID $$'], { encoding: 'utf8', timeout: 60_000 });
    return { ...r, ids: r.stdout.trim().split(' ').map(Number) };
  };
  const off = pids('off');
  t.is(off.status, 0, off.stderr);
  t.is(off.ids[0], off.pid, 'unsandboxed, the parent is the systrap process');
  t.true(off.ids[1] > 1);
  const req = pids('require');
  if (process.getuid?.() === 0) {
    t.is(req.status, 0, req.stderr);
    t.deepEqual(req.ids, [1, 2], 'the sandbox init is pid 1, the program pid 2');
    t.deepEqual(pids('auto').ids, [1, 2]);
  } else {
    // Unprivileged, the namespaces may be refused (a masked /proc): require says so, auto falls back.
    t.true(req.status === 0 ? req.ids[0] === 1 : /sandbox/i.test(req.stderr), req.stderr);
    t.is(pids('auto').status, 0);
  }
  const bad = systrap(['--sandbox=maybe', '--', bb, 'true']);
  t.is(bad.status, 1);
  t.regex(bad.stderr, /--sandbox needs auto, require or off/);
});

test('-e trace= prints strace-like lines; untraced calls do not appear', (t) => {
  const bb = busybox();
  const s = systrap(['-e', 'trace=openat,close', '--', bb, 'cat', sample]);
  t.is(s.status, 0);
  t.regex(s.stderr, new RegExp(`openat\\(AT_FDCWD, "${sample}", O_RDONLY[^)]*\\) = 3`));
  t.regex(s.stderr, /close\(3\) += 0/);
  t.notRegex(s.stderr, /read\(/);
  t.regex(s.stderr, /\+\+\+ exited with 0 \+\+\+/);
});

test('-c prints a summary table; -o writes the trace to a file', (t) => {
  const bb = busybox();
  const out = join(dir, 'trace.txt');
  const s = systrap(['-c', '-o', out, '--', bb, 'cat', sample]);
  t.is(s.status, 0);
  t.is(s.stdout, readFileSync(sample, 'utf8'));
  const table = readFileSync(out, 'utf8');
  t.regex(table, /% time +seconds +usecs\/call +calls +errors +syscall/);
  t.regex(table, /\b(read|sendfile)\b/); // busybox cat copies with sendfile
  t.regex(table, /total/);
});

test('--policy: a module decides per call in the runner worker', (t) => {
  const bb = busybox();
  const policy = join(dir, 'policy.mjs');
  writeFileSync(policy, "export function handle(call) { return call.name === 'geteuid' ? 77 : call.name === 'unlink' ? { errno: 1 } : 'pass'; }\n");
  const s = systrap(['--policy', policy, '--', bb, 'id', '-u']);
  t.is(s.stdout, '77\n');
  const victim = join(dir, 'keep');
  writeFileSync(victim, 'x');
  const r = systrap(['--policy', policy, '--', bb, 'rm', victim]);
  t.is(r.status, 1);
  t.true(existsSync(victim));
});

test('bad input: missing program 127, not executable 126, not ELF 126, wrong arch, bad interpreter, bad options (1)', (t) => {
  const bb = busybox();
  const missing = systrap(['--', '/nonexistent/prog']);
  t.is(missing.status, 127);
  t.regex(missing.stderr, /^systrap: \/nonexistent\/prog: No such file or directory\n$/);
  t.is(systrap(['--', 'no-such-command-anywhere']).status, 127);

  const noexec = join(dir, 'noexec');
  writeFileSync(noexec, '\x7fELF');
  chmodSync(noexec, 0o644);
  const a = systrap(['--', noexec]);
  t.is(a.status, 126);
  t.regex(a.stderr, /Permission denied/);

  const script = join(dir, 'script.txt');
  writeFileSync(script, 'hello, not an ELF\n');
  chmodSync(script, 0o755);
  const b = systrap(['--', script]);
  t.is(b.status, 126);
  t.is(b.stderr.trim().split('\n').length, 1);

  // A 32-bit ELF header.
  const i386 = join(dir, 'i386');
  const h = Buffer.alloc(64);
  h.set([0x7f, 0x45, 0x4c, 0x46, 1, 1, 1]);
  h.writeUInt16LE(2, 16);
  h.writeUInt16LE(3, 18);
  writeFileSync(i386, h);
  chmodSync(i386, 0o755);
  const c = systrap(['--', i386]);
  t.is(c.status, 126);
  t.regex(c.stderr, /architecture|ELF/i);
  t.is(c.stderr.trim().split('\n').length, 1);

  // A dynamic program whose interpreter does not exist.
  const interp = join(dir, 'badinterp');
  const ls = readFileSync('/bin/ls');
  const at = ls.indexOf('/lib64/ld-linux-x86-64.so.2');
  t.true(at > 0);
  ls.write('/lib64/ld-linux-x86-64.so.X', at);
  writeFileSync(interp, ls);
  chmodSync(interp, 0o755);
  const d = systrap(['--', interp]);
  t.is(d.status, 127);
  t.regex(d.stderr, /interpreter/i);
  t.is(d.stderr.trim().split('\n').length, 1);

  // Command-line mistakes: one line and a hint, status 1, as strace.
  const e = systrap(['--bogus', '--', bb, 'true']);
  t.is(e.status, 1);
  t.is(e.stderr, "systrap: unrecognized option '--bogus'\nTry 'systrap run --help' for more information.\n");
  const f = systrap(['-e', 'trace=nosuchcall', '--', bb, 'true']);
  t.is(f.status, 1);
  t.regex(f.stderr, /^systrap: invalid system call 'nosuchcall'\n/);
  const none = systrap([]);
  t.is(none.status, 1);
  t.regex(none.stderr, /must have PROG/);
});

/** Live processes holding a systrap memory file (stubs and sysmsg threads), any parent. */
function liveStubs(): string[] {
  const out: string[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (!readlinkSync(`/proc/${d}/fd/1000`).includes('systrap-memory')) continue;
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      out.push(d);
    } catch {
      // not ours, or gone
    }
  }
  return out;
}

test('nothing is left running after runs, failures and kills', async (t) => {
  const bb = busybox();
  const before = new Set(liveStubs());
  systrap(['--', '/nonexistent']);
  systrap(['--', bb, 'true']);
  systrap(['--policy', '/nonexistent.mjs', '--', bb, 'true']);
  systrap(['--', buildFixture('threads', ['-pthread'])]);
  await interrupted([]);
  // Sysmsg threads die with their stub (PDEATHSIG, and the runtime kills them too), a moment
  // after systrap has exited; zombies left to init are init's to reap, so only live ones count.
  const left = () => liveStubs().filter((p) => !before.has(p));
  await until(() => left().length === 0);
  t.deepEqual(left(), []);
});
