/**
 * `systrap run` with strace's options against strace 6.1 itself, line by line, on the same
 * programs: Debian's static busybox (the same calls in the same order natively and under
 * systrap) and a dynamic coreutils program. What may differ is taken out on both sides by
 * {@link normalize}: addresses, times, pids (mapped by order of appearance), random bytes, the
 * padding that follows from them (re-aligned on both sides; ours is checked raw in
 * {@link checkAlignment}), and rseq, which the sentry refuses (ENOSYS) where the kernel answers.
 */
import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildFixture } from './fixtures/build.js';
import { requireTool } from './helpers.js';

const CLI = fileURLToPath(new URL('../bin/systrap.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'systrap-strace-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
const busybox = () => requireTool('busybox', 'busybox-static');
const strace = () => requireTool('strace', 'strace');
let n = 0;

/** Runs `argv` under strace and under systrap with the same options; both traces (files) and statuses. */
function both(opts: string[], argv: string[]): { native: string; ours: string; nativeStatus: number | string | null; oursStatus: number | string | null; stderr: string; nativeOut: string; oursOut: string } {
  const [a, b] = [join(dir, `n${n}`), join(dir, `s${n++}`)];
  const env = { ...process.env, LC_ALL: 'C' };
  const nat = spawnSync(strace(), [...opts, '-o', a, ...argv], { encoding: 'utf8', env, timeout: 60_000 });
  const ours = spawnSync(process.execPath, [CLI, 'run', ...opts, '-o', b, '--', ...argv], { encoding: 'utf8', env, timeout: 60_000 });
  // A signal that killed the program kills strace (and systrap) too.
  return { native: readFileSync(a, 'utf8'), ours: readFileSync(b, 'utf8'), nativeStatus: nat.status ?? nat.signal, oursStatus: ours.status ?? ours.signal, stderr: ours.stderr, nativeOut: nat.stdout, oursOut: ours.stdout };
}

/** strace's `<unfinished ...>` / `<... resumed>` pairs joined back into one line per call. */
function joinResumed(lines: string[]): string[] {
  const open = new Map<string, number>();
  const out: string[] = [];
  for (const l of lines) {
    const u = /^(\d+ +)?(.*) <unfinished \.\.\.>$/.exec(l);
    if (u) {
      open.set(u[1] ?? '', out.length);
      out.push(l.slice(0, l.length - ' <unfinished ...>'.length));
      continue;
    }
    const r = /^(\d+ +)?<\.\.\. \S+ resumed>(.*)$/.exec(l);
    if (r && open.has(r[1] ?? '')) {
      const i = open.get(r[1] ?? '')!;
      open.delete(r[1] ?? '');
      out[i] += r[2].replace(/^ +/, (m) => (out[i].endsWith(' ') ? '' : m));
      continue;
    }
    out.push(l);
  }
  return out;
}

/**
 * What both sides must agree on. Pids become P1, P2... in order of appearance (line prefixes,
 * results of clone/getpid/set_tid_address, si_pid), so per-process sequences compare.
 */
function normalize(text: string): string[] {
  const pids = new Map<string, string>();
  const pid = (p: string) => {
    if (!pids.has(p)) pids.set(p, `P${pids.size + 1}`);
    return pids.get(p)!;
  };
  const out: string[] = [];
  for (const line of joinResumed(text.trimEnd().split('\n'))) {
    // [pid] [time] body [<T>]: the parts around the call first, so the body's patterns anchor.
    const m = /^(?:(\d+) +)?(\d{2}:\d{2}:\d{2}(?:\.\d{6})? |\d{10}\.\d{6} | +\d+\.\d{6} )?(.*?)( <\d+\.\d{6}>)?$/.exec(line)!;
    const [, p, time, body, took] = m;
    if (/^rseq\(/.test(body)) continue;
    const stamp = time === undefined ? '' : /:/.test(time) ? 'TIME ' : time.startsWith(' ') ? 'REL ' : 'EPOCH ';
    const call = body
      .replace(/^(clone|vfork|fork|getpid|getppid|gettid|set_tid_address|wait4|waitid)(\(.*\)) += (\d+)$/, (_, c: string, a: string, r: string) => `${c}${a} = ${pid(r)}`)
      .replace(/(si_pid|sigev_notify_thread_id)=(\d+)/g, (_, f: string, q: string) => `${f}=${pid(q)}`)
      .replace(/^(kill|wait4)\((\d+),/, (_, c: string, q: string) => `${c}(${pid(q)},`)
      .replace(/0x[0-9a-f]{5,}/g, 'ADDR')
      .replace(/(socket|pipe):\[\d+\]/g, '$1:[INODE]')
      // -v: the inode of a pipe or socket (each run has its own); a file's is the same file's.
      .replace(/st_ino=\d+, st_mode=(S_IFSOCK|S_IFIFO)/g, 'st_ino=INODE, st_mode=$1')
      // -v: a file's access time is moved by the runs' own reads (relatime's first read after a
      // change, or every read where a sandbox's file system keeps strict access times), and strace's
      // run reads the same files just before ours: each may see a time the other set. Its
      // decoding is the same code as the modification and change times', which stay compared.
      .replace(/st_atime=\d+ \/\* [^*]+ \*\/, st_atime_nsec=\d+/g, 'st_atime=ATIME')
      .replace(/^getrandom\("[^"]*"/, 'getrandom("RANDOM"')
      .replace(/^(.*?) +(= .*)$/, '$1 $2');
    out.push(`${p === undefined ? '' : `${pid(p)} `}${stamp}${call}${took === undefined ? '' : ' <T>'}`);
  }
  return out;
}

/**
 * Our lines against strace's: first what only one side printed (as multisets, a short diff: ava's
 * diff of two long arrays is cut in CI's log before the lines that differ), then the order.
 */
function sameLines(t: ExecutionContext, what: string, ours: string[], native: string[], raw: string): void {
  const left = [...native];
  const onlyOurs: string[] = [];
  for (const l of ours) {
    const i = left.indexOf(l);
    if (i < 0) onlyOurs.push(l);
    else left.splice(i, 1);
  }
  t.deepEqual({ onlyOurs, onlyNative: left }, { onlyOurs: [], onlyNative: [] }, what);
  t.deepEqual(ours, native, `${what}\n${raw}`);
}

/** Our raw lines: `= result` starts at column `col` when the call is shorter, after one space otherwise. */
function checkAlignment(text: string, col = 40): string[] {
  const bad: string[] = [];
  for (const l of text.trimEnd().split('\n')) {
    const m = /^(.*?\))( +)= /.exec(l);
    if (!m || l.startsWith('---') || l.includes('+++')) continue;
    const want = Math.max(1, col - m[1].length);
    if (m[2].length !== want) bad.push(l);
  }
  return bad;
}

/** One line per process's calls, processes in order of their first line. */
function byProcess(lines: string[]): string[] {
  const procs = new Map<string, string[]>();
  for (const l of lines) {
    const p = /^(P\d+) /.exec(l)?.[1] ?? 'P1';
    procs.set(p, [...(procs.get(p) ?? []), l]);
  }
  return [...procs.values()].map((ls) => ls.join('\n'));
}

const hostname = '/etc/hostname';
const STATIC_CASES: Array<[string, string[]]> = [
  ['no options', []],
  ['-y: fd paths', ['-y']],
  ['-s 4: strings cut', ['-s', '4']],
  ['-a 20: another column', ['-a', '20']],
  ['-z: successful only', ['-z']],
  ['-Z: failed only', ['-Z']],
  ['-e status=failed', ['-e', 'status=failed']],
  ['-e trace=%file', ['-e', 'trace=%file']],
  ['-e trace=%desc', ['-e', 'trace=%desc']],
  ['--trace=!%memory', ['--trace=!%memory']],
  ['-qq: no exit line', ['-qq']],
  ['-P PATH', ['-P', hostname]],
  ['-T', ['-T']],
  ['-tt', ['-tt']],
  ['-ttt', ['-ttt']],
  ['-r', ['-r']],
  ['-e inject=openat:error=EACCES', ['-e', 'inject=openat:error=EACCES']],
  ['-e fault=read:when=2', ['-e', 'fault=read:when=2']],
  ['--string-limit=2 --columns=10', ['--string-limit=2', '--columns=10']],
  ['-X raw', ['-X', 'raw']],
  ['-X verbose', ['-X', 'verbose']],
  ['-v: structures and the environment in full', ['-v']],
];

for (const [name, opts] of STATIC_CASES) {
  test(`same lines as strace 6.1: ${name} (busybox cat, static)`, (t) => {
    const r = both(opts, [busybox(), 'cat', hostname, '/nonexistent']);
    t.is(r.oursStatus, r.nativeStatus, r.stderr);
    sameLines(t, '', normalize(r.ours), normalize(r.native), r.ours);
    const align = opts.includes('-a') ? 20 : opts.includes('--columns=10') ? 10 : 40;
    t.deepEqual(checkAlignment(r.ours, align), []);
  });
}

test('same lines as strace 6.1: a signal that kills, --- SIG --- and +++ killed by +++ (and -e signal=none); systrap dies by it', (t) => {
  for (const opts of [[], ['-e', 'signal=none'], ['-e', 'trace=none']]) {
    const r = both(opts, [busybox(), 'sh', '-c', 'kill -TERM $$']);
    t.is(r.oursStatus, 'SIGTERM');
    t.is(r.nativeStatus, 'SIGTERM');
    // The kill line too: Linux returns 0 to the sender before its signal kills it, and so
    // does the sentry (the signal is sent once the call has returned).
    sameLines(t, opts.join(' '), normalize(r.ours), normalize(r.native), r.ours);
  }
});

test('same lines as strace 6.1: signal lines under -X raw and -X verbose (si_signo, si_code as numbers), a child\'s CPU time in SIGCHLD with its seconds', (t) => {
  for (const x of [[], ['-X', 'raw'], ['-X', 'verbose']]) {
    const r = both([...x, '-f', '-e', 'trace=none'], [busybox(), 'sh', '-c', 'busybox true; kill -TERM $$']);
    t.is(r.oursStatus, 'SIGTERM');
    sameLines(t, x.join(' '), normalize(r.ours), normalize(r.native), r.ours);
  }
  // A child that burns ~300 ms: its SIGCHLD carries its time (ticks vary by one between runs).
  const cpu = buildFixture('cpu');
  const r = both(['-f', '-e', 'trace=none'], [cpu]);
  for (const text of [r.native, r.ours]) t.regex(text, /si_utime=(2\d|3\d) \/\* 0\.[23]\d s \*\//, text);
});

test('same lines as strace 6.1: -v prints getdents64 records in full (types, names quoted, never cut by -s), [] at the end', (t) => {
  const d = join(dir, 'dirents');
  mkdirSync(join(d, 'sub'), { recursive: true });
  writeFileSync(join(d, 'a"b\tc'), '');
  writeFileSync(join(d, 'a-name-longer-than-the-string-limit'), '');
  symlinkSync('nowhere', join(d, 'link'));
  for (const opts of [['-v'], ['-v', '-s', '4'], []]) {
    const r = both([...opts, '-e', 'trace=getdents64'], [busybox(), 'ls', '-a', d]);
    t.is(r.oursStatus, r.nativeStatus, r.stderr);
    sameLines(t, '', normalize(r.ours), normalize(r.native), r.ours);
  }
  t.regex(both(['-v', '-e', 'trace=getdents64'], [busybox(), 'ls', '-a', d]).ours, /d_type=DT_LNK, d_name="link"\}/);
});

test('same lines as strace 6.1: timer calls (sigevents, itimerspecs, ids, careless ones), a timer\'s and sigqueue\'s signal lines, a thread\'s own exit, also under -X raw', (t) => {
  const exe = buildFixture('timertrace', ['-pthread']);
  const calls = 'trace=timer_create,timer_settime,timer_gettime,timer_getoverrun,timer_delete,alarm,setitimer,getitimer,exit';
  for (const x of [[], ['-X', 'raw']]) {
    const r = both([...x, '-f', '-e', calls], [exe]);
    t.is(r.oursStatus, 0, r.stderr);
    sameLines(t, x.join(' '), normalize(r.ours), normalize(r.native), r.ours);
  }
});

test('same lines as strace 6.1: calls a signal interrupts end with Linux\'s restart codes (? ERESTARTNOHAND, ? ERESTART_RESTARTBLOCK, ? ERESTARTSYS), EINTR after the handler or the call again with SA_RESTART', (t) => {
  // Also a regression test: a pause after a wait4 that SA_RESTART restarted was restarted
  // forever (the wait's "restartable" stayed set on the task).
  const exe = buildFixture('interrupted', ['-pthread']);
  // Without SIGCHLD's lines: a child released by the handler ends while its parent returns from
  // it, and where its line falls among the parent's is the two CPUs' race, natively too.
  const r = both(['-e', 'trace=rt_sigsuspend,pause,nanosleep,clock_nanosleep,futex,read,wait4,rt_sigreturn,setitimer', '-e', 'signal=!SIGCHLD'], [exe]);
  t.is(r.oursStatus, 0, r.stderr);
  t.is(r.oursOut, r.nativeOut, 'what the program sees of each call');
  t.regex(r.ours, /^pause\(\) += \? ERESTARTNOHAND/m);
  const when = (lines: string[]) => lines.map((l) => l.replace(/TIMER_ABSTIME, \{[^}]*\}/, 'TIMER_ABSTIME, {NOW+5s}'));
  t.deepEqual(when(normalize(r.ours)), when(normalize(r.native)), r.ours);
});

/**
 * `argv` under strace and under systrap with `opts`, its stdout a pipe whose reader leaves at
 * once (`| head -c 0`): both traces and both exit statuses, as bash's PIPESTATUS saw them.
 */
function intoClosedPipe(opts: string[], argv: string[]): { native: string; ours: string; nativeStatus: string; oursStatus: string } {
  const [a, b] = [join(dir, `n${n}`), join(dir, `s${n++}`)];
  const quote = (xs: string[]) => xs.map((x) => `'${x.replace(/'/g, `'\\''`)}'`).join(' ');
  const run = (cmd: string[]) => spawnSync('bash', ['-c', `${quote(cmd)} | head -c 0; echo "\${PIPESTATUS[0]}"`], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' }, timeout: 60_000 });
  const nat = run([strace(), ...opts, '-o', a, ...argv]);
  const ours = run([process.execPath, CLI, 'run', ...opts, '-o', b, '--', ...argv]);
  return { native: readFileSync(a, 'utf8'), ours: readFileSync(b, 'utf8'), nativeStatus: nat.stdout.trim(), oursStatus: ours.stdout.trim() };
}

test('same lines as strace 6.1: a traced write into a closed pipe returns EPIPE, then --- SIGPIPE --- kills (141), not a stub fault', (t) => {
  // A traced write is made by the stub at the gadget: the kernel's SIGPIPE comes there.
  for (const opts of [['-e', 'trace=write'], ['-f']]) {
    const r = intoClosedPipe(opts, [busybox(), 'sh', '-c', 'busybox yes']);
    t.is(r.nativeStatus, '141');
    t.is(r.oursStatus, '141', r.ours.slice(-500));
    // How many writes the pipe took before the reader left is the scheduler's: the end agrees.
    const tail = (s: string) => normalize(s).slice(-3);
    t.deepEqual(tail(r.ours), tail(r.native), r.ours.slice(-500));
    t.regex(r.ours, /= -1 EPIPE \(Broken pipe\)\n.*--- SIGPIPE \{si_signo=SIGPIPE, si_code=SI_USER, si_pid=\d+/);
  }
});

test('same lines as strace 6.1: ignored signals are still shown (SIGPIPE of a traced write, a kill to SIG_IGN), and nothing else happens', (t) => {
  // busybox yes stops at its first failed write (status 1); `trap '' PIPE` survives exec.
  const r = intoClosedPipe(['-f', '-e', 'trace=write,exit_group'], [busybox(), 'sh', '-c', "trap '' PIPE; exec busybox yes"]);
  t.is(r.oursStatus, r.nativeStatus);
  t.is(r.oursStatus, '1');
  const tail = (s: string) => normalize(s).slice(-5);
  t.deepEqual(tail(r.ours), tail(r.native), r.ours.slice(-800));
  // A traced process's ignored signal is generated for its tracer (sig_ignored is false under ptrace).
  const k = both(['-f'], [busybox(), 'sh', '-c', "trap '' USR1; kill -USR1 $$; echo on"]);
  t.is(k.oursStatus, 0);
  t.deepEqual(normalize(k.ours).slice(-5), normalize(k.native).slice(-5), k.ours);
});

test('a call cut by another process\'s lines, as strace 6.1 cuts it: `wait4(-1,  <unfinished ...>`, then `<... wait4 resumed>` with the rest', (t) => {
  const r = both(['-f'], [busybox(), 'sh', '-c', 'busybox true; exit 0']);
  for (const [who, text] of [['strace', r.native], ['systrap', r.ours]]) {
    const lines = text.split('\n');
    const cut = lines.findIndex((l) => /^\d+ +wait4\(-1,  <unfinished \.\.\.>$/.test(l));
    t.true(cut >= 0, `${who}: no cut wait4 line\n${text}`);
    const resumed = lines.findIndex((l) => /^\d+ +<\.\.\. wait4 resumed>\[\{WIFEXITED\(s\) && WEXITSTATUS\(s\) == 0\}\], 0, NULL\) += \d+$/.test(l));
    t.true(resumed > cut, `${who}: no resumed wait4 line after the cut one\n${text}`);
  }
});

test('same lines as strace 6.1 per process with -f: a shell, a pipeline and a subshell (strace -f -o: pid-prefixed lines)', (t) => {
  const r = both(['-f', '-v', '-e', 'trace=!rt_sigaction'], [busybox(), 'sh', '-c', 'echo a; busybox true; exit 3']);
  t.is(r.oursStatus, 3);
  t.is(r.nativeStatus, 3);
  // The order across processes is the scheduler's; each process's own sequence is the program's.
  const sig = (l: string) => l.includes('--- SIGCHLD') || /rt_sigreturn\(/.test(l);
  const per = (text: string) => byProcess(normalize(text)).map((p) => p.split('\n').filter((l) => !sig(l)).join('\n'));
  t.deepEqual(per(r.ours), per(r.native), r.ours);
  t.true(r.ours.split('\n').filter(Boolean).every((l) => /^\d+ +\S/.test(l)), 'every line starts with its pid');
});

test('same calls as strace 6.1 for a dynamic program (cat): every line, order aside for the loader', (t) => {
  for (const opts of [[], ['-y'], ['-e', 'trace=%file,%desc', '-T'], ['-X', 'verbose'], ['-X', 'raw'], ['-v']]) {
    const r = both(opts, ['/bin/cat', hostname]);
    t.is(r.oursStatus, 0, r.stderr);
    const sorted = (text: string) => normalize(text).sort();
    sameLines(t, opts.join(' '), sorted(r.ours), sorted(r.native), r.ours);
  }
});

test('-c: the same rows (calls and errors per syscall) as strace -c, -S calls order, -C lines and table', (t) => {
  const rows = (text: string) =>
    text
      .split('\n')
      .map((l) => /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(\d+)?\s*(\w+)$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null && m[3] !== 'rseq' && m[3] !== 'total')
      .map((m) => `${m[3]} ${m[1]} ${m[2] ?? 0}`);
  for (const opts of [['-c'], ['-c', '-S', 'calls'], ['-c', '-e', 'trace=%file']]) {
    const r = both(opts, [busybox(), 'cat', hostname, '/nonexistent']);
    t.deepEqual(rows(r.ours).sort(), rows(r.native).sort(), r.ours);
    t.true(rows(r.ours).length > 0);
    if (opts.includes('calls')) t.deepEqual(rows(r.ours).map((x) => Number(x.split(' ')[1])), rows(r.ours).map((x) => Number(x.split(' ')[1])).sort((a, b) => b - a));
  }
  const c = both(['-C', '-e', 'trace=openat'], [busybox(), 'cat', hostname]);
  t.regex(c.ours, /^execve\(|openat\(AT_FDCWD, "\/etc\/hostname"/m);
  t.regex(c.ours, /% time +seconds +usecs\/call +calls +errors +syscall/);
});
