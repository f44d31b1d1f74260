/**
 * A program's fork under the sentry (PlatformPort.forkEarly, src/actors/sentryFork.ts): the
 * sentry has the child, and runs it, before the main thread has made its actors; what names the
 * child meanwhile waits for them; a child whose actors cannot be made is killed, as the host's
 * SIGKILL of a stub looks to the program.
 */
import test from 'ava';
import { closeSync, mkdtempSync, openSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPlatform } from '../src/index.js';
import { runProgram } from '../src/sentry/run.js';
import { forkSeams } from '../src/actors/stubCreation.js';
import { childPids, fdCount, leakedChildren, until } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'systrap-sentryfork-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `sh -c script` on `platform` with its output in a file; `during` runs while it does. */
async function run(platform: Awaited<ReturnType<typeof createPlatform>>, script: string, during: (out: () => string) => Promise<void>) {
  const file = join(dir, `out-${Math.random().toString(36).slice(2)}`);
  const fd = openSync(file, 'w');
  const out = () => readFileSync(file, 'utf8');
  try {
    const h = await runProgram(platform, { path: '/bin/sh', argv: ['sh', '-c', script], env: ['PATH=/usr/bin:/bin'], stdio: [0, fd, fd] });
    await during(out);
    return { end: await h.done, out: out() };
  } finally {
    closeSync(fd);
  }
}

test("a fork child runs, ends and is waited for before the main thread has made its actors; what names it waits for them; then it is all released", async (t) => {
  const script = '(echo in-child; exit 3); echo "status $?"';
  const native = spawnSync('/bin/sh', ['-c', script], { encoding: 'utf8' });
  const platform = await createPlatform({ pool: false, sandbox: 'off' });
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const making: number[] = [];
  try {
    const kids = childPids().length;
    forkSeams.making = (pid) => {
      making.push(pid);
      return held;
    };
    const { end, out } = await run(platform, script, async (out) => {
      // The whole program runs while the child's actors are held: the child's output, its exit,
      // the parent's wait and what it prints.
      t.true(await until(() => out() === native.stdout, 10_000), `output while held: ${JSON.stringify(out())}`);
      t.is(making.length, 1, 'one fork, its actors held');
      release();
    });
    t.like(end, { kind: 'exited', status: native.status });
    t.is(out, native.stdout);
    t.true(await until(() => childPids().length <= kids), `children ${childPids()}`);
  } finally {
    forkSeams.making = undefined;
    release();
    await platform.close();
  }
  t.deepEqual(leakedChildren(), []);
});

test('a fork child whose actors cannot be made is killed: its parent sees it killed by SIGKILL, the program goes on, nothing is left', async (t) => {
  const platform = await createPlatform({ pool: false, sandbox: 'off' });
  try {
    await run(platform, '(true)', async () => undefined); // the workers and the sentry host up
    const fds = fdCount();
    forkSeams.making = () => {
      throw new Error('no actors for this child');
    };
    // The child blocks (opening a FIFO nobody writes) until it is killed: nothing here is timed.
    const fifo = join(dir, 'never-written');
    execFileSync('mkfifo', [fifo]);
    const { end, out } = await run(platform, `cat ${fifo} & wait $!; echo "status $?"`, async () => undefined);
    forkSeams.making = undefined;
    // What the shell says of a child killed by SIGKILL, natively.
    const killed = spawnSync('/bin/sh', ['-c', `exec 2>&1; cat ${fifo} & kill -9 $!; wait $!; echo "status $?"`], { encoding: 'utf8' });
    t.like(end, { kind: 'exited', status: 0 }, JSON.stringify(end));
    t.is(out, killed.stdout, 'killed by SIGKILL (128 + 9)');
    t.regex(out, /status 137/);
    t.true(await until(() => fdCount() <= fds), `fds ${fdCount()}, were ${fds}`);
    const again = await run(platform, '(exit 5); echo "then $?"', async () => undefined);
    t.is(again.out, 'then 5\n', 'the next fork is made as usual');
  } finally {
    forkSeams.making = undefined;
    await platform.close();
  }
  t.deepEqual(leakedChildren(), []);
});

/** Node's own fds and mappings of fork children's control memory (each child has a memfd of its own). */
function controlMemoryInNode(): { fds: number; maps: number } {
  const fds = readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).includes('systrap-control');
    } catch {
      return false; // closed meanwhile
    }
  }).length;
  return { fds, maps: readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.includes('systrap-control')).length };
}

