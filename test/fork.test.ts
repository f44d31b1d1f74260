/**
 * AddressSpace.fork (the platform's half of fork, see src/actors/stubCreation.ts forkStub) on
 * the real kernel: a copy-on-write copy of a stub's address space in a new stub, its control
 * memory its own, plain and sandboxed; what it holds and what it does not; nothing left behind.
 */
import test from 'ava';
import { closeSync, mkdtempSync, openSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPlatform, SYS } from '../src/index.js';
import { native } from '../src/native.js';
import { subprocessOf } from '../src/addressSpace.js';
import { abi } from '../src/abi/stub.js';
import { forkSeams } from '../src/actors/stubCreation.js';
import { SyscallThreadOwner } from '../src/shm/syscallThreadLock.js';
import { childPids, fdCount, fdTable, leakedChildren, maps, procState, requireTool, until } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'systrap-fork-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

const text = (b: Uint8Array) => new TextDecoder().decode(b);

for (const sandbox of [false, true]) {
  const name = sandbox ? 'sandboxed' : 'plain';

  test(`${name}: the copy has the parent's memory copy-on-write, its fds, its own pid; the parent is untouched`, async (t) => {
    if (sandbox && process.getuid?.() !== 0) return t.pass('unprivileged: no sandbox here');
    const platform = await createPlatform({ pool: false, sandbox: sandbox ? 'require' : 'off' });
    try {
      const as = await platform.newAddressSpace({ sandbox });
      const addr = await as.syscall(SYS.mmap, 0n, 8192n, 3n, 0x22n, -1n, 0n); // private anonymous
      native.processVmWritev(as.pid, addr, new TextEncoder().encode('before'));
      const file = join(dir, `${name}.txt`);
      writeFileSync(file, 'in the file');
      const [fd] = await as.importFds([openSync(file, 'r')]);
      const child = await as.fork();
      native.processVmWritev(as.pid, addr, new TextEncoder().encode('AFTER!'));
      t.is(text(native.processVmReadv(child.pid, addr, 6)), 'before', "the child keeps what it had at the fork");
      t.is(text(native.processVmReadv(as.pid, addr, 6)), 'AFTER!');
      native.processVmWritev(child.pid, addr, new TextEncoder().encode('child!'));
      t.is(text(native.processVmReadv(as.pid, addr, 6)), 'AFTER!', "the child's writes stay its own");
      t.not(child.pid, as.pid);
      const [pid, cpid] = [await as.syscall(SYS.getpid), await child.syscall(SYS.getpid)];
      t.not(cpid, pid);
      if (sandbox) t.is(await child.syscall(SYS.getppid), 1n, "the sandbox's init is its parent too");
      // The fd the parent had is the child's too (fork copies the table)…
      t.is(fdTable(child.pid)[String(fd)], file);
      // …but neither the memory file nor the fd channel, and its control memory is its own file.
      const fds = fdTable(child.pid);
      t.false(String(abi.STUB_MEMFD) in fds, 'no memory file fd in the copy');
      t.false(String(abi.STUB_FDCHAN) in fds, 'no fd channel in the copy');
      // The fd the copy made its control memory with is closed by the copy itself (stub.S).
      t.deepEqual(Object.entries(fds).filter(([, f]) => f.includes('systrap-control')), [], 'no fd to its control memory');
      const control = maps(child.pid).filter((l) => l.includes('systrap-control'));
      t.true(control.length >= 1, 'its control memory is a file of its own');
      t.false(maps(child.pid).some((l) => l.includes('systrap-memory')), "nothing of the platform's memory file is mapped in the copy");
      const grandchild = await child.fork();
      t.is(text(native.processVmReadv(grandchild.pid, addr, 6)), 'child!');
      await grandchild.release();
      await child.release();
      await as.release();
    } finally {
      await platform.close();
    }
  });
}

test('forks in a row: fds, pidfds, children and the memory file flat; the parent survives its children and the other way round', async (t) => {
  const platform = await createPlatform({ pool: false, sandbox: 'off' });
  try {
    const allocated = platform.memoryFile.allocated;
    const as = await platform.newAddressSpace();
    await (await as.fork()).release(); // warm
    const before = { fds: fdCount(), children: childPids().length };
    for (let i = 0; i < 20; i++) {
      const child = await as.fork();
      t.is(await child.syscall(SYS.getppid), BigInt(process.pid), 'a sibling of the parent stub (CLONE_PARENT): Node reaps it');
      await child.release();
    }
    // A child outlives its parent stub.
    const child = await as.fork();
    await as.release();
    t.true(await child.syscall(SYS.getpid) > 0n);
    await child.release();
    t.true(await until(() => childPids().length <= before.children), `children ${childPids()}`);
    t.true(await until(() => fdCount() <= before.fds), `fds ${before.fds} → ${fdCount()}`);
    t.is(platform.memoryFile.allocated, allocated, 'no range of the memory file is held once every stub is gone');
    t.deepEqual(leakedChildren().filter((c) => c.pid !== platform.sourcePid), []);
  } finally {
    await platform.close();
  }
});

