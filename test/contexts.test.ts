import test from 'ava';
import { availableParallelism } from 'node:os';
import { createPlatform, SYS, REGISTER_NAMES, type AddressSpace, type Platform, type PlatformContext, type Registers } from '../src/index.js';
import { SIG } from '../src/abi/linux.js';
import { contextSlotAddr, PER_THREAD, threadSlotAddr } from '../src/abi/stub.js';
import { MSG, THREAD_CONTEXT, ThreadState } from '../src/abi/sysmsg.js';
import { native } from '../src/native.js';
import { threadStat, until } from './helpers.js';
import { subprocessOf } from '../src/addressSpace.js';

let platform: Platform;
test.before(async () => {
  platform = await createPlatform();
});
test.after.always(async () => {
  await platform?.close();
});

const CODE = 0x400000n;
const STACK = 0x500000n;

/** Maps machine code (rx) and a stack (rw); returns registers that start it. */
async function load(as: AddressSpace, code: number[]): Promise<Registers> {
  const text = platform.memoryFile.allocate(4096);
  platform.memoryFile.view(text).set(code);
  await as.mapFile(CODE, text, 'rx');
  const stack = platform.memoryFile.allocate(8192);
  await as.mapFile(STACK, stack, 'rw');
  const regs = Object.fromEntries(REGISTER_NAMES.map((n) => [n, 0n])) as Registers;
  regs.rip = CODE;
  regs.rsp = STACK + 8192n;
  regs.eflags = 0x202n;
  return regs;
}

/**
 * Waits until `ctx`'s program runs on a host thread of the stub (`ctx.state === 'running'` only
 * says the switch began: the context may still sit in the queue). Read from the stub itself: the
 * ThreadContext names the sysmsg thread that took it, that thread's Msg points back at this
 * context in state None (out of the handler, in application code), and the host thread is on a
 * CPU in user mode: state R and its utime grows between two looks. Returns that thread's tid, or
 * 0 if the deadline passed first.
 */
async function hostThreadOf(p: Platform, as: AddressSpace, ctx: PlatformContext, timeoutMs = 5000): Promise<number> {
  const u32 = (addr: bigint) => native.processVmReadv(as.pid, addr, 4).readUInt32LE(0);
  const u64 = (addr: bigint) => native.processVmReadv(as.pid, addr, 8).readBigUInt64LE(0);
  const slotAddr = contextSlotAddr(p.stubRegion, ctx.id);
  let seen: { tid: number; utime: number } | undefined;
  const ok = await until(() => {
    try {
      // The slot is mapped in the stub once the switch is prepared: before that, nothing to read.
      if (ctx.state !== 'running') return false;
      const slot = u32(slotAddr + BigInt(THREAD_CONTEXT.threadId));
      const thread = subprocessOf(as).sysmsgThreads.bySlot.get(slot);
      if (!thread || thread.tid === 0) return false;
      const msg = threadSlotAddr(p.stubRegion, slot) + BigInt(PER_THREAD.sharedOffset + PER_THREAD.msgOffset);
      if (u64(msg + BigInt(MSG.context)) !== slotAddr || u32(msg + BigInt(MSG.state)) !== ThreadState.None) return false;
      const stat = threadStat(thread.tid);
      if (!stat || stat.state !== 'R') return false;
      if (seen?.tid !== thread.tid) {
        seen = { tid: thread.tid, utime: stat.utime };
        return false;
      }
      return stat.utime > seen.utime;
    } catch {
      return false; // the stub died: the deadline turns that into a failure
    }
  }, timeoutMs);
  return ok ? seen!.tid : 0;
}

const le32 = (n: number) => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff];
const le64 = (n: bigint) => [...le32(Number(n & 0xffffffffn)), ...le32(Number(n >> 32n))];