test.serial("ended fork children leave nothing of their control memory in Node while the platform stays open: no fd, no mapping (the sentry's worker mapped each one too)", async (t) => {
  const platform = await createPlatform({ pool: false });
  try {
    const before = controlMemoryInNode();
    const { end } = await run(platform, 'for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do /bin/true; done; echo done', async () => undefined);
    t.like(end, { kind: 'exited', status: 0 });
    // The main thread frees its side once each stub is reaped (asynchronously); the sentry's
    // went as each child ended. Before, the sentry kept one fd and one mapping per child.
    t.true(await until(() => controlMemoryInNode().fds <= before.fds && controlMemoryInNode().maps <= before.maps), `left: ${JSON.stringify(controlMemoryInNode())} (before ${JSON.stringify(before)})`);
  } finally {
    await platform.close();
  }
});

/** The program's output and end as natively: `sh -c script`. */
function nativeRun(script: string) {
  return spawnSync('/bin/sh', ['-c', script], { encoding: 'utf8' });
}

test("a shell's forks are made by the sentry itself: the same output and status as natively, none asked of the main thread", async (t) => {
  const script = 'for i in 1 2 3; do (echo "sub $i"; exit $i); echo "status $?"; done; echo abc | tr a-c x-z; echo "$(echo nested $(echo deeper))"; exit 7';
  const native = nativeRun(script);
  const platform = await createPlatform({ pool: false });
  try {
    const kids = childPids().length;
    const { end, out } = await run(platform, script, async () => undefined);
    t.is(out, native.stdout);
    t.like(end, { kind: 'exited', status: native.status });
    const forks = (end as { forks?: { sentry: number; main: number } }).forks;
    t.true((forks?.sentry ?? 0) >= 6, `forks ${JSON.stringify(forks)}`);
    t.is(forks?.main, 0);
    t.true(await until(() => childPids().length <= kids), `children ${childPids()}`);
  } finally {
    await platform.close();
  }
});

test('with a process fault hook armed (scenarios), every fork goes through the main thread, where faults apply', async (t) => {
  const script = 'for i in 1 2 3; do (exit $i); echo "status $?"; done';
  const native = nativeRun(script);
  const platform = await createPlatform({ pool: false });
  try {
    platform.port.setProcessFaultHook(() => undefined);
    const { end, out } = await run(platform, script, async () => undefined);
    t.is(out, native.stdout);
    t.like(end, { kind: 'exited', status: native.status, forks: { sentry: 0, main: 3 } });
  } finally {
    platform.port.setProcessFaultHook(undefined);
    await platform.close();
  }
});

test('forks by the sentry race with the forking process\'s other thread (python: a thread in calls while the main thread forks and waits): statuses as natively', async (t) => {
  const py = [
    'import os, threading',
    'stop = False',
    'def spin():',
    '    n = 0',
    '    while not stop:',
    '        os.getppid(); os.getpid(); n += 1',
    'th = threading.Thread(target=spin); th.start()',
    'codes = []',
    'for i in range(15):',
    '    pid = os.fork()',
    '    if pid == 0: os._exit(i)',
    '    codes.append(os.WEXITSTATUS(os.waitpid(pid, 0)[1]))',
    'stop = True; th.join()',
    'print(codes)',
  ].join('\n');
  const native = spawnSync('/usr/bin/python3', ['-c', py], { encoding: 'utf8' });
  t.is(native.status, 0, `python3 natively: ${native.stderr} (install python3)`);
  const platform = await createPlatform({ pool: false });
  const file = join(dir, `py-${Math.random().toString(36).slice(2)}`);
  const fd = openSync(file, 'w');
  try {
    const h = await runProgram(platform, { path: '/usr/bin/python3', argv: ['python3', '-c', py], env: ['PATH=/usr/bin:/bin'], stdio: [0, fd, 2] });
    const end = await h.done;
    t.like(end, { kind: 'exited', status: 0 });
    t.is(readFileSync(file, 'utf8'), native.stdout);
    // Made by the sentry, but for one now and then that finds the main thread making the
    // second thread's sysmsg thread through the loop (it asks the main thread then).
    const forks = (end as { forks?: { sentry: number; main: number } }).forks;
    t.is((forks?.sentry ?? 0) + (forks?.main ?? 0), 15, JSON.stringify(forks));
    t.true((forks?.sentry ?? 0) > 0, JSON.stringify(forks));
  } finally {
    closeSync(fd);
    await platform.close();
  }
});
