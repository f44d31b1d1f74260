import test from 'ava';
import { createPlatform, SYS, type Platform } from '../src/index.js';
import { blockedIn, leakedChildren, procState, until } from './helpers.js';
import { subprocessOf } from '../src/addressSpace.js';

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