test('a loop of getppid calls: each traps as a syscall; the value put in rax is what the program sees', async (t) => {
  const N = 100;
  // xor r12,r12; mov r13d,N; 1: mov eax,getppid; syscall; add r12,rax; dec r13d; jnz 1b;
  // mov rdi,r12; mov eax,exit; syscall
  const code = [0x4d, 0x31, 0xe4, 0x41, 0xbd, ...le32(N), 0xb8, ...le32(SYS.getppid), 0x0f, 0x05, 0x49, 0x01, 0xc4,
    0x41, 0xff, 0xcd, 0x75, 0xf1, 0x4c, 0x89, 0xe7, 0xb8, ...le32(SYS.exit), 0x0f, 0x05];
  const as = await platform.newAddressSpace();
  const regs = await load(as, code);
  const ctx = platform.newContext();
  let sum = 0n;
  let ev = await ctx.switchToApp(as, regs);
  let calls = 0;
  while (ev.kind === 'syscall' && ev.sysno === SYS.getppid) {
    calls++;
    t.is(regs.orig_rax, BigInt(SYS.getppid));
    regs.rax = BigInt(calls * 3); // a different answer each time
    sum += regs.rax;
    ev = await ctx.switchToApp(as, regs);
  }
  t.is(calls, N);
  t.deepEqual(ev, { kind: 'syscall', sysno: SYS.exit, args: [sum, 0n, 0n, 0n, 0n, 0n] });
  t.is(ctx.state, 'syscall');
  ctx.release();
  await as.release();
});

test('a store to an unmapped address: signal SIGSEGV with that address, access write', async (t) => {
  // movabs rax, 0x100000000; mov dword [rax], 1; jmp $
  const as = await platform.newAddressSpace();
  const regs = await load(as, [0x48, 0xb8, ...le64(0x100000000n), 0xc7, 0x00, 0x01, 0x00, 0x00, 0x00, 0xeb, 0xfe]);
  const ctx = platform.newContext();
  const ev = await ctx.switchToApp(as, regs);
  t.like(ev, { kind: 'signal', signo: SIG.SIGSEGV, addr: 0x100000000n, access: { write: true, read: false, execute: false } });
  t.is(regs.rip, CODE + 10n, 'registers at the fault');
  t.is(ctx.state, 'fault');
  ctx.release();
  await as.release();
});

test('an endless loop is stopped by ctx.interrupt()', async (t) => {
  const as = await platform.newAddressSpace();
  const regs = await load(as, [0xeb, 0xfe]); // jmp $
  const ctx = platform.newContext();
  const run = ctx.switchToApp(as, regs);
  t.true((await hostThreadOf(platform, as, ctx)) > 0, 'the loop runs on a sysmsg thread');
  ctx.interrupt();
  t.deepEqual(await run, { kind: 'interrupt' });
  t.is(regs.rip, CODE);
  t.is(ctx.state, 'interrupted');
  ctx.release();
  await as.release();
});

test('the program jumps into stub code to make a syscall the filter forbids: refused, not executed', async (t) => {
  const as = await platform.newAddressSpace();
  // mov eax, getpid; movabs rcx, <the stub's syscall instruction>; jmp rcx
  const target = platform.stubRegion.syscallAddr;
  const regs = await load(as, [0xb8, ...le32(SYS.getpid), 0x48, 0xb9, ...le64(target), 0xff, 0xe1]);
  const ctx = platform.newContext();
  const ev = await ctx.switchToApp(as, regs);
  // The kernel's filter trapped it (the handler reports a syscall; it never ran): rax is
  // -ENOSYS, not the pid, and the trap came from inside the stub region.
  t.deepEqual(ev, { kind: 'syscall', sysno: SYS.getpid, args: [0n, 0n, 0n, 0n, 0n, 0n] });
  t.is(BigInt.asIntN(64, regs.rax), -38n);
  t.is(regs.rip, target + 2n);
  ctx.release();
  await as.release();
});

