import test from 'ava';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createPlatform, SYS, type Platform } from '../src/index.js';
import { blockedIn, fdCount, leakedChildren, pidfdCount, procState, programStubs, requireTool, stubAsleep, until } from './helpers.js';
import { subprocessOf } from '../src/addressSpace.js';
import { native } from '../src/native.js';
import { killAndReap } from '../src/actors/stubCreation.js';

let platform: Platform;
test.before(async () => {
  platform = await createPlatform();
});
test.after.always(async () => {
  await platform?.close();
});

test('a stub SIGKILLed in the middle of a ptrace transaction: ESTUBDEAD, no zombie', async (t) => {
  const as = await platform.newAddressSpace();
  const pid = as.pid;
  const call = as.injectSyscall(SYS.pause); // blocks in the stub while the tracer waits
  // Killed inside the call, not before the injection reached it.
  t.true(await until(() => blockedIn(pid, SYS.pause)), 'the stub blocks in the injected pause');
  t.is(subprocessOf(as).thread?.state, 'injecting');
  process.kill(pid, 'SIGKILL');
  const err = await t.throwsAsync(call);
  t.is((err as { code?: string }).code, 'ESTUBDEAD');
  t.is(as.state, 'dead');
  t.is(subprocessOf(as).thread?.state, 'dead');
  t.true(await until(() => procState(pid) === undefined), 'reaped, not a zombie');
  await t.throwsAsync(as.syscall(SYS.getpid), { code: 'ESTUBDEAD' });
  await as.release(); // releasing a dead address space is allowed and does nothing
});

test('a stub SIGKILLed while serving a shared-memory syscall: ESTUBDEAD, no zombie', async (t) => {
  const as = await platform.newAddressSpace();
  const pid = as.pid;
  const call = as.syscall(SYS.pause);
  t.true(await until(() => blockedIn(pid, SYS.pause)), 'the syscall thread blocks in pause');
  process.kill(pid, 'SIGKILL');
  await t.throwsAsync(call, { code: 'ESTUBDEAD' });
  t.true(await until(() => procState(pid) === undefined));
  t.is(as.state, 'dead');
});

test('a stub in a ptrace stop its tracer has not yet waited for is alive, not dead', async (t) => {
  // waitid(WEXITED | WNOWAIT) from any thread of Node reports a tracee of another of its
  // threads in that window (CLD_TRAPPED): a call waiting on the stub then judged it exited.
  const as = await platform.newAddressSpace();
  const pid = as.pid;
  native.ptraceAttach(pid);
  try {
    t.true(await until(() => procState(pid) === 't'), 'the stub is in its attach stop');
    t.false(native.processExited(pid), 'a stop is no exit');
  } finally {
    native.wait4(pid, 0x40000000); // __WALL: take the stop, then let it go without its SIGSTOP
    native.ptraceDetach(pid, 0);
  }
  t.true(await as.syscall(SYS.getpid) > 0n, 'the stub serves on');
  await as.release();
});

