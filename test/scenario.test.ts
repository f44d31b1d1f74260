/**
 * Scenarios (systrap/scenario): faults injected at named lifecycle states of the real runtime,
 * asserted on the simplified sequence of inspection events (each actor's states, in order).
 */
import test, { type ExecutionContext } from 'ava';
import { Scenario, type FaultRule } from '../src/scenario/index.js';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REGISTER_NAMES, SYS, type AddressSpace, type Registers } from '../src/index.js';
import { runProgram } from '../src/sentry/run.js';
import { native } from '../src/native.js';
import { buildFixture } from './fixtures/build.js';
import { leakedChildren, until } from './helpers.js';
import { subprocessOf } from '../src/addressSpace.js';

const CODE = 0x400000n;
const STACK = 0x500000n;
const le32 = (n: number) => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff];
/** mov eax, getppid; syscall; jmp back: a program that makes syscalls forever. */
const GETPPID_LOOP = [0xb8, ...le32(SYS.getppid), 0x0f, 0x05, 0xeb, 0xf7];
/** jmp . : a program that never traps. */
const SPIN = [0xeb, 0xfe];

async function scenario(t: ExecutionContext, options: Parameters<typeof Scenario.create>[0] = {}): Promise<Scenario> {
  const s = await Scenario.create({ pool: false, ...options });
  t.teardown(() => s.close());
  return s;
}

async function load(s: Scenario, as: AddressSpace, code: number[]): Promise<Registers> {
  const text = s.platform.memoryFile.allocate(4096);
  s.platform.memoryFile.view(text).set(code);
  await as.mapFile(CODE, text, 'rx');
  await as.mapFile(STACK, s.platform.memoryFile.allocate(8192), 'rw');
  const regs = Object.fromEntries(REGISTER_NAMES.map((n) => [n, 0n])) as Registers;
  regs.rip = CODE;
  regs.rsp = STACK + 8192n;
  regs.eflags = 0x202n;
  return regs;
}

test('kill the stub when its syscall thread is attached (initStub): ESTUBDEAD, the actors end dead', async (t) => {
  const s = await scenario(t);
  s.fault({ op: 'initStub', at: 'attached', action: 'kill' });
  const err = await t.throwsAsync(s.platform.newAddressSpace());
  t.is(err?.code, 'ESTUBDEAD');
  const sp = s.actors('subprocess:*').find((id) => id !== 'subprocess:source')!;
  t.deepEqual(s.states(sp), ['creating.forking', 'creating.initializing', 'dead']);
  const st = sp.replace('subprocess:', 'syscallThread:');
  // SIGKILL lands asynchronously: the tracer may start the next injection before it sees it.
  t.deepEqual(s.states(st).filter((x) => x !== 'injecting').slice(-3), ['attaching', 'attached', 'dead']);
  // The platform goes on: the next address space is fine.
  const as = await s.platform.newAddressSpace();
  t.is(await as.syscall(SYS.getpid), BigInt(as.pid));
  await as.release();
});

test('PTRACE_ATTACH fails with EPERM: the creation fails with EPERM, no stub is left', async (t) => {
  const s = await scenario(t);
  s.fault({ op: 'initStub', at: 'attach', action: 'fail', errno: 1 });
  const err = await t.throwsAsync(s.platform.newAddressSpace());
  t.is(err?.code, 'EPERM');
  t.is(err?.syscall, 'ptrace');
  const sp = s.actors('subprocess:*').find((id) => id !== 'subprocess:source')!;
  t.is(s.states(sp).at(-1), 'dead');
  await until(() => s.platform.liveStubs.length === 1, 5000); // killed and reaped
  t.deepEqual(s.platform.liveStubs, [s.platform.sourcePid]);
});

test('a delayed transaction: the syscall thread is seen injecting meanwhile; the result is right', async (t) => {
  const s = await scenario(t);
  const as = await s.platform.newAddressSpace();
  s.fault({ op: 'inject', at: 'injecting', action: 'delay', ms: 150 });
  let seenInjecting = false;
  s.on(`syscallThread:*`, 'injecting', () => {
    seenInjecting = true;
  });
  const r = await as.injectSyscall(SYS.getpid);
  t.is(r.ret, BigInt(as.pid));
  t.true(seenInjecting);
  const st = `syscallThread:${s.actors('subprocess:*').at(-1)!.split(':')[1]}`;
  t.deepEqual(s.states(st).slice(-6), ['attaching', 'attached', 'injecting', 'attached', 'detaching', 'detached']);
  await as.release();
});

