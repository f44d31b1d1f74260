/**
 * Syscall patching (src/shm/usertrap.ts, systrap_syshandler in native/stub/stub.S):
 * programs whose call sites get rewritten print what they print natively, through threads on
 * the sites being patched, interrupts inside the trampoline, remapped code, fork and exec;
 * `--deny` still refuses what comes through a patched site; `--no-patch` patches nothing; a
 * program that breaks the trampolines breaks only itself.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildFixture } from './fixtures/build.js';
import { UserTrap, trampoline } from '../src/shm/usertrap.js';
import { patchableCalls } from '../src/sentry/filter.js';
import { SYS } from '../src/abi/syscalls.js';
import { createPlatform, REGISTER_NAMES, runProgram, type Registers } from '../src/index.js';
import { native } from '../src/native.js';

const CLI = fileURLToPath(new URL('../bin/systrap.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'systrap-patch-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

function run(args: string[]) {
  return spawnSync(process.execPath, [CLI, 'run', ...args], { encoding: 'utf8', timeout: 120_000 });
}

/** The `-c` line of syscall patching, as numbers; undefined when there is none. */
function patched(summary: string): { sites: number; calls: number } | undefined {
  const m = /^systrap: (\d+) call sites? patched, (\d+) calls? made through them with no signal$/m.exec(summary);
  return m ? { sites: Number(m[1]), calls: Number(m[2]) } : undefined;
}

test('same as native with sites patched under it: threads on the sites, SIGALRM in the trampoline, a patched page remapped and rewritten, fork, exec', (t) => {
  const exe = buildFixture('patch', ['-pthread']);
  const native = spawnSync(exe, [], { encoding: 'utf8', timeout: 60_000 });
  t.is(native.status, 0);
  t.is(native.stdout, 'threads: ok, alarms: ok\nremap: ok\nfork: ok\nexec: ok\n');
  const plain = run(['--', exe]);
  t.is(plain.stdout, native.stdout, plain.stderr);
  t.is(plain.status, 0);
  // With -c every call traps: every site of the program is a candidate.
  const out = join(dir, 'summary');
  const counted = run(['-c', '-o', out, '--', exe]);
  t.is(counted.stdout, native.stdout, counted.stderr);
  const p = patched(readFileSync(out, 'utf8'));
  t.truthy(p, readFileSync(out, 'utf8'));
  // getppid and getpid in the threads, at least, and most of their 160000 calls through them.
  t.true(p!.sites >= 2, `${p!.sites} sites`);
  t.true(p!.calls > 100_000, `${p!.calls} calls through patched sites`);
});

test('--deny refuses the calls of a patched site too; --no-patch patches nothing', (t) => {
  const exe = buildFixture('getppid-loop');
  const out = join(dir, 'deny');
  const r = run(['-c', '-o', out, '-e', 'trace=getppid', '--deny', 'getppid:EPERM', '--', exe, '3000']);
  t.is(r.stdout, '-1\n', r.stderr);
  const text = readFileSync(out, 'utf8');
  t.regex(text, /^\s*[\d.]+\s+[\d.]+\s+\d+\s+3000\s+3000 getppid$/m);
  const p = patched(text);
  t.true(p !== undefined && p.sites >= 1 && p.calls >= 2990, text);
  const off = run(['-c', '-o', out, '--no-patch', '--', exe, '3000']);
  t.regex(off.stdout, /^\d+\n$/);
  t.is(patched(readFileSync(out, 'utf8')), undefined);
  t.regex(readFileSync(out, 'utf8'), /^\s*[\d.]+\s+[\d.]+\s+\d+\s+3000\s+getppid$/m);
});

test('a program that breaks its trampolines (GS base moved, table overwritten) dies by a signal of its own; Node and the host untouched', (t) => {
  const exe = buildFixture('hostile-patch', ['-mfsgsbase']);
  for (const how of ['gs', 'table']) {
    const native = spawnSync(exe, [how], { encoding: 'utf8' }).stdout;
    if (how === 'gs' && native === 'no fsgsbase\n') {
      // A CPU or kernel without FSGSBASE: no program can move its GS base, so nothing breaks.
      t.is(run(['--', exe, how]).stdout, native);
      continue;
    }
    t.is(native, 'unpatched 1\n', `${how}: natively nothing is patched`);
    const r = run(['--', exe, how]);
    t.is(r.status, 128 + 11, `${how}: ${r.stderr}`);
    t.is(r.stdout, '', how);
  }
  // With patching off they run as natively.
  t.is(run(['--no-patch', '--', exe, 'table']).stdout, 'unpatched 1\n');
});