test('a sysmsg thread killed with SIGKILL: its context fails with ESTUBDEAD', async (t) => {
  const as = await platform.newAddressSpace();
  const regs = await load(as, [0xeb, 0xfe]);
  const ctx = platform.newContext();
  const run = ctx.switchToApp(as, regs);
  // The thread that runs the loop, found through the context: a tid of 0 must never reach kill().
  const tid = await hostThreadOf(platform, as, ctx);
  t.true(tid > 0, 'the loop runs on a sysmsg thread');
  if (tid === 0) {
    // Failed above; end the loop rather than wait for a death that will not come.
    ctx.release();
    await run.catch(() => undefined);
    await as.release();
    return;
  }
  process.kill(tid, 'SIGKILL');
  await t.throwsAsync(run, { code: 'ESTUBDEAD' });
  t.is(ctx.state, 'faulted');
  t.true(await until(() => as.state === 'dead'));
  ctx.release();
});

test('the program scribbles over its ThreadContext: ECORRUPT on that context; Node and other address spaces go on', async (t) => {
  const as = await platform.newAddressSpace();
  const ctx = platform.newContext();
  // The context's slot is mapped in the stub at a fixed address (its id, in this stub, is known
  // once it first ran there: getpid first). Then the program overwrites its state word with 77
  // in a loop (1: mov dword [rbx], 77; jmp 1b). The sentry wakes within its liveness poll, reads
  // an impossible state, and fails this context only.
  const { contextSlotAddr } = await import('../src/abi/stub.js');
  const regs = await load(as, [0xb8, ...le32(SYS.getpid), 0x0f, 0x05, 0xc7, 0x03, ...le32(77), 0xeb, 0xf8]);
  t.like(await ctx.switchToApp(as, regs), { kind: 'syscall', sysno: SYS.getpid });
  regs.rbx = contextSlotAddr(platform.stubRegion, ctx.id) + BigInt(THREAD_CONTEXT.state);
  const run = ctx.switchToApp(as, regs);
  const err = await t.throwsAsync(run);
  t.is((err as { code?: string }).code, 'ECORRUPT');
  t.is(ctx.state, 'faulted');
  // Another address space keeps working.
  const other = await platform.newAddressSpace();
  t.is(await other.syscall(SYS.getpid), BigInt(other.pid));
  await other.release();
  ctx.release();
  await as.release();
});

test('64 contexts on one address space with maxSysmsgThreads: 2 all finish; threads are created lazily', async (t) => {
  const small = await createPlatform({ maxSysmsgThreads: 2 });
  try {
    const K = 20;
    const code = [0x4d, 0x31, 0xe4, 0x41, 0xbd, ...le32(K), 0xb8, ...le32(SYS.getppid), 0x0f, 0x05, 0x49, 0x01, 0xc4,
      0x41, 0xff, 0xcd, 0x75, 0xf1, 0x4c, 0x89, 0xe7, 0xb8, ...le32(SYS.exit), 0x0f, 0x05];
    const as = await small.newAddressSpace();
    const text = small.memoryFile.allocate(4096);
    small.memoryFile.view(text).set(code);
    await as.mapFile(CODE, text, 'rx');
    t.is(subprocessOf(as).sysmsgThreads.size, 0, 'no thread before the first switch');
    const results = await Promise.all(
      Array.from({ length: 64 }, async (_, i) => {
        const ctx = small.newContext();
        const regs = Object.fromEntries(REGISTER_NAMES.map((n) => [n, 0n])) as Registers;
        regs.rip = CODE;
        regs.eflags = 0x202n;
        let ev = await ctx.switchToApp(as, regs);
        while (ev.kind === 'syscall' && ev.sysno === SYS.getppid) {
          regs.rax = BigInt(i);
          ev = await ctx.switchToApp(as, regs);
        }
        ctx.release();
        return ev;
      }),
    );
    results.forEach((ev, i) => t.deepEqual(ev, { kind: 'syscall', sysno: SYS.exit, args: [BigInt(i * K), 0n, 0n, 0n, 0n, 0n] }));
    const threads = subprocessOf(as).sysmsgThreads.size;
    t.true(threads >= 1 && threads <= 2, `${threads} sysmsg threads for 64 contexts`);
    await as.release();
  } finally {
    await small.close();
  }
});