test('a sandboxed stub killed while it was being made (a fork child lost before its adoption) leaves no pidfd open once it is gone', async (t) => {
  // As a sandboxed stub: not Node's child, tracked by its pidfd alone (a shell's orphaned job,
  // blocked opening a FIFO nobody writes until killed: nothing here is timed). killAndReap is
  // what the main thread does with a sentry's `forkLost`; its pidfd stayed open until Node exited.
  const dir = mkdtempSync(join(tmpdir(), 'systrap-lost-fork-'));
  const fifo = join(dir, 'never-written');
  execFileSync('mkfifo', [fifo]);
  const sh = spawnSync('/bin/sh', ['-c', `cat ${fifo} >/dev/null 2>&1 & echo $!`], { encoding: 'utf8' });
  const pid = Number(sh.stdout.trim());
  try {
    t.true(pid > 0 && procState(pid) !== undefined, `a running orphan: ${sh.stdout} ${sh.stderr}`);
    const before = pidfdCount();
    t.true(native.trackExit(pid));
    t.is(pidfdCount(), before + 1, 'tracked: its pidfd');
    killAndReap(pid, true);
    t.true(await until(() => native.processExited(pid) && pidfdCount() === before), `gone, and its pidfd closed (${pidfdCount()} pidfds, ${before} before)`);
  } finally {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a live process's liveness entry outlives an untrack of its number (the gone stub that had the number before): it is not judged exited; once it exits, the untrack forgets it", async (t) => {
  // A sandboxed stub is not Node's child: only its registered pidfd says it lives. Its pid can
  // be a number a gone stub had (the sandbox's init reaps at once; pid_max may be 32768), and
  // the gone stub's untrack may come after the new one's track. Here: a process that is not
  // Node's child (a shell's background job, orphaned as the shell exits).
  // It blocks opening a FIFO nobody writes, until the test kills it: nothing here is timed.
  const dir = mkdtempSync(join(tmpdir(), 'systrap-liveness-'));
  const fifo = join(dir, 'never-written');
  execFileSync('mkfifo', [fifo]);
  const sh = spawnSync('/bin/sh', ['-c', `cat ${fifo} >/dev/null 2>&1 & echo $!`], { encoding: 'utf8' });
  const pid = Number(sh.stdout.trim());
  try {
    t.true(pid > 0 && procState(pid) !== undefined, `a running orphan: ${sh.stdout} ${sh.stderr}`);
    t.true(native.processExited(pid), 'unregistered, not our child: waitid cannot tell it lives (why the registry exists)');
    t.true(native.trackExit(pid));
    t.false(native.processExited(pid), 'registered: it lives');
    native.untrackExit(pid); // as the gone stub that had this number would, when Node forgets it
    t.false(native.processExited(pid), 'still registered: a live process is not judged gone');
    process.kill(pid, 'SIGKILL');
    t.true(await until(() => native.processExited(pid)), 'its exit is seen through its pidfd');
    const fds = fdCount();
    native.untrackExit(pid);
    t.is(fdCount(), fds - 1, 'forgotten once gone: its pidfd closed');
  } finally {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a stub killed while idle is noticed at once (pidfd) and reaped', async (t) => {
  const as = await platform.newAddressSpace();
  const pid = as.pid;
  process.kill(pid, 'SIGKILL');
  t.true(await until(() => as.state === 'dead'));
  t.is(procState(pid), undefined);
  t.is(subprocessOf(as).ref.getSnapshot().context.unexpected, true);
  await t.throwsAsync(as.syscall(SYS.getpid), { code: 'ESTUBDEAD' });
  // The platform goes on: new address spaces work.
  const other = await platform.newAddressSpace();
  t.is(await other.syscall(SYS.getpid), BigInt(other.pid));
  await other.release();
});

test('a pooled stub that dies leaves the pool', async (t) => {
  const as = await platform.newAddressSpace();
  const pid = as.pid;
  await as.release();
  t.is(as.state, 'pooled');
  process.kill(pid, 'SIGKILL');
  t.true(await until(() => as.state === 'dead'));
  const next = await platform.newAddressSpace();
  t.not(next.pid, pid);
  await next.release();
  t.deepEqual(leakedChildren().filter((c) => c.pid !== platform.sourcePid), []);
});

const CLI = fileURLToPath(new URL('../bin/systrap.js', import.meta.url));

for (const mode of ['auto', 'off'] as const) {
  test(`a stub killed while its process sleeps in the sentry (sandbox ${mode}): a child's death is SIGKILL for its parent, the first process's ends the run, at once`, async (t) => {
    if (mode === 'auto' && process.getuid?.() !== 0) return t.pass('unprivileged: no sandbox here');
    const bb = requireTool('busybox', 'busybox-static');
    // Both sleeps are sentry naps (nanosleep is emulated: no stub thread runs for them).
    const child = spawn(process.execPath, [CLI, 'run', `--sandbox=${mode}`, '--', bb, 'sh', '-c', '/bin/sleep 1000; echo "sleep: $?"; /bin/sleep 1000; echo never'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (err += d));
    const status = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      // A sleeping `sleep` (its stub and sysmsg threads all asleep), then its stub killed.
      const sleeper = async () => {
        let pid = 0;
        const found = await until(() => {
          const s = programStubs(child.pid!, mode).find((p) => p.comm === 'sleep' && stubAsleep(p.pid));
          pid = s?.pid ?? 0;
          return pid !== 0;
        }, 20_000);
        t.true(found, `no sleeping 'sleep' stub: ${JSON.stringify(programStubs(child.pid!, mode))}`);
        return pid;
      };
      const first = await sleeper();
      process.kill(first, 'SIGKILL');
      t.true(await until(() => out.includes('sleep: 137\n'), 5000), `the shell heard: ${JSON.stringify(out)} ${err}`);
      // The shell, parked in wait4 for the second sleep: its stub killed ends the run.
      await sleeper();
      const shell = programStubs(child.pid!, mode).find((p) => p.comm === 'busybox');
      t.truthy(shell, 'the shell\'s stub');
      t.true(await until(() => stubAsleep(shell!.pid), 5000), 'the shell is parked in wait4');
      const tree = programStubs(child.pid!, mode).map((p) => p.pid);
      process.kill(shell!.pid, 'SIGKILL');
      t.is(await status, 1);
      t.regex(err, /died while the program ran \(ESTUBDEAD\)/);
      t.is(out, 'sleep: 137\n');
      // Nothing of the program is left (in off mode the pooled spare stub goes with the CLI too).
      t.true(await until(() => tree.every((pid) => !existsSync(`/proc/${pid}`)), 2000), `left: ${tree.filter((pid) => existsSync(`/proc/${pid}`))}`);
    } finally {
      child.kill('SIGKILL');
    }
  });
}