test('kill the stub while an injection is under way: ESTUBDEAD, subprocess dead, pool forgets it', async (t) => {
  const s = await scenario(t, { pool: { maxAvailable: 4 } });
  const as = await s.platform.newAddressSpace();
  s.fault({ op: 'inject', at: 'injecting', action: 'kill' });
  const err = await t.throwsAsync(as.injectSyscall(SYS.getpid));
  t.is(err?.code, 'ESTUBDEAD');
  const sp = s.actors('subprocess:*').at(-1)!;
  t.deepEqual(s.states(sp), ['creating.forking', 'creating.initializing', 'ready', 'dead']);
  await as.release();
  t.is(s.platform.pooled, 0);
});

test('interrupt a context when it enters running: switchToApp returns an interrupt', async (t) => {
  const s = await scenario(t);
  const as = await s.platform.newAddressSpace();
  const regs = await load(s, as, SPIN);
  const ctx = s.platform.newContext();
  s.on('platformContext:*', 'running', () => ctx.interrupt());
  const ev = await ctx.switchToApp(as, regs);
  t.deepEqual(ev, { kind: 'interrupt' });
  const id = s.actors('platformContext:*').at(-1)!;
  t.deepEqual(s.states(id), ['idle', 'queued', 'running', 'interrupted']);
  ctx.release();
  t.is(s.states(id).at(-1), 'released');
  await as.release();
});

test('corrupt a context slot while it runs: ECORRUPT on that context, the stub and Node go on', async (t) => {
  const s = await scenario(t);
  const as = await s.platform.newAddressSpace();
  const regs = await load(s, as, SPIN);
  const ctx = s.platform.newContext();
  s.on('platformContext:*', 'running', () => s.corruptSlot(ctx));
  const err = await t.throwsAsync(ctx.switchToApp(as, regs));
  t.is(err?.code, 'ECORRUPT');
  const id = s.actors('platformContext:*').at(-1)!;
  t.deepEqual(s.states(id), ['idle', 'queued', 'running', 'faulted']);
  // Another address space still works.
  const other = s.platform.newContext();
  const as2 = await s.platform.newAddressSpace();
  const r3 = await load(s, as2, GETPPID_LOOP);
  const ev = await other.switchToApp(as2, r3);
  t.is(ev.kind, 'syscall');
  ctx.release();
  other.release();
  await as.release();
  await as2.release();
});

test('kill the sysmsg thread when the context is running: ESTUBDEAD, sysmsg thread and stub dead', async (t) => {
  const s = await scenario(t);
  const as = await s.platform.newAddressSpace();
  const regs = await load(s, as, SPIN);
  const ctx = s.platform.newContext();
  s.on('platformContext:*', 'running', async () => {
    const smt = await s.waitFor('sysmsgThread:*', 'running');
    const tid = subprocessOf(as).sysmsgThreads.bySlot.get(Number(smt.split('/')[1]))!.tid;
    native.kill(tid, 9);
  });
  const err = await t.throwsAsync(ctx.switchToApp(as, regs));
  t.is(err?.code, 'ESTUBDEAD');
  const smt = s.actors('sysmsgThread:*').at(-1)!;
  // Made by the stub's own loop (no transaction): never attached.
  t.deepEqual(s.states(smt).slice(0, 4), ['cloning', 'stackMapped', 'seccompInstalled', 'running']);
  t.is(s.states(smt).at(-1), 'dead');
  t.is(s.states(s.actors('subprocess:*').at(-1)!).at(-1), 'dead');
  t.is(s.states(s.actors('platformContext:*').at(-1)!).at(-1), 'faulted');
  ctx.release();
  await as.release();
});

test('kill the stub while a sysmsg thread is being made (requestThread, attached): the switch fails, nothing leaks', async (t) => {
  const s = await scenario(t);
  const as = await s.platform.newAddressSpace();
  const regs = await load(s, as, GETPPID_LOOP);
  s.fault({ op: 'requestThread', at: 'attached', action: 'kill' });
  const ctx = s.platform.newContext();
  const err = await t.throwsAsync(ctx.switchToApp(as, regs));
  t.is(err?.code, 'ESTUBDEAD');
  t.is(s.states(s.actors('subprocess:*').at(-1)!).at(-1), 'dead');
  ctx.release();
  await as.release();
});

test('pool: release then reuse — ready, releasing, pooled, ready again (same stub)', async (t) => {
  const s = await scenario(t, { pool: { maxAvailable: 2 } });
  const a = await s.platform.newAddressSpace();
  const pid = a.pid;
  await a.release();
  const b = await s.platform.newAddressSpace();
  t.is(b.pid, pid);
  const sp = s.actors('subprocess:*').at(-1)!;
  t.deepEqual(s.states(sp), ['creating.forking', 'creating.initializing', 'ready', 'releasing', 'pooled', 'ready']);
  await b.release();
});

