/**
 * The sentry as a library (runProgram on a platform that is up): what traps and what does not,
 * thread-prefixed tracing, signals from outside, and context actors that follow the program.
 */
import test from 'ava';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPlatform, SYS } from '../src/index.js';
import { runProgram } from '../src/sentry/run.js';
import { buildFixture } from './fixtures/build.js';
import { until } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'systrap-sentry-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

/** Runs a program with stdout to a file; returns its end and what it printed. */
async function runCaptured(argv: string[], trace?: Parameters<typeof runProgram>[1]['trace'], maxSysmsgThreads?: number) {
  const platform = await createPlatform({ pool: false, maxSysmsgThreads });
  const out = join(dir, `out-${Math.random().toString(36).slice(2)}`);
  const fd = openSync(out, 'w');
  try {
    const h = await runProgram(platform, { path: argv[0], argv, env: [], stdio: [0, fd, fd], trace: trace ? { ...trace, outFd: fd } : undefined });
    const end = await h.done;
    return { end, stdout: readFileSync(out, 'utf8') };
  } finally {
    closeSync(fd);
    await platform.close();
  }
}

test('allowed, untraced syscalls never trap; traced ones do', async (t) => {
  const exe = buildFixture('getuid-loop', ['-static']);
  const free = await runCaptured([exe, '2000']);
  t.is(free.end.kind, 'exited');
  t.is(free.stdout, `${process.getuid!() * 2000}\n`);
  // Start-up and exit trap (brk, arch_prctl, set_tid_address, ...): a handful, not 2000.
  t.true(free.end.traps! < 50, `traps: ${free.end.traps}`);
  // A traced call that passes through traps twice without the trace ring: at entry, and back
  // from the gadget with its result (what the trace line prints).
  const traced = await runCaptured([exe, '2000'], { trace: [SYS.getuid], ring: false });
  t.true(traced.end.traps! >= 4000 && traced.end.traps! < 4100, `traps: ${traced.end.traps}`);
  t.is(traced.stdout.split('\n').filter((l) => /^getuid\(\) += /.test(l)).length, 2000);
  // With it (the default), the stub makes and records it: no trap, the same lines.
  const ringed = await runCaptured([exe, '2000'], { trace: [SYS.getuid] });
  t.true(ringed.end.traps! < 50, `traps: ${ringed.end.traps}`);
  t.is(ringed.end.ring?.records, 2000);
  // The same lines (the program's own output may come before some: recorded lines are printed
  // when the sentry drains them, not before the call returns).
  const lines = (s: string) => s.split('\n').filter((l) => l.startsWith('getuid('));
  t.deepEqual(lines(ringed.stdout), lines(traced.stdout));
});

test('threads: trace lines carry the thread id once the program has threads (follow); without follow, the first thread only', async (t) => {
  const exe = buildFixture('threads', ['-pthread']);
  const r = await runCaptured([exe], { trace: [SYS.clone, SYS.exit], style: { follow: true } }, 2);
  t.deepEqual(r.end.kind === 'exited' && r.end.status, 0);
  const clones = r.stdout.split('\n').filter((l) => /clone\(/.test(l));
  t.is(clones.length, 8);
  t.regex(r.stdout, /^\[pid +\d+\] exit\(0\) += \?$/m);
  // As strace without -f: the threads' own calls are not traced, and no line has a prefix.
  const first = await runCaptured([exe], { trace: [SYS.clone, SYS.exit] }, 2);
  t.is(first.stdout.split('\n').filter((l) => /^clone\(/.test(l)).length, 8, first.stdout);
  t.notRegex(first.stdout, /^exit\(|\[pid/m);
});

test('a signal sent from outside (SIGTERM, no handler) ends the program like the kernel would', async (t) => {
  const platform = await createPlatform({ pool: false });
  try {
    const exe = buildFixture('sigint');
    const out = join(dir, `sigterm-${Math.random().toString(36).slice(2)}`);
    const fd = openSync(out, 'w');
    t.teardown(() => closeSync(fd));
    const h = await runProgram(platform, { path: exe, argv: [exe], env: [], stdio: [0, fd, 2] });
    // The signal must come while the program runs (it prints "ready" once in its wait loop).
    t.true(await until(() => readFileSync(out, 'utf8') === 'ready\n', 10_000), 'the program is waiting');
    h.kill(15);
    const end = await h.done;
    t.deepEqual({ kind: end.kind, signal: end.kind === 'killed' ? end.signal : 0 }, { kind: 'killed', signal: 15 });
    t.deepEqual(platform.liveStubs.filter((p) => p !== platform.sourcePid), []);
  } finally {
    await platform.close();
  }
});

test("each program thread is a platformContext actor that ends released", async (t) => {
  const seen = new Map<string, string[]>();
  const platform = await createPlatform({
    pool: false,
    maxSysmsgThreads: 2,
    inspect: (e) => {
      if (e.type !== '@xstate.snapshot') return;
      const id = e.actorRef.id;
      if (!id.startsWith('platformContext:')) return;
      const v = String((e.snapshot as { value: unknown }).value);
      const l = seen.get(id) ?? [];
      if (l.at(-1) !== v) l.push(v);
      seen.set(id, l);
    },
  });
  try {
    const exe = buildFixture('threads', ['-pthread']);
    const h = await runProgram(platform, { path: exe, argv: [exe], env: [], stdio: [0, 2, 2] });
    const end = await h.done;
    t.is(end.kind, 'exited');
    t.is(seen.size, 9); // main + 8 threads
    for (const states of seen.values()) {
      t.deepEqual(states.slice(0, 3), ['idle', 'queued', 'running']);
      t.is(states.at(-1), 'released');
      t.true(states.includes('syscall'), states.join(' → ')); // its first syscall is reported
    }
  } finally {
    await platform.close();
  }
});