test('a parent that dies during the fork: a typed error, no half-made child left', async (t) => {
  const platform = await createPlatform({ pool: false, sandbox: 'off' });
  try {
    const as = await platform.newAddressSpace();
    const kids = childPids().length;
    native.kill(as.pid, 9);
    const err = await t.throwsAsync(as.fork());
    t.regex(String((err as { code?: string }).code), /^E(STUBDEAD|FAULTED)$/);
    t.true(await until(() => childPids().length <= kids - 1), `children ${childPids()}`);
    const other = await platform.newAddressSpace();
    t.truthy(await (await other.fork()).syscall(SYS.getpid), 'the platform goes on');
  } finally {
    await platform.close();
  }
});

test("a fork child held after its answer: the parent's next requests and forks do not reach it; it sets up once it runs", async (t) => {
  // Found in CI under load: the child read its arguments after Node's ack, from the page it
  // still shares with its parent, where Node had by then posted the parent's next request;
  // and a child acknowledged late waited for its own state while the word held a later one.
  const platform = await createPlatform({ pool: false, sandbox: 'off' });
  const held: number[] = [];
  try {
    const as = await platform.newAddressSpace();
    forkSeams.childAnswered = (pid) => {
      if (held.length === 0) native.kill(pid, 19); // SIGSTOP: the first child only
      held.push(pid);
    };
    const first = await as.fork();
    t.true(await until(() => procState(first.pid) === 'T'), 'the first child is held');
    // The parent serves requests (their arguments written where the child's were) and forks again.
    const ppid = await as.syscall(SYS.getpid);
    await as.syscall(SYS.mmap, 0n, 4096n, 3n, 0x22n, -1n, 0n);
    const second = await as.fork();
    t.true(await second.syscall(SYS.getpid) > 0n, 'the second child serves');
    native.kill(first.pid, 18); // SIGCONT
    const served = await Promise.race([first.syscall(SYS.getpid), new Promise<'stuck'>((r) => setTimeout(r, 10_000, 'stuck').unref())]);
    t.not(served, 'stuck', 'the first child took the later ack as its own');
    t.true(typeof served === 'bigint' && served > 0n && served !== ppid, 'the first child serves as a process of its own');
    t.is(held.length, 2);
    await Promise.all([first.release(), second.release(), as.release()]);
  } finally {
    forkSeams.childAnswered = undefined;
    for (const pid of held) try { native.kill(pid, 18); } catch { /* gone */ }
    await platform.close();
  }
});

test("a fork child's first sysmsg thread is asked of its loop before the loop runs: the main thread holds the loop until the answer, which lets it go", async (t) => {
  // The request is written into the child's own message before Node acknowledges its memfd:
  // the loop finds it as it starts, while Node builds the child's actors.
  const platform = await createPlatform({ pool: false, sandbox: 'off' });
  let held = 0;
  try {
    const as = await platform.newAddressSpace();
    forkSeams.childAnswered = (pid) => {
      held = pid;
      native.kill(pid, 19); // SIGSTOP: its loop has not run yet
    };
    const child = await as.fork();
    forkSeams.childAnswered = undefined;
    t.true(await until(() => procState(child.pid) === 'T'), 'the child is held');
    const sp = subprocessOf(child);
    const msg = sp.thread.msg!;
    const words = new DataView(sp.control.file.view(msg.range).buffer, sp.control.file.view(msg.range).byteOffset, abi.SYSMSG_SIZE);
    t.is(words.getUint32(abi.SYSMSG_STATE, true), 1, 'posted: the first request of the new message');
    t.is(words.getUint32(abi.SYSMSG_DONE, true), 0, 'not served: the loop has not run');
    t.is(words.getUint32(abi.SYSMSG_OWNER, true), SyscallThreadOwner.Main, 'the loop is held for the main thread');
    t.deepEqual(sp.sysmsgThreads.tids(), [], 'no thread yet');
    native.kill(child.pid, 18); // SIGCONT
    t.true(await until(() => sp.sysmsgThreads.tids().length === 1), 'the thread is made once the loop runs');
    t.is(words.getUint32(abi.SYSMSG_DONE, true), 1, 'the request posted before the ack is the one answered');
    t.is(words.getUint32(abi.SYSMSG_OWNER, true), SyscallThreadOwner.None, 'the answer let go of the loop');
    t.deepEqual(readdirSync(`/proc/${child.pid}/task`).map(Number).sort(), [child.pid, sp.sysmsgThreads.tid(1)].sort(), 'the syscall thread and the one sysmsg thread');
    const cpid = await child.syscall(SYS.getpid);
    t.is(Number(cpid), child.pid, 'the loop serves the next request');
    await Promise.all([child.release(), as.release()]);
  } finally {
    forkSeams.childAnswered = undefined;
    if (held) try { native.kill(held, 18); } catch { /* gone */ }
    await platform.close();
  }
});