test('a context running more than 10 ms while others wait is preempted (one sysmsg thread)', async (t) => {
  const one = await createPlatform({ maxSysmsgThreads: 1 });
  try {
    const as = await one.newAddressSpace();
    const text = one.memoryFile.allocate(4096);
    // At 0x400000: jmp $ (endless). At 0x400010: mov eax, getppid; syscall; mov rdi, rax; mov eax, exit; syscall
    const view = one.memoryFile.view(text);
    view.set([0xeb, 0xfe], 0);
    view.set([0xb8, ...le32(SYS.getppid), 0x0f, 0x05, 0x48, 0x89, 0xc7, 0xb8, ...le32(SYS.exit), 0x0f, 0x05], 0x10);
    await as.mapFile(CODE, text, 'rx');
    const regsOf = (rip: bigint) => {
      const r = Object.fromEntries(REGISTER_NAMES.map((n) => [n, 0n])) as Registers;
      r.rip = rip;
      r.eflags = 0x202n;
      return r;
    };
    const spinner = one.newContext();
    const spinning = spinner.switchToApp(as, regsOf(CODE));
    // The only thread is busy with the endless loop.
    t.true((await hostThreadOf(one, as, spinner)) > 0, 'the loop runs on the only sysmsg thread');
    const worker = one.newContext();
    const regs = regsOf(CODE + 0x10n);
    let ev = await worker.switchToApp(as, regs); // needs the thread: only preemption frees it
    t.like(ev, { kind: 'syscall', sysno: SYS.getppid });
    regs.rax = 1234n;
    ev = await worker.switchToApp(as, regs);
    t.deepEqual(ev, { kind: 'syscall', sysno: SYS.exit, args: [1234n, 0n, 0n, 0n, 0n, 0n] });
    t.is(subprocessOf(as).sysmsgThreads.size, 1);
    // The preempted loop was requeued, not returned to its caller; a real interrupt stops it.
    spinner.interrupt();
    t.deepEqual(await spinning, { kind: 'interrupt' });
    worker.release();
    spinner.release();
    await as.release();
  } finally {
    await one.close();
  }
});

test('fast path: a runner worker answers syscalls with a handler module, no message per syscall', async (t) => {
  const N = 1000;
  const code = [0x4d, 0x31, 0xe4, 0x41, 0xbd, ...le32(N), 0xb8, ...le32(SYS.getppid), 0x0f, 0x05, 0x49, 0x01, 0xc4,
    0x41, 0xff, 0xcd, 0x75, 0xf1, 0x4c, 0x89, 0xe7, 0xb8, ...le32(SYS.exit), 0x0f, 0x05];
  const as = await platform.newAddressSpace();
  const regs = await load(as, code);
  const ctx = platform.newContext();
  const events: string[] = [];
  const sub = ctx.ref.subscribe((s) => events.push(String(s.value)));
  const handler = new URL('./fixtures/answer7.mjs', import.meta.url).href;
  const queued0 = (await subprocessOf(as).ensureQueue()).enqueued;
  const ev = await ctx.run(as, regs, handler);
  sub.unsubscribe();
  // Direct resume: the stub thread that trapped waits for its context and gets it back without
  // the queue; only a few switches (the first, and any after a spin timed out) go through it.
  // (On one CPU the stub does not spin and every switch is queued.)
  const queued = ((subprocessOf(as).queue!.enqueued - queued0) >>> 0);
  if (availableParallelism() > 1) t.true(queued < N / 2, `${queued} of ${N + 1} switches went through the queue`);
  t.deepEqual(ev, { kind: 'syscall', sysno: SYS.exit, args: [7n * BigInt(N), 0n, 0n, 0n, 0n, 0n] });
  t.is(ctx.switches, N + 1);
  // The actor saw the run, not every syscall.
  t.deepEqual(events, ['queued', 'running', 'syscall']);
  // An interrupt reaches a context running on the fast path too.
  const loop = await platform.newAddressSpace();
  const lregs = await load(loop, [0xeb, 0xfe]);
  const lctx = platform.newContext();
  const running = lctx.run(loop, lregs, handler);
  t.true((await hostThreadOf(platform, loop, lctx)) > 0, 'the loop runs on a sysmsg thread');
  lctx.interrupt();
  t.deepEqual(await running, { kind: 'interrupt' });
  lctx.release();
  ctx.release();
  await loop.release();
  await as.release();
});

