/**
 * The sentry's own execve (src/sentry/kernel/localExec.ts): the check and the load made by the
 * sentry worker through the stub's syscall thread, with no request to the main thread; the
 * lock (SyscallThreadLock) that keeps the main thread's requests and the sentry's apart; and the
 * main thread's path kept where scenario faults apply. On real stubs, compared with native runs.
 */
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createPlatform, SYS } from '../src/index.js';
import { subprocessOf } from '../src/addressSpace.js';
import { native } from '../src/native.js';
import { abi, SYSCALL_SCRATCH } from '../src/abi/stub.js';
import { FUTEX } from '../src/abi/linux.js';
import { runProgram } from '../src/sentry/run.js';
import { StubCalls } from '../src/sentry/kernel/stubCalls.js';
import { SyscallThreadLock, SyscallThreadOwner } from '../src/shm/syscallThreadLock.js';
import { workerFile } from '../src/shm/sharedFile.js';
import { BUDGETS } from '../src/shm/budgets.js';
import { closeOnExecCalls } from '../src/sentry/exec/execSteps.js';
import { buildFixture } from './fixtures/build.js';
import { blockedIn, procState, until } from './helpers.js';
import { ForkLost, forkHere } from '../src/sentry/kernel/localFork.js';

const CLI = fileURLToPath(new URL('../bin/systrap.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'systrap-localexec-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

/** A program run by runProgram on `platform`: its stdout and how it ended (with the sentry's counts). */
async function ours(platform: Awaited<ReturnType<typeof createPlatform>>, argv: string[]) {
  const out = join(dir, `out-${Math.random().toString(36).slice(2)}`);
  const fd = openSync(out, 'w');
  try {
    const h = await runProgram(platform, { path: argv[0], argv, env: ['PATH=/usr/bin:/bin'], stdio: [0, fd, 2] });
    const end = await h.done;
    return { end, stdout: readFileSync(out, 'utf8') };
  } finally {
    closeSync(fd);
  }
}

/** The stub's syscall-thread message and a client of it as a sentry worker makes one (here, on the test's thread). */
function sentryClient(platform: Awaited<ReturnType<typeof createPlatform>>, as: Awaited<ReturnType<Awaited<ReturnType<typeof createPlatform>>['newAddressSpace']>>) {
  const stub = platform.port.stub(as);
  const msg = stub.syscallMsg();
  if (!msg) throw new Error('the stub serves no loop');
  const file = workerFile(stub.memory, msg.offset + abi.SYSMSG_SIZE);
  return { stub, msg, file, calls: new StubCalls(file, msg, as.pid, as.userLimit), lock: new SyscallThreadLock(file, msg.offset), gate: gate(file, msg) };
}

/**
 * A stub call that blocks until the test says so: FUTEX_WAIT on a word of the syscall thread's
 * scratch (shared with Node through the memory file); `open()` lets it return 0.
 */
function gate(file: ReturnType<typeof workerFile>, msg: { offset: number; addr: bigint }) {
  const at = SYSCALL_SCRATCH.end - 64; // clear of the scratch's head, which nothing here uses
  const word = new Int32Array(file.buffer(msg.offset + at, 4));
  Atomics.store(word, 0, 0);
  return {
    /** The call's arguments: futex(word, FUTEX_WAIT, 0, NULL). */
    call: { sysno: SYS.futex, args: [msg.addr + BigInt(at), BigInt(FUTEX.WAIT), 0n, 0n] },
    open(): void {
      Atomics.store(word, 0, 1);
      file.futexWake(msg.offset + at, 1);
    },
    close(): void {
      Atomics.store(word, 0, 0);
    },
  };
}

test('the execves of a shell loop are made by the sentry itself: the same output as natively', async (t) => {
  const script = 'for i in 1 2 3 4 5; do /bin/true; done; /bin/echo "$(/bin/echo inner)" outer; ./missing 2>/dev/null; echo "status $?"; exec /bin/echo last';
  const native = spawnSync('/bin/sh', ['-c', script], { cwd: dir, encoding: 'utf8' });
  const platform = await createPlatform({ pool: false });
  try {
    const r = await ours(platform, ['/bin/sh', '-c', `cd ${dir}; ${script}`]);
    t.is(r.stdout, native.stdout);
    t.deepEqual({ kind: r.end.kind, status: (r.end as { status?: number }).status }, { kind: 'exited', status: native.status ?? -1 });
    // /bin/true x5, two /bin/echo, the exec of /bin/echo; the missing file fails the check.
    // Each is the sentry's unless the main thread still held the child's syscall thread for
    // longer than the sentry waits (its first sysmsg thread's request, on a loaded machine).
    const execs = r.end.execs!;
    t.is(execs.sentry + execs.main, 8);
    t.true(execs.sentry >= 6, `the sentry made ${execs.sentry} of 8`);
  } finally {
    await platform.close();
  }
});

test('execve from a process whose other threads run: checked, the threads stopped, then loaded by the sentry; a failed exec leaves them running', async (t) => {
  const exe = buildFixture('execthreads', ['-pthread']);
  const native = spawnSync(exe, ['3'], { encoding: 'utf8' });
  t.is(native.stdout, '3: missing file: No such file or directory, threads still running\n2: missing file: No such file or directory, threads still running\n1: missing file: No such file or directory, threads still running\nexecs done\n');
  const platform = await createPlatform({ pool: false });
  try {
    const r = await ours(platform, [exe, '3']);
    t.is(r.stdout, native.stdout);
    t.is(r.end.kind, 'exited');
    t.deepEqual(r.end.execs, { sentry: 3, main: 0 });
  } finally {
    await platform.close();
  }
});

test('with a process fault hook armed (scenarios), every execve goes through the main thread, where faults apply', async (t) => {
  const platform = await createPlatform({ pool: false });
  try {
    platform.port.setProcessFaultHook(() => undefined);
    const r = await ours(platform, ['/bin/sh', '-c', '/bin/true; /bin/echo via main']);
    t.is(r.stdout, 'via main\n');
    t.is(r.end.execs, undefined, 'no sentry exec');
  } finally {
    await platform.close();
  }
});

test("the sentry's hold keeps the main thread's requests out of the loop until it lets go; its own calls and batches run meanwhile", async (t) => {
  const platform = await createPlatform({ pool: false, sandbox: 'off' });
  try {
    const as = await platform.newAddressSpace();
    const { calls, lock, file, msg } = sentryClient(platform, as);
    const spin = new BigUint64Array(file.buffer(msg.offset + abi.SYSMSG_SPIN, 8));
    t.is(spin[0], BigInt(BUDGETS.stubSyscallSpinCycles));
    t.true(calls.hold());
    t.is(lock.owner, SyscallThreadOwner.Sentry);
    // Held for a burst (an execve's load): the loop spins long enough to bridge the sentry's
    // work between its requests, and back to the default once let go.
    t.is(spin[0], BigInt(BUDGETS.stubSyscallBurstSpinCycles));
    t.throws(() => calls.hold(), { code: 'EPROTOCOL' }, 'held once only');
    const state = new Uint32Array(file.buffer(msg.offset, 4096));
    const before = state[abi.SYSMSG_STATE / 4];
    let settled = false;
    const mains = as.syscall(SYS.getpid).then((v) => ((settled = true), v));
    const waiters = new Uint32Array(file.buffer(msg.offset + abi.SYSMSG_OWNER_WAITERS, 4));
    t.true(await until(() => waiters[0] > 0), 'the main thread waits for the loop (off the event loop)');
    t.false(settled);
    t.is(state[abi.SYSMSG_STATE / 4], before, 'nothing of the main thread was posted');
    // The holder's own requests: one call, a batch that stops at a result it did not expect.
    t.is(calls.call(SYS.getpid, []), BigInt(as.pid));
    const ran = await calls.syscalls([{ sysno: SYS.getppid }, { sysno: SYS.close, args: [99999n], expect: 0n }, { sysno: SYS.getpid }]);
    t.is(ran.length, 2, 'the failed close stopped the batch');
    t.is(ran[1], -9n, 'EBADF');
    calls.release();
    t.is(await mains, BigInt(as.pid), 'the main thread goes on once the sentry lets go');
    t.is(lock.owner, SyscallThreadOwner.None);
    t.is(spin[0], BigInt(BUDGETS.stubSyscallSpinCycles));
    t.throws(() => calls.call(SYS.getpid, []), { code: 'EPROTOCOL' }, 'no call without the hold');
    await as.release();
  } finally {
    await platform.close();
  }
});

test('a sentry finds the loop held by the main thread: no at once (it asks the main thread instead), yes once the main thread is done', async (t) => {
  const platform = await createPlatform({ pool: false, sandbox: 'off' });
  try {
    const as = await platform.newAddressSpace();
    const { calls, lock, gate } = sentryClient(platform, as);
    // The main thread's request blocks in the stub until the gate opens.
    const busy = as.syscall(gate.call.sysno, ...gate.call.args);
    t.true(await until(() => lock.owner === SyscallThreadOwner.Main));
    t.false(calls.hold(), 'held by the main thread');
    t.false(calls.hold(1), 'and after a wait of 1 ms');
    gate.open();
    t.is(await busy, 0n);
    t.true(calls.hold());
    calls.release();
    await as.release();
  } finally {
    await platform.close();
  }
});

test('a sentry that ended holding the loop stalls nothing: the link takes it back; a stub that dies meanwhile is ESTUBDEAD, not a hang', async (t) => {
  const platform = await createPlatform({ pool: false, sandbox: 'off' });
  try {
    const as = await platform.newAddressSpace();
    const { stub, calls, lock } = sentryClient(platform, as);
    t.true(calls.hold());
    const waiting = as.syscall(SYS.getpid);
    stub.reclaimSyscallThread(); // what SentryLink.releaseAll does once its worker ended
    t.is(await waiting, BigInt(as.pid));
    t.is(lock.owner, SyscallThreadOwner.None);
    stub.reclaimSyscallThread(); // not held: nothing to take back
    t.true(lock.tryAcquire(SyscallThreadOwner.Sentry));
    const stuck = as.syscall(SYS.getpid);
    native.kill(as.pid, 9);
    await t.throwsAsync(stuck, { code: 'ESTUBDEAD' });
  } finally {
    await platform.close();
  }
});

test("a stub slow to answer (longer than the sentry blocks for) is awaited off the thread: the answer comes, a batch's too, and a dead stub's wait ends", async (t) => {
  const platform = await createPlatform({ pool: false, sandbox: 'off' });
  try {
    const as = await platform.newAddressSpace();
    const { calls, gate } = sentryClient(platform, as);
    t.true(calls.hold());
    // A call that returns only once the gate opens: the sentry's thread gives up waiting first
    // (its bound), and the answer comes off the thread.
    let answered = false;
    const one = calls.syscall(gate.call.sysno, ...gate.call.args).then((r) => ((answered = true), r));
    t.false(answered, 'not answered while the gate is shut');
    gate.open();
    t.is(await one, 0n);
    gate.close();
    const batch = calls.syscalls([gate.call, { sysno: SYS.getpid }]);
    gate.open();
    t.deepEqual(await batch, [0n, BigInt(as.pid)]);
    gate.close();
    t.throws(() => calls.call(gate.call.sysno, gate.call.args), { code: 'ETIMEDOUT' }, 'the blocking form says so');
    gate.open();
    t.is(await calls.syscall(SYS.getpid), BigInt(as.pid), 'the next request waits for the one under way (the loop serves the newest)');
    gate.close();
    const slow = calls.syscall(gate.call.sysno, ...gate.call.args);
    native.kill(as.pid, 9);
    await t.throwsAsync(slow, { code: 'ESTUBDEAD' });
    calls.release();
  } finally {
    await platform.close();
  }
});

test("the main thread's waits for loops the sentry holds leave libuv's pool to others: more of them than the pool has threads, and the sentry's own wait for a slow answer still gets one", async (t) => {
  const platform = await createPlatform({ pool: false, sandbox: 'off' });
  try {
    // One more than the pool's threads (UV_THREADPOOL_SIZE, 4 unless set).
    const n = Number(process.env.UV_THREADPOOL_SIZE ?? 4) + 1;
    const spaces = await Promise.all(Array.from({ length: n }, () => platform.newAddressSpace()));
    const clients = spaces.map((as) => sentryClient(platform, as));
    for (const c of clients) t.true(c.calls.hold());
    const mains = spaces.map((as) => as.syscall(SYS.getpid));
    for (const m of mains) m.catch(() => undefined); // awaited below; a failed test's close ends them
    const waiting = clients.map((c) => new Uint32Array(c.file.buffer(c.msg.offset + abi.SYSMSG_OWNER_WAITERS, 4)));
    // Every pool thread is in such a wait (the last of the n waits for a thread).
    t.true(await until(() => waiting.filter((w) => w[0] > 0).length === n - 1), `the main thread waits for the loops on every pool thread`);
    // The sentry's request that the stub answers late: awaited on the pool, which the waits above fill.
    const { calls, gate } = clients[0];
    const late = calls.syscall(gate.call.sysno, ...gate.call.args);
    gate.open();
    t.is(await late, 0n, "the sentry's wait got a pool thread");
    for (const c of clients) c.calls.release();
    t.deepEqual(await Promise.all(mains), spaces.map((as) => BigInt(as.pid)), 'then the main thread goes on');
    await Promise.all(spaces.map((as) => as.release()));
  } finally {
    await platform.close();
  }
});

test("the main thread's request made with releaseOnAnswer lets go of the loop as the stub answers, before its event loop hears it: a sentry takes the loop at once", async (t) => {
  const platform = await createPlatform({ pool: false, sandbox: 'off' });
  try {
    const as = await platform.newAddressSpace();
    const { calls, lock, gate, file, msg } = sentryClient(platform, as);
    // The main thread's request (as a fork child's first sysmsg thread is made) blocks in the
    // stub until the gate opens: its answer is awaited on libuv's pool.
    const mains = subprocessOf(as).thread.syscall(gate.call.sysno, gate.call.args, undefined, true);
    t.true(await until(() => lock.owner === SyscallThreadOwner.Main), 'the main thread holds the loop');
    t.false(calls.hold(), 'the sentry cannot take it meanwhile');
    // Opened before the loop is in the wait, the futex would say EAGAIN.
    t.true(await until(() => blockedIn(as.pid, SYS.futex)), 'the loop waits in the futex');
    gate.open();
    // No await from here on: this thread's event loop does not run, so only the pool thread
    // that saw the answer can have let go.
    const until1 = performance.now() + 5000;
    while (lock.owner !== SyscallThreadOwner.None && performance.now() < until1);
    t.is(lock.owner, SyscallThreadOwner.None, 'let go as the stub answered');
    t.true(calls.hold(), 'the sentry takes the loop before the main thread heard the answer');
    t.is(calls.call(SYS.getpid, []), BigInt(as.pid));
    calls.release();
    t.is(await mains, 0n, "the main thread's answer is its own");
    t.throws(() => file.syscallThreadCall(msg.offset, as.pid, SYS.getpid, new BigUint64Array(6), -1, 0, 'yes' as unknown as boolean), { instanceOf: TypeError, message: 'releaseOwner must be a boolean' });
    await as.release();
  } finally {
    await platform.close();
  }
});

test('a request posted with no one waiting (syscallThreadPost, as a fork child\'s first thread is asked for) is answered to whoever awaits it later (syscallThreadAwait), which lets go of the loop; careless arguments are precise errors', async (t) => {
  const platform = await createPlatform({ pool: false, sandbox: 'off' });
  try {
    const as = await platform.newAddressSpace();
    const { lock, file, msg, gate } = sentryClient(platform, as);
    t.true(lock.tryAcquire(SyscallThreadOwner.Main));
    const next = file.syscallThreadPost(msg.offset, gate.call.sysno, BigUint64Array.from(gate.call.args.concat([0n, 0n])));
    const answer = file.syscallThreadAwait(msg.offset, as.pid, next, -1, 0, true);
    t.true(answer instanceof Promise, 'not answered yet: the call blocks in the stub');
    t.is(lock.owner, SyscallThreadOwner.Main, 'held until the answer');
    // Opened before the loop is in the wait, the futex would say EAGAIN.
    t.true(await until(() => blockedIn(as.pid, SYS.futex)), 'the loop waits in the futex');
    gate.open();
    t.is(await answer, 0n);
    t.is(lock.owner, SyscallThreadOwner.None, 'the answer let go of the loop');
    t.is(await as.syscall(SYS.getpid), BigInt(as.pid), 'the loop serves the next request');
    t.throws(() => file.syscallThreadPost(msg.offset + 8, SYS.getpid, new BigUint64Array(6)), { instanceOf: RangeError, message: 'message offset must be page aligned' });
    t.throws(() => file.syscallThreadAwait(msg.offset, as.pid, 2 ** 32, -1, 0), { instanceOf: RangeError, message: 'next must be a u32' });
    t.throws(() => file.syscallThreadAwait(msg.offset, as.pid, next, -1, -1), { instanceOf: RangeError, message: 'spinNs must be in 0..1000000' });
    t.throws(() => file.syscallThreadAwait(msg.offset, as.pid, next, -1, 0, 1 as unknown as boolean), { instanceOf: TypeError, message: 'releaseOwner must be a boolean' });
    await as.release();
  } finally {
    await platform.close();
  }
});

test('execves whose every stub call is answered late (SYSTRAP_SLOW_STUB=1: each awaited off the sentry thread) run as natively, threads and scripts included', (t) => {
  const exe = buildFixture('execthreads', ['-pthread']);
  const script = `for i in 1 2 3; do /bin/true; done; /bin/echo "$(/bin/echo inner)" outer; ${exe} 2; exec /bin/echo last`;
  const native = spawnSync('/bin/sh', ['-c', script], { encoding: 'utf8' });
  const slow = spawnSync(process.execPath, [CLI, 'run', '--', '/bin/sh', '-c', script], { encoding: 'utf8', env: { ...process.env, SYSTRAP_SLOW_STUB: '1' } });
  t.is(slow.stderr, '');
  t.is(slow.stdout, native.stdout);
  t.is(slow.status, native.status);
});

test("execve's close-on-exec list of a stub that is gone (killed, and reaped by a sandbox's init at once) is empty, not an error: the calls after it say ESTUBDEAD", (t) => {
  const gone = spawnSync('true').pid!; // exited and reaped: no /proc entry
  t.deepEqual(closeOnExecCalls(gone), []);
  // A live process's list: its close-on-exec fds, never the stub's own (1000, 1001).
  const mine = closeOnExecCalls(process.pid);
  t.true(mine.length > 0, "Node's own fds are close-on-exec");
  t.true(mine.every((c) => c.sysno === SYS.close && c.args[0] !== 1000n && c.args[0] !== 1001n));
});

test("the sentry's own fork (localFork.ts): a forged answer naming another process makes it signal nothing: the fork is lost (EPROTOCOL), that process untouched, the parent forks again", async (t) => {
  const platform = await createPlatform({ pool: false, sandbox: 'off' });
  // An innocent child of Node's, blocked for the whole test (a FIFO nobody writes): the pid a hostile program names.
  const fifo = join(dir, `fifo-${Math.random().toString(36).slice(2)}`);
  spawnSync('mkfifo', [fifo]);
  const innocent = spawn('cat', [fifo], { stdio: 'ignore' });
  try {
    const as = await platform.newAddressSpace();
    const { calls, file, msg } = sentryClient(platform, as);
    const tree = { region: platform.port.region, sandboxed: false, knowsStub: () => false };
    const parent = { hostPid: as.pid, file, rules: { start: 0, end: 0 }, syscallMsg: msg };
    const words = new DataView(file.buffer(msg.offset, abi.SYSMSG_SIZE));
    // The program's move, as its threads can make it (the message's reply page is writable in
    // the stub): with the loop stopped, the only answer to the fork is the forged one.
    native.kill(as.pid, 19); // SIGSTOP
    t.true(await until(() => procState(as.pid) === 'T'), 'the syscall thread stops');
    t.true(calls.hold());
    const posted = words.getUint32(abi.SYSMSG_STATE, true);
    const fork = forkHere(tree, parent, calls);
    t.true(await until(() => words.getUint32(abi.SYSMSG_STATE, true) !== posted), 'the fork request is posted');
    words.setBigUint64(abi.SYSMSG_REPLY, BigInt(innocent.pid!), true);
    words.setUint32(abi.SYSMSG_DONE, words.getUint32(abi.SYSMSG_STATE, true), true);
    file.futexWake(msg.offset + abi.SYSMSG_DONE, 1);
    const lost = await fork.then(() => undefined, (e: unknown) => e);
    t.true(lost instanceof ForkLost);
    t.is((lost as ForkLost).hostPid, 0, 'no child of its own to kill');
    t.is(((lost as ForkLost).reason as { code?: string }).code, 'EPROTOCOL');
    t.is(procState(innocent.pid!), 'S', 'the process the answer named is untouched');
    calls.release();
    native.kill(as.pid, 9); // still stopped: the fork request never runs
    const other = await platform.newAddressSpace();
    t.truthy(await (await other.fork()).syscall(SYS.getpid), 'the platform goes on');
  } finally {
    await platform.close();
    innocent.kill('SIGKILL');
  }
});