test('a fork child killed before its loop ran: its first thread is never made, a typed error, nothing left; the parent forks again', async (t) => {
  const platform = await createPlatform({ pool: false, sandbox: 'off' });
  try {
    const as = await platform.newAddressSpace();
    const [fds, kids] = [fdCount(), childPids().length];
    forkSeams.childAnswered = (pid) => native.kill(pid, 9);
    const made = await as.fork().then((c) => c, (e: unknown) => e as Error);
    forkSeams.childAnswered = undefined;
    const err = made instanceof Error ? made : await t.throwsAsync((made as Awaited<ReturnType<typeof as.fork>>).syscall(SYS.getpid));
    t.is((err as { code?: string }).code, 'ESTUBDEAD', String(err));
    if (!(made instanceof Error)) await made.release().catch(() => undefined);
    t.true(await until(() => childPids().length <= kids && fdCount() <= fds), `children ${childPids()}, fds ${fdCount()} (were ${kids}, ${fds})`);
    const again = await as.fork();
    t.true((await again.syscall(SYS.getpid)) > 0n, 'the next fork serves');
    await Promise.all([again.release(), as.release()]);
  } finally {
    forkSeams.childAnswered = undefined;
    await platform.close();
  }
  t.deepEqual(leakedChildren(), []);
});

test('fork of a released address space is refused', async (t) => {
  const platform = await createPlatform({ pool: false, sandbox: 'off' });
  try {
    const as = await platform.newAddressSpace();
    await as.release();
    await t.throwsAsync(as.fork(), { code: 'ERELEASED' });
    t.is(subprocessOf(as).alive, false);
  } finally {
    await platform.close();
  }
});

for (const sandbox of [false, true]) {
  test(`${sandbox ? 'sandboxed' : 'plain'}: a forged fork answer naming another process makes Node signal nothing: EPROTOCOL, that process untouched`, async (t) => {
    if (sandbox && process.getuid?.() !== 0) return t.pass('unprivileged: no sandbox here');
    const platform = await createPlatform({ pool: false, sandbox: sandbox ? 'require' : 'off' });
    // An innocent child of Node's, alive for the whole test: the pid a hostile program names.
    const innocent = spawn(requireTool('sleep', 'coreutils'), ['100'], { stdio: 'ignore' });
    try {
      const as = await platform.newAddressSpace({ sandbox });
      const sp = subprocessOf(as);
      const msg = sp.thread.msg!;
      const dv = new DataView(sp.control.file.view(msg.range).buffer, sp.control.file.view(msg.range).byteOffset, abi.SYSMSG_SIZE);
      // The program's move, as its threads can make it (the message's reply page is writable in
      // the stub): with the syscall thread held, the only answer to the fork is the forged one.
      native.kill(as.pid, 19); // SIGSTOP
      t.true(await until(() => procState(as.pid) === 'T'), 'the syscall thread stops');
      const posted = dv.getUint32(abi.SYSMSG_STATE, true);
      const fork = as.fork();
      t.true(await until(() => dv.getUint32(abi.SYSMSG_STATE, true) !== posted), 'the fork request is posted');
      dv.setBigUint64(abi.SYSMSG_REPLY, BigInt(innocent.pid!), true);
      dv.setUint32(abi.SYSMSG_DONE, dv.getUint32(abi.SYSMSG_STATE, true), true);
      sp.control.file.shared.futexWake(msg.range.start + abi.SYSMSG_DONE, 1);
      await t.throwsAsync(fork, { code: 'EPROTOCOL' });
      t.is(innocent.exitCode, null, 'the process the answer named is alive');
      t.is(innocent.signalCode, null);
      t.true(processAlive(innocent.pid!), 'and not stopped or killed');
      native.kill(as.pid, 9); // still held: the fork request never runs
      const other = await platform.newAddressSpace({ sandbox });
      t.truthy(await (await other.fork()).syscall(SYS.getpid), 'the platform goes on');
    } finally {
      await platform.close();
      innocent.kill('SIGKILL');
    }
    t.deepEqual(leakedChildren().filter((c) => c.pid !== innocent.pid && c.comm !== 'sleep'), []);
  });
}


function processAlive(pid: number): boolean {
  const s = procState(pid);
  return s !== undefined && s !== 'Z' && s !== 'T';
}
