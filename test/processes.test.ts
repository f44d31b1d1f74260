/**
 * Process trees under `systrap run` (fork, vfork, spawn, exec, wait, groups), compared with
 * native runs of the same command (stdout and exit status), on the real kernel: shells,
 * pipelines, make with gcc, tar with gzip, git, find -exec, xargs -P, Python's subprocess and a
 * multiprocessing fork pool, the JVM. Each test runs the CLI as a child process, as users do.
 */
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildFixture } from './fixtures/build.js';
import { isElf, processes, requireTool, until } from './helpers.js';

const CLI = fileURLToPath(new URL('../bin/systrap.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'systrap-procs-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

const bash = () => requireTool('bash', 'bash');
const busybox = () => requireTool('busybox', 'busybox-static');
// Debian's python3, a dynamic ELF program: not a wrapper script such as a pyenv shim on PATH.
const python3 = () => requireTool('python3', 'python3', { what: 'an ELF program', test: isElf });

interface Ran {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string[], opts: { cwd?: string; systrap?: string[] } = {}): Ran {
  const argv = opts.systrap ? [CLI, 'run', ...opts.systrap, '--', ...cmd] : cmd.slice(1);
  const r = spawnSync(opts.systrap ? process.execPath : cmd[0], argv, { cwd: opts.cwd, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** `cmd` natively and under systrap (sandboxed, and with --sandbox=off): the same stdout and status. */
function same(name: string, cmd: () => string[], opts: { cwd?: () => string; modes?: string[] } = {}): void {
  test(`same as native: ${name}`, (t) => {
    const argv = cmd();
    const n = run(argv, { cwd: opts.cwd?.() });
    t.is(n.signal, null, `native run ended by ${n.signal}`);
    for (const mode of opts.modes ?? ['auto', 'off']) {
      const s = run(argv, { cwd: opts.cwd?.(), systrap: [`--sandbox=${mode}`] });
      t.is(s.signal, null, `systrap (${mode}) ended by ${s.signal}: ${s.stderr}`);
      t.is(s.stdout, n.stdout, `stdout (sandbox ${mode})`);
      t.is(s.status, n.status, `status (sandbox ${mode}): ${s.stderr}`);
    }
  });
}

same('a C program: fork, vfork, clone, wait statuses, SIGCHLD, groups, sessions, orphans, PDEATHSIG', () => [buildFixture('procs')]);
same('the same, static', () => [buildFixture('procs', ['-static'])]);
same('CPU time: wait4 rusage of a child and of one that waited for its own, getrusage self and children, times, careless calls', () => [buildFixture('cpu')]);
same('resource limits, nice, CPU affinity a process sets: its threads, its fork\'s child and what that execs see them (the syscall thread takes them on before it forks)', () => [buildFixture('attrs', ['-pthread'])]);
// Dropping root to uid/gid 1000: only as root, and only without a sandbox (whose user namespace maps root alone).
// The program where uid 1000 may run it (the fixtures' folder is root's alone).
const anyone = mkdtempSync(join(tmpdir(), 'systrap-attrs-'));
test.after.always(() => rmSync(anyone, { recursive: true, force: true }));
const forAnyone = (exe: string) => {
  chmodSync(anyone, 0o755);
  copyFileSync(exe, join(anyone, 'attrs'));
  copyFileSync('/bin/true', join(anyone, 'root-only'));
  chmodSync(join(anyone, 'root-only'), 0o700);
  return [join(anyone, 'attrs'), 'creds', join(anyone, 'root-only')];
};
if (process.getuid?.() === 0) same('credentials a root process drops with raw setgroups/setresgid/setresuid: every thread, the child and its execve keep uid 1000 (the child used to be root again), execve checks as uid 1000 (EACCES for a root-only program)', () => forAnyone(buildFixture('attrs', ['-pthread'])), { modes: ['off'] });
same('the process CPU clock (CLOCK_PROCESS_CPUTIME_ID, clock()): never backwards while another thread runs, all threads counted, as getrusage', () => [buildFixture('cpuclock', ['-pthread', '-O1'])]);
same("/proc/self/cmdline and environ are the program's argv and environment (its own, its parent's through /proc/PID), also after execve", () => [
  '/bin/sh',
  '-c',
  'cat /proc/self/cmdline | tr "\\0" " "; echo; tr "\\0" " " < /proc/$$/cmdline; echo; env -i A=1 B=two cat /proc/self/environ | tr "\\0" " "; echo',
]);
if (process.getuid?.() === 0) {
  same('capabilities through a uid change (setpriv: PR_SET_KEEPCAPS, capset, setresuid, setgroups) and execve: the ids and capability sets the program ends with', () => [requireTool('setpriv', 'util-linux'), '--reuid=65534', '--regid=65534', '--clear-groups', '/bin/sh', '-c', 'id; grep -E "^Cap(Inh|Prm|Eff)" /proc/self/status'], { modes: ['off'] });
}
same("/proc/self is the process getpid names (its stat, its status's Tgid, the link), from a thread and a fork's child too", () => [buildFixture('procself', ['-pthread'])]);
same('timers: alarm, setitimer/getitimer (REAL, PROF), POSIX timers on wall and CPU clocks (SIGEV_SIGNAL, THREAD_ID, NONE, overruns, TIMER_ABSTIME), fork and execve, careless calls', () => [buildFixture('timers', ['-pthread'])]);
same('signals with a value: sigqueue and pthread_sigqueue to itself, a thread, a child; forged codes, bad pointers, pids, signals', () => [buildFixture('sigqueue')]);
same('signalfd: blocked signals read as records (pending before, raise, a child\'s exit, epoll, a thread, sigqueue, a timer), a mask changed, SFD_NONBLOCK, an unblocked one handled, a fork\'s child reading its own, closed, careless calls', () => [buildFixture('signalfd', ['-pthread'])]);
same('waits with a signal mask of their own (pselect, ppoll, epoll_pwait): interrupted by a signal the mask lets in, its handler run, the mask back after; one pending before; an fd ready first; careless masks', () => [buildFixture('maskwait')]);
same('a signal ignored by default that one thread blocks, taken by another while it sleeps: the sleep goes on (nanosleep, clock_nanosleep), sigtimedwait ends EINTR', () => [buildFixture('ignoredwake', ['-pthread'])]);
same('signalfd made and closed 2000 times, then 100 kept', () => [buildFixture('signalfd', ['-pthread']), 'loop']);
same('a pseudo-terminal made the controlling terminal of a child that leads a session (forkpty: setsid, TIOCSCTTY): its group in the foreground, /dev/tty, a Ctrl-C typed into the master', () => [buildFixture('ownpty')]);
same("Python's pty.fork: the child's output read from the master", () => [python3(), '-c', 'import pty, os\npid, fd = pty.fork()\nif pid == 0:\n    print("child", os.isatty(0))\n    os._exit(0)\nos.waitpid(pid, 0)\nprint(os.read(fd, 100))']);
// util-linux script reads its child's SIGCHLD (and SIGTERM, SIGWINCH) through a signalfd: without one it waits for ever.
same('util-linux script: a command on a new terminal, its exit status (-e)', () => [requireTool('script', 'bsdutils'), '-eqc', 'echo hi; exit 3', '/dev/null']);
same("pidfds of the program's children: pidfd_open, CLONE_PIDFD, poll, waitid(P_PIDFD) blocking and PIDFD_NONBLOCK, careless fds", () => [buildFixture('pidfd')]);
same('job control: SIGSTOP/SIGTSTP/SIGCONT stop and continue, WUNTRACED/WCONTINUED once, SIGCHLD codes, SA_NOCLDSTOP, no EINTR, kill(-pgid)', () => [buildFixture('jobs')]);
same('job control, static', () => [buildFixture('jobs', ['-static'])]);
same('sh -c: pipelines, command substitution, subshells, background jobs', () => [
  busybox(),
  'sh',
  '-c',
  'echo a b c | tr " " "\\n" | sort -r | head -2; x=$(echo sub); echo "got $x"; (echo in; exit 3); echo "sub=$?"; sleep 10 & kill %1; wait; echo "waited $?"; sh -c "kill -9 \\$\\$"; echo "killed $?"',
]);
same('bash: subshells, command substitution, $(( )), a background job killed and waited for', () => [
  bash(),
  '-c',
  'echo $(echo hi) | tr a-z A-Z; ( exit 3 ); echo $?; sleep 10 & kill %1; wait %1; echo "job $?"; for i in 1 2 3; do (echo $((i * i))); done | paste -sd+',
]);
same('a loop spawning 30 processes', () => [bash(), '-c', 'for i in $(seq 30); do /bin/true; done; echo done']);
same('tar czf - DIR | tar tzf -', () => [bash(), '-c', `tar czf - -C ${fileURLToPath(new URL('../src/abi', import.meta.url))} . | tar tzf - | sort`]);
same('find -exec … + and xargs -P2', () => [
  bash(),
  '-c',
  `find ${fileURLToPath(new URL('../src/abi', import.meta.url))} -name '*.ts' -exec wc -l {} + | tail -1; printf '1\\n2\\n3\\n4\\n' | xargs -P2 -n1 echo | sort`,
]);

test('same as native: git init, commit, log in a temporary folder', (t) => {
  const git = requireTool('git', 'git');
  const script = `${git} init -q . && ${git} -c user.email=a@b -c user.name=n commit -q --allow-empty -m first && ${git} log --format=%s`;
  const n = run([bash(), '-c', script], { cwd: mkdtempSync(join(dir, 'git-')) });
  const s = run([bash(), '-c', script], { cwd: mkdtempSync(join(dir, 'git-')), systrap: [] });
  t.is(n.stdout, 'first\n');
  t.is(s.stdout, n.stdout, s.stderr);
  t.is(s.status, 0);
});

test('make -j2 of a small C project (gcc spawns cc1, as, ld), then the program runs', (t) => {
  const make = requireTool('make', 'make');
  requireTool('gcc', 'gcc');
  const project = mkdtempSync(join(dir, 'make-'));
  writeFileSync(join(project, 'a.c'), 'int f(void);\n#include <stdio.h>\nint main(void) { printf("sum %d\\n", f()); return 0; }\n');
  writeFileSync(join(project, 'b.c'), 'int f(void) { return 42; }\n');
  writeFileSync(join(project, 'Makefile'), 'x: a.o b.o\n\tgcc -o x a.o b.o\n%.o: %.c\n\tgcc -c -o $@ $<\n');
  const s = run([make, '-s', '-j2'], { cwd: project, systrap: [] });
  t.is(s.status, 0, s.stderr);
  t.is(run([join(project, 'x')]).stdout, 'sum 42\n');
});

test('python3: subprocess.run (the vfork path), a missing program, a multiprocessing fork pool, os.fork', (t) => {
  const py = join(dir, 'mp.py');
  writeFileSync(
    py,
    [
      'import multiprocessing as mp, subprocess, os',
      'def sq(x): return x * x',
      "if __name__ == '__main__':",
      "    with mp.get_context('fork').Pool(2) as pool: print(sorted(pool.map(sq, range(10))))",
      "    r = subprocess.run(['sh', '-c', 'echo from sh; exit 3'], capture_output=True, text=True); print(r.returncode, r.stdout.strip())",
      "    try: subprocess.run(['/nonexistent/x'])",
      "    except FileNotFoundError as e: print('FileNotFoundError', e.errno)",
      '    pid = os.fork()',
      '    if pid == 0: os._exit(4)',
      '    print(os.waitpid(pid, 0)[1] >> 8)',
      '',
    ].join('\n'),
  );
  const n = run([python3(), py]);
  t.is(n.status, 0, n.stderr);
  const s = run([python3(), py], { systrap: [] });
  t.is(s.stdout, n.stdout, `status ${s.status}, signal ${s.signal}: ${s.stderr}`);
  t.is(s.status, 0);
});

test('clone3 answers ENOSYS (the sentry does not take it yet); glibc falls back to clone: its threads and posix_spawn work as natively', (t) => {
  const exe = buildFixture('clone3', ['-pthread']);
  const n = run([exe]);
  t.is(n.stdout, 'clone3: made a process\npthread: 42\nposix_spawn: exited 0\n', 'natively');
  for (const mode of ['auto', 'off']) {
    const s = run([exe], { systrap: [`--sandbox=${mode}`] });
    t.is(s.stdout, 'clone3: Function not implemented\npthread: 42\nposix_spawn: exited 0\n', `sandbox ${mode}: ${s.stderr}`);
    t.is(s.status, 0);
  }
});

test('java -version prints what it prints natively (its threads ask sched_getaffinity of their own tids)', (t) => {
  const java = requireTool('java', 'default-jre-headless');
  const n = run([java, '-version']);
  const s = run([java, '-version'], { systrap: [] });
  t.is(s.status, n.status, s.stderr);
  t.is(s.stderr, n.stderr);
});

test('strace -f style: children traced (N-prefixed lines in a -o file), each process exits on its own line, -f -c sums the tree', (t) => {
  const bb = busybox();
  const out = join(dir, 'trace.txt');
  const s = run([bb, 'sh', '-c', 'echo one | cat; exit 3'], { systrap: ['-f', '-e', 'trace=execve,exit_group,wait4', '-o', out] });
  t.is(s.status, 3);
  t.is(s.stdout, 'one\n');
  const lines = readFileSync(out, 'utf8').trim().split('\n');
  t.true(lines.every((l) => /^\d+ +\S/.test(l)), `every line of a -f -o file starts with its pid, as strace writes it: ${lines.join('\n')}`);
  const root = /^(\d+) /.exec(lines[0])![1];
  const execs = lines.filter((l) => /^\d+ +execve\(/.test(l) && !l.startsWith(`${root} `));
  t.true(execs.length >= 1, `an execve of a child, with its pid: ${lines.join('\n')}`);
  t.true(lines.some((l) => l.startsWith(`${root} `) && / wait4\(/.test(l)), 'the shell waits for its children');
  const exits = lines.filter((l) => /\+\+\+ exited with \d+ \+\+\+$/.test(l));
  t.true(exits.length >= 3, `one exit line per process: ${exits.join('\n')}`);
  t.regex(exits.at(-1)!, /exited with 3/, 'the shell ends last');
  // Without -f only the first process is traced, as strace does.
  const quiet = run([bb, 'sh', '-c', 'echo one | cat; exit 3'], { systrap: ['-e', 'trace=execve,exit_group', '-e', 'signal=none', '-o', out] });
  t.is(quiet.status, 3);
  const rootOnly = readFileSync(out, 'utf8').trim().split('\n');
  t.deepEqual(rootOnly.map((l) => l.replace(/\(.*/, '')), ['execve', 'exit_group', '+++ exited with 3 +++'], rootOnly.join('\n'));
  const c = run([bb, 'sh', '-c', 'echo one | cat >/dev/null; /bin/true'], { systrap: ['-f', '-c', '-o', join(dir, 'sum.txt')] });
  t.is(c.status, 0);
  const table = readFileSync(join(dir, 'sum.txt'), 'utf8');
  // Two children exec'd something: execve is counted in them, not only in the shell.
  t.regex(table, /\s(\d+)\s+\d*\s*execve\n/);
  const execCalls = Number(/(\d+)\s+(?:\d+\s+)?execve\n/.exec(table)?.[1]);
  t.true(execCalls >= 2, table);
});

test('-ff -o PREFIX: each process has its own trace file PREFIX.PID, its pid as the program sees it', (t) => {
  const bb = busybox();
  const prefix = join(mkdtempSync(join(dir, 'ff-')), 'trace');
  const s = run([bb, 'sh', '-c', 'echo $$; sleep 0 & wait; (exit 0); echo x | cat >/dev/null'], { systrap: ['-ff', '-o', prefix, '-e', 'trace=exit_group,execve'] });
  t.is(s.status, 0, s.stderr);
  const files = readdirSync(join(prefix, '..')).filter((f) => f.startsWith('trace.')).sort();
  t.true(files.length >= 3, `one file per process: ${files}`);
  const root = s.stdout.split('\n')[0];
  t.true(files.includes(`trace.${root}`), `the shell's file, named after its pid ${root}: ${files}`);
  for (const f of files) {
    const text = readFileSync(join(prefix, '..', f), 'utf8');
    t.regex(text, /\+\+\+ exited with 0 \+\+\+\n$/, `${f} ends with its process's exit`);
    t.notRegex(text, /^\[pid/m, 'no [pid N] prefix in a per-process file');
  }
  t.is(run([bb, 'true'], { systrap: ['-ff'] }).status, 1, '-ff without -o is a usage error');
});

test('--deny and -e inject apply to every process of the tree', (t) => {
  const bb = busybox();
  const target = join(dir, 'denied');
  const s = run([bb, 'sh', '-c', `(mkdir ${target}); echo $?`], { systrap: ['--deny', 'mkdir:EACCES'] });
  t.is(s.stdout, '1\n');
  const i = run([bb, 'sh', '-c', 'id -u; (id -u)'], { systrap: ['-e', 'inject=geteuid:retval=4242'] });
  t.is(i.stdout, '4242\n4242\n');
});

for (const mode of ['auto', 'off']) {
  test(`SIGKILL of systrap in the middle of a tree, one process in a session of its own (sandbox ${mode}): nothing of the tree is left`, async (t) => {
    if (mode === 'auto' && process.getuid?.() !== 0) return t.pass('unprivileged: no sandbox here');
    const bb = busybox();
    // The last one leads a session (its stub too, in the kernel: out of the stubs' group).
    const script = `for i in 1 2 3 4; do sleep 1000 & done; ${bb} setsid ${bb} sh -c "echo started; exec ${bb} sleep 1000" & wait`;
    const child = spawn(process.execPath, [CLI, 'run', `--sandbox=${mode}`, '--', bb, 'sh', '-c', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    t.teardown(() => child.kill('SIGKILL')); // a failed check must not leave it running
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    // The tree: in a sandbox, every process of the sandbox's pid namespace (its init is the
    // CLI's child); without one, the CLI's children (every stub is Node's child).
    const own = readlinkSync('/proc/self/ns/pid');
    const tree = () => {
      const all = processes();
      if (mode === 'off') return all.filter((p) => p.ppid === child.pid);
      const init = all.find((p) => p.ppid === child.pid && p.ns !== undefined && p.ns !== own);
      return init ? all.filter((p) => p.ns === init.ns) : [];
    };
    // "started" comes after the five forks returned and the setsid; the last exec follows it.
    const read = (pid: number, file: string) => {
      try {
        return readFileSync(`/proc/${pid}/${file}`, 'utf8');
      } catch {
        return '';
      }
    };
    const sleeps = () => tree().filter((p) => read(p.pid, 'cmdline').split('\0').includes('sleep')).map((p) => p.pid);
    t.true(await until(() => sleeps().length === 5), `the sleeps: ${sleeps().join(' ')}`);
    const pids = tree().map((p) => p.pid);
    const sessionOf = (pid: number) => Number(read(pid, 'stat').split(') ')[1]?.split(' ')[3]);
    t.is(sleeps().filter((pid) => sessionOf(pid) === pid).length, 1, 'the stub of the one after setsid leads its session');
    child.kill('SIGKILL');
    const alive = () => pids.filter((pid) => existsSync(`/proc/${pid}`));
    // Named with their state and parent when some are left (a zombie is the reaper's delay).
    const describe = (pid: number) => {
      try {
        const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
        return `${pid} ${st.slice(st.indexOf('('), st.lastIndexOf(')') + 1)} ${st.slice(st.lastIndexOf(')') + 2).split(' ').slice(0, 2).join(' ppid ')}`;
      } catch {
        return `${pid} (gone)`;
      }
    };
    t.true(await until(() => alive().length === 0, 2000), `left after SIGKILL of systrap: ${alive().map(describe).join(', ')}`);
  });
}