test('patchable calls are only those the filter always traps; the trampoline is what the syshandler expects', (t) => {
  const calls = new Set(patchableCalls({ trap: new Set([SYS.openat]), deny: new Map([[SYS.mkdir, 13]]) }));
  t.true(calls.has(SYS.getppid) && calls.has(SYS.futex) && calls.has(SYS.openat));
  // Passed by the kernel (or refused by it) with no trap: never patched.
  for (const nr of [SYS.read, SYS.write, SYS.mmap, SYS.munmap, SYS.mkdir, SYS.ioctl, SYS.clock_gettime]) t.false(calls.has(nr), String(nr));
  t.true(new Set(patchableCalls({ trap: new Set(), trapAll: true, deny: new Map([[SYS.mkdir, 13]]) })).has(SYS.mkdir), 'traced and denied: it traps');
  // A table outside the range the 0x06 trick needs is refused.
  t.throws(() => new UserTrap(0x70000n, calls, 0x7f0000010000n, true), { instanceOf: RangeError });
  t.throws(() => new UserTrap(0x60001n, calls, 0x7f0000010000n, true), { instanceOf: RangeError });
  for (const rdgsbase of [true, false]) {
    const code = trampoline(0x61008n, 0x401007n, SYS.getppid, 0x7f0000012345n, rdgsbase);
    t.is(new DataView(code.buffer).getBigUint64(0, true), 0x61010n, 'the entry points at its own code');
    t.is(code.length, UserTrap.ENTRY_SIZE);
    // The syshandler's address and the return address are immediates, not Msg fields.
    const hex = Buffer.from(code).toString('hex');
    t.true(hex.includes('48b9' + '45230100007f0000'), 'movabs $syshandler, %rcx');
    t.true(hex.includes('48b8' + '0710400000000000'), 'movabs $ret, %rax');
    t.is(hex.includes('f3480faecc'), rdgsbase, 'rdgsbase %rsp where allowed');
  }
});

test('a site is patched only when it is `mov $N,%eax; syscall` of the trapped number, and written in three steps', (t) => {
  const memory = new Map<bigint, number>();
  const load = (at: bigint, bytes: number[]) => bytes.forEach((b, i) => memory.set(at + BigInt(i), b));
  const writes: Array<[bigint, number]> = [];
  const mem = {
    read: (addr: bigint, len: number) => {
      const out = new Uint8Array(len);
      for (let i = 0; i < len; i++) {
        const b = memory.get(addr + BigInt(i));
        if (b === undefined) return null;
        out[i] = b;
      }
      return out;
    },
    forceWrite: (list: ReadonlyArray<readonly [bigint, Uint8Array]>) => {
      for (const [addr, data] of list) {
        writes.push([addr, data.length]);
        data.forEach((b, i) => memory.set(addr + BigInt(i), b));
      }
      return list.length;
    },
  };
  const ut = new UserTrap(0x64000n, new Set([SYS.getppid]), 0x7f0000010000n, true);
  // 0x400ff0: mov $110,%eax; syscall (preceded by a ret)
  load(0x400fefn, [0xc3, 0xb8, 110, 0, 0, 0, 0x0f, 0x05]);
  // 0x401ff0: 41 b8 6e 00 00 00 0f 05: mov $110,%r8d; syscall (the number must be in eax by other means)
  load(0x401fefn, [0x41, 0xb8, 110, 0, 0, 0, 0x0f, 0x05]);
  t.false(ut.tryPatch(mem, 0x401ff7n, SYS.getppid) || ut.tryPatch(mem, 0x401ff7n, SYS.getppid), 'a REX prefix before: not a mov to eax');
  writes.length = 0;
  t.false(ut.tryPatch(mem, 0x400ff7n, SYS.getpid), 'another number: never patched');
  t.false(ut.tryPatch(mem, 0x400ff7n, SYS.getppid), 'its first trap: not yet');
  t.is(writes.length, 0);
  t.true(ut.tryPatch(mem, 0x400ff7n, SYS.getppid), 'its second');
  t.deepEqual(writes.map(([a, n]) => [a - 0x400ff0n, n]), [[-0x400ff0n + 0x64000n, UserTrap.ENTRY_SIZE], [5n, 1], [1n, 6], [0n, 1]]);
  t.deepEqual([...mem.read(0x400ff0n, 7)!], [0xff, 0x24, 0x25, 0x00, 0x40, 0x06, 0x00]);
  t.is(ut.sysnoAt(mem, 0x400ff7n), SYS.getppid);
  t.is(ut.rewind(mem, 0x400ff5n), 0x400ff0n, 'a SIGILL on the 0x06 goes back to the site');
  t.is(ut.restartAddr(mem, 0x400ff7n), 0x400ff0n);
  t.is(ut.stats.sites, 1);
  // The program puts other code there: no longer taken as patched, and patched again.
  load(0x400ff0n, [0xb8, 110, 0, 0, 0, 0x0f, 0x05]);
  t.is(ut.sysnoAt(mem, 0x400ff7n), undefined);
  t.is(ut.restartAddr(mem, 0x400ff7n), 0x400ff5n);
  t.true(ut.tryPatch(mem, 0x400ff7n, SYS.getppid));
  t.is(ut.fork().sysnoAt(mem, 0x400ff7n), SYS.getppid, "a fork child knows its copy's sites");
  // While a fork copies the address space, nothing is patched (a child must never get half a patch).
  load(0x402fefn, [0xc3, 0xb8, 110, 0, 0, 0, 0x0f, 0x05]);
  ut.hold();
  t.false(ut.tryPatch(mem, 0x402ff7n, SYS.getppid) || ut.tryPatch(mem, 0x402ff7n, SYS.getppid));
  ut.release();
  t.true(ut.tryPatch(mem, 0x402ff7n, SYS.getppid));
});