test('releasing a running context interrupts it; its id is reused only after', async (t) => {
  const as = await platform.newAddressSpace();
  const regs = await load(as, [0xeb, 0xfe]);
  const ctx = platform.newContext();
  const running = ctx.switchToApp(as, regs);
  t.true((await hostThreadOf(platform, as, ctx)) > 0, 'the loop runs on a sysmsg thread');
  ctx.release();
  t.is(ctx.state, 'released');
  const other = platform.newContext();
  t.not(other.id, ctx.id, 'the id is still in use while the switch runs');
  t.deepEqual(await running, { kind: 'interrupt' });
  other.release();
  const a = platform.newContext();
  const b = platform.newContext();
  t.deepEqual([a.id, b.id].sort(), [ctx.id, other.id].sort(), 'given back once the switch ended');
  a.release();
  b.release();
  await as.release();
});

// The handshake line (ThreadContext.state .. fastRax, native/stub/sysmsg.h): a direct resume
// hands a call's result over in it, and neither side counts the context in or out of the queue's
// active contexts. A handler that sets the result and another register, reads the result back,
// and stops with a result set, run through the direct resume and through the queue.
const HANDSHAKE_N = 2000;
// xor r12,r12; xor r14,r14; mov r13d,N; 1: mov eax,getppid; syscall; add r12,rax; add r14,rsi;
// dec r13d; jnz 1b; mov rdi,r12; mov rsi,r14; mov eax,exit; syscall
const HANDSHAKE_PROGRAM = [0x4d, 0x31, 0xe4, 0x4d, 0x31, 0xf6, 0x41, 0xbd, ...le32(HANDSHAKE_N), 0xb8, ...le32(SYS.getppid), 0x0f, 0x05,
  0x49, 0x01, 0xc4, 0x49, 0x01, 0xf6, 0x41, 0xff, 0xcd, 0x75, 0xee, 0x4c, 0x89, 0xe7, 0x4c, 0x89, 0xf6, 0xb8, ...le32(SYS.exit), 0x0f, 0x05];
const HANDSHAKE_HANDLER = new URL('./fixtures/handshake.mjs', import.meta.url).href;

for (const path of ['direct', 'queue'] as const) {
  test(`through the ${path === 'direct' ? 'direct resume' : 'queue (the stub fast path off)'}: each result and register the handler set is what the program sees, the result reads back as set, a result set before stopping is in the registers, and the active-context count ends where it began`, async (t) => {
    const as = await platform.newAddressSpace();
    const regs = await load(as, HANDSHAKE_PROGRAM);
    const ctx = platform.newContext();
    const q = await subprocessOf(as).ensureQueue();
    const active0 = q.numActiveContexts;
    const queued0 = q.enqueued;
    if (path === 'queue') q.stubFastPath(false);
    const ev = await ctx.run(as, regs, HANDSHAKE_HANDLER);
    t.deepEqual(ev, { kind: 'syscall', sysno: SYS.exit, args: [7n * BigInt(HANDSHAKE_N), 5n * BigInt(HANDSHAKE_N), 0n, 0n, 0n, 0n] });
    t.is(regs.rax, 99n, 'the result set by the handler that stopped the run');
    t.is(ctx.switches, HANDSHAKE_N + 1);
    const queued = (q.enqueued - queued0) >>> 0;
    if (path === 'queue') t.is(queued, HANDSHAKE_N + 1, 'every switch went through the queue');
    else if (availableParallelism() > 1) t.true(queued < HANDSHAKE_N / 2, `${queued} of ${HANDSHAKE_N + 1} switches went through the queue`); // one CPU: no stub thread spins
    // The exit's trap is the sentry's now: the stub thread that spun for it gives up and uncounts
    // it (direct path), or uncounted it as it published (queue).
    t.true(await until(() => q.numActiveContexts === active0), `active contexts ${q.numActiveContexts}, ${active0} before`);
    q.stubFastPath(true);
    ctx.release();
    await as.release();
  });
}