test('a stub killed while idle: the subprocess dies at once (pidfd watch), its syscall thread too', async (t) => {
  const s = await scenario(t);
  const as = await s.platform.newAddressSpace();
  native.kill(as.pid, 9);
  const sp = await s.waitFor(`subprocess:*`, 'dead');
  t.deepEqual(s.states(sp), ['creating.forking', 'creating.initializing', 'ready', 'dead']);
  t.is(s.states(sp.replace('subprocess:', 'syscallThread:')).at(-1), 'dead');
  await as.release();
});

test('a program under the sentry: its context passes through syscall, the stub ends dead after release', async (t) => {
  const s = await scenario(t, { maxSysmsgThreads: 2 });
  const exe = buildFixture('threads', ['-pthread']);
  const p = await runProgram(s.platform, { path: exe, argv: [exe], env: [], stdio: [0, 2, 2] });
  const end = await p.done;
  t.deepEqual(end.kind === 'exited' && end.status, 0);
  const contexts = s.actors('platformContext:*');
  t.is(contexts.length, 9);
  for (const c of contexts) t.deepEqual(s.states(c).slice(0, 5), ['idle', 'queued', 'running', 'syscall', 'queued']);
  const sp = s.actors('subprocess:*').at(-1)!;
  t.deepEqual(s.states(sp), ['creating.forking', 'creating.initializing', 'ready', 'releasing', 'dead']);
});

test('SIGKILL to a program that blocks in the sentry (futex) ends it at once: killed 9', async (t) => {
  const s = await scenario(t, { maxSysmsgThreads: 1 });
  const exe = buildFixture('sigint');
  const p = await runProgram(s.platform, { path: exe, argv: [exe], env: [], stdio: [0, 2, 2] });
  s.on('platformContext:*', 'syscall', () => p.kill(9));
  const end = await p.done;
  t.deepEqual(end.kind === 'killed' && end.signal, 9);
});

/**
 * The forkexec fixture (one fork, an execve in the child, a wait) run on the scenario's platform:
 * it ends well and prints `out`; once the platform is closed, its process actors end reaped
 * and its stubs dead.
 */
async function forkexecSees(t: ExecutionContext, s: Scenario, out: string): Promise<void> {
  const exe = buildFixture('forkexec');
  const file = join(tmpdir(), `systrap-scenario-${process.pid}-${Math.random().toString(36).slice(2)}.txt`);
  const fd = openSync(file, 'w');
  try {
    const p = await runProgram(s.platform, { path: exe, argv: [exe], env: [], stdio: [0, fd, 2] });
    t.like(await p.done, { kind: 'exited', status: 0 });
    t.is(readFileSync(file, 'utf8'), out);
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
  await s.close();
  for (const id of s.actors('process:*')) t.is(s.states(id).at(-1), 'reaped', id);
  for (const id of s.actors('subprocess:*')) t.is(s.states(id).at(-1), 'dead', id);
}

const PROCESS_FAULTS: Array<[FaultRule, string]> = [
  [{ op: 'fork', action: 'fail' }, 'fork: Resource temporarily unavailable\n'],
  [{ op: 'fork', action: 'fail', errno: 12 }, 'fork: Cannot allocate memory\n'],
  [{ op: 'fork', action: 'kill' }, 'child killed by 9\n'],
  [{ op: 'fork', action: 'delay', ms: 100 }, 'child exited 3\n'],
  [{ op: 'exec', action: 'fail' }, 'execve: Cannot allocate memory\nchild exited 4\n'],
  [{ op: 'exec', action: 'kill' }, 'child killed by 9\n'],
  [{ op: 'exec', action: 'delay', ms: 100 }, 'child exited 3\n'],
  [{ op: 'exit', action: 'kill' }, 'child exited 3\n'],
  [{ op: 'exit', action: 'delay', ms: 100 }, 'child exited 3\n'],
];

for (const [rule, out] of PROCESS_FAULTS) {
  test(`a program's ${rule.op} faulted (${rule.action}${'errno' in rule && rule.errno ? ` ${rule.errno}` : ''}): the program sees ${JSON.stringify(out)}, every process reaped`, async (t) => {
    const s = await scenario(t);
    s.fault(rule);
    await forkexecSees(t, s, out);
  });
}

test("a fork child whose first sysmsg thread cannot be made (its creation refused): the child is killed, the parent sees it killed by 9, every process reaped", async (t) => {
  const s = await scenario(t);
  // Armed at the first process's first trapped call (its thread is made by then): the next thread made is the child's first.
  s.on('platformContext:*', 'syscall', () => void s.fault({ op: 'requestThread', at: 'attach', action: 'fail' }));
  await forkexecSees(t, s, 'child killed by 9\n');
});

test('after every scenario: no zombie or stopped child left', (t) => {
  t.deepEqual(leakedChildren(), []);
});