test('ctx.run on a platform with syscallPatching: the site is patched under the loop, every call still reaches the handler, a fork child runs it too', async (t) => {
  const le32 = (n: number) => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff];
  const N = 5000;
  // xor r12,r12; mov r13d,N; 1: mov eax,getppid; syscall; add r12,rax; dec r13d; jnz 1b; mov rdi,r12; mov eax,exit; syscall
  const code = [0x4d, 0x31, 0xe4, 0x41, 0xbd, ...le32(N), 0xb8, ...le32(SYS.getppid), 0x0f, 0x05, 0x49, 0x01, 0xc4, 0x41, 0xff, 0xcd, 0x75, 0xf1, 0x4c, 0x89, 0xe7, 0xb8, ...le32(SYS.exit), 0x0f, 0x05];
  const handler = new URL('../bench/ref/answer7.mjs', import.meta.url).href;
  const run = async (syscallPatching: boolean) => {
    const platform = await createPlatform({ syscallPatching });
    try {
      const as = await platform.newAddressSpace();
      await as.syscall(SYS.mmap, 0x400000n, 4096n, 7n, 0x32n, -1n, 0n); // rwx, private, anonymous, fixed
      t.is(native.processVmWritev(as.pid, 0x400000n, Uint8Array.from(code)), code.length);
      const ctx = platform.newContext();
      const regs = Object.fromEntries(REGISTER_NAMES.map((n) => [n, 0n])) as Registers;
      regs.rip = 0x400000n;
      regs.eflags = 0x202n;
      const ev = await ctx.run(as, regs, handler);
      const site = [...native.processVmReadv(as.pid, 0x400009n, 7)];
      // A fork's child has the patched code and the table: the same loop runs there.
      const child = await as.fork();
      const cregs = { ...regs, rip: 0x400000n, rax: 0n, r12: 0n, r13: 0n };
      const cev = await ctx.run(child, cregs, handler);
      ctx.release();
      await child.release();
      await as.release();
      return { ev, site, cev };
    } finally {
      await platform.close();
    }
  };
  const patched = await run(true);
  t.like(patched.ev, { kind: 'syscall', sysno: SYS.exit });
  t.is(patched.ev.kind === 'syscall' ? patched.ev.args[0] : undefined, 7n * BigInt(N), 'every getppid answered by the handler');
  t.deepEqual(patched.site.slice(0, 3), [0xff, 0x24, 0x25], 'the site is the jump now');
  t.is(patched.site[5], 0x06);
  t.is(patched.cev.kind === 'syscall' ? patched.cev.args[0] : undefined, 7n * BigInt(N), "the fork's child runs the patched site");
  const plain = await run(false);
  t.is(plain.ev.kind === 'syscall' ? plain.ev.args[0] : undefined, 7n * BigInt(N));
  t.deepEqual(plain.site, [0xb8, ...le32(SYS.getppid).slice(0, 4), 0x0f, 0x05], 'off by default: the code as written');
});

test('signals sent to the stub from outside while the program lives in patched calls are all handed over: its handler runs 50 times', async (t) => {
  const exe = buildFixture('patch-signals');
  const platform = await createPlatform({ pool: false });
  const out = join(dir, 'signals.out');
  const fd = openSync(out, 'w');
  try {
    const p = await runProgram(platform, { path: exe, argv: [exe], env: [], stdio: [0, fd, 2] });
    let ended = false;
    const done = p.done.finally(() => (ended = true));
    // Until it has started (its handler installed), then a SIGUSR1 to its stub per turn until it
    // has seen 50 and ended: standard signals sent faster than taken merge, as natively.
    let sent = 0;
    while (!ended) {
      if (readFileSync(out, 'utf8').startsWith('ready')) {
        try {
          process.kill(p.pid, 'SIGUSR1');
          sent++;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
          break; // the stub is gone: the program has ended
        }
      }
      await new Promise((r) => setImmediate(r));
    }
    const end = await done;
    t.deepEqual(end.kind === 'exited' ? end.status : end, 0);
    t.is(readFileSync(out, 'utf8'), 'ready\ngot 50\n');
    t.true(sent >= 50, `${sent} sent`);
  } finally {
    closeSync(fd);
    await platform.close();
  }
});
