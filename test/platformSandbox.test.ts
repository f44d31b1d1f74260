/**
 * Sandboxed programs through the platform (createPlatform's `sandbox` option, runProgram,
 * newAddressSpace({ sandbox: true })) on the real kernel: what the program sees, that Node is
 * out of its reach, that nothing is left behind, and the fallback where the kernel refuses the
 * namespaces (an unprivileged user on a machine with a masked /proc, as this VM and CI are).
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { InspectionEvent } from 'xstate';
import { createPlatform, SYS } from '../src/index.js';
import { subprocessOf } from '../src/addressSpace.js';
import { native, type ForkSandboxOptions } from '../src/native.js';
import { runProgram } from '../src/sentry/run.js';
import { buildFixture } from './fixtures/build.js';
import { childPids, fdCount, leakedChildren, maps, pidfdCount, requireTool, statesOf, until } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'systrap-psandbox-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

/** Whether this process may make the namespaces (root of the initial user namespace here). */
const privileged = process.getuid?.() === 0;

/** Runs `argv` sandboxed on `platform`; its stdout and how it ended. */
async function run(platform: Awaited<ReturnType<typeof createPlatform>>, argv: string[]) {
  const out = join(dir, `out-${Math.random().toString(36).slice(2)}`);
  const fd = openSync(out, 'w');
  try {
    const h = await runProgram(platform, { path: argv[0], argv, env: [], stdio: [0, fd, fd] });
    const end = await h.done;
    return { h, end, out: readFileSync(out, 'utf8') };
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes a script for a child Node (run as another user or as PID 1 of a container) in a folder
 * anyone may read; it imports the compiled library (`npm test` builds dist first) as `lib` and
 * runProgram as `runProgram`. Returns its path; the folder goes with the test.
 */
function childScript(t: import('ava').ExecutionContext, body: string): string {
  const own = mkdtempSync(join(tmpdir(), 'systrap-child-'));
  chmodSync(own, 0o755); // mkdtemp makes 0700 folders
  t.teardown(() => rmSync(own, { recursive: true, force: true }));
  const script = join(own, 'child.mjs');
  const index = new URL('../dist/src/index.js', import.meta.url).href;
  const runMod = new URL('../dist/src/sentry/run.js', import.meta.url).href;
  writeFileSync(script, `import * as lib from '${index}';\nimport { runProgram } from '${runMod}';\n${body}`);
  return script;
}

/**
 * Lets other users reach `dir` (the package, which the child imports): any folder above it
 * that they cannot enter (a checkout in a `mktemp -d` folder, 0700) gets o+x for the test and
 * its mode back after it.
 */
function openToOthers(t: import('ava').ExecutionContext, dir: string): void {
  for (let d = resolve(dir); d !== dirname(d); d = dirname(d)) {
    const mode = statSync(d).mode & 0o7777;
    if ((mode & 0o001) !== 0) continue;
    chmodSync(d, mode | 0o001);
    t.teardown(() => chmodSync(d, mode));
  }
}

/**
 * Node's mappings of memfds (the memory file in every thread that views it), as their files:
 * one entry per mapping (a mapping that grew with its file is the same mapping).
 */
function memfdMappings(): string[] {
  return readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((l) => l.includes('/memfd:'))
    .map((l) => l.split(/\s+/).slice(3).join(' '))
    .sort();
}

test('a sandboxed program is pid 2 under an init (pid 1); Node, its /proc entry and other programs do not exist there', async (t) => {
  if (!privileged) return t.pass('unprivileged: covered by the fallback test below');
  const bb = requireTool('busybox', 'busybox-static');
  const platform = await createPlatform({ pool: false, sandbox: 'require' });
  try {
    t.deepEqual(platform.sandbox, { available: true });
    const other = await runProgram(platform, { path: bb, argv: ['sleep', '5'], env: [], stdio: [0, 1, 2] });
    const script = [
      'echo "me $$ parent $PPID"',
      `kill -0 ${process.pid} 2>/dev/null && echo "node reachable" || echo "node unreachable"`,
      `kill -0 ${other.pid} 2>/dev/null && echo "other reachable" || echo "other unreachable"`,
      `test -e /proc/${process.pid} && echo "node in /proc" || echo "node not in /proc"`,
      'ls /proc',
    ].join('; ');
    const r = await run(platform, [bb, 'sh', '-c', script]);
    t.true(r.h.sandboxed);
    t.like(r.end, { kind: 'exited', status: 0 });
    t.regex(r.out, /^me 2 parent 1$/m);
    t.regex(r.out, /^node unreachable$/m);
    t.regex(r.out, /^other unreachable$/m);
    t.regex(r.out, /^node not in \/proc$/m);
    // The shell, its sysmsg threads and the init: no process of the host, not the other program.
    const procs = r.out.split('\n').filter((l) => /^\d+$/.test(l)).length;
    t.true(procs >= 2 && procs <= 2 + platform.port.maxSysmsgThreads + 2, `${procs} processes in the sandbox's /proc`);
    other.kill(9);
    t.like(await other.done, { kind: 'killed', signal: 9 });
  } finally {
    await platform.close();
  }
});

// Serial: its platform's fds and workers must not come and go while another test counts them.
test.serial('a sandboxed stub prepares itself, no tracer held: its syscall thread was never attached, its memory is the stub region alone; an injection later (registers taken from the live thread) and a fork of it work', async (t) => {
  if (!privileged) return t.pass('unprivileged: covered by the fallback test below');
  const events: InspectionEvent[] = [];
  const platform = await createPlatform({ pool: false, sandbox: 'require', inspect: (e) => events.push(e) });
  try {
    const as = await platform.newAddressSpace({ sandbox: true });
    const sp = subprocessOf(as);
    t.true(sp.sandboxed);
    t.is(await as.syscall(SYS.getpid), 2n);
    t.deepEqual(statesOf(events, sp.threadId), ['detached'], 'no transaction made it');
    // Its loop blocks every signal, as a tracer leaves it: one for the process is the program's.
    const blocked = BigInt(`0x${/^SigBlk:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${as.pid}/status`, 'utf8'))![1]}`);
    for (const sig of [1, 2, 10, 15, 17, 29]) t.is((blocked >> BigInt(sig - 1)) & 1n, 1n, `signal ${sig} blocked in the loop`);
    const { start, end } = platform.stubRegion;
    const outside = maps(as.pid).filter((l) => {
      const [lo, hi] = l.split(' ')[0].split('-').map((x) => BigInt(`0x${x}`));
      return (lo < start || hi > end) && !l.endsWith('[vsyscall]');
    });
    t.deepEqual(outside, [], 'nothing but the stub region (Node\'s memory, its vdso and stack gone)');
    t.true(maps(as.pid).some((l) => / r--s .*memfd:systrap/.test(l)), 'the rules and the request page, read-only');
    // An injection takes the thread out of its loop and puts it back.
    t.like(await as.injectSyscall(SYS.getppid), { ret: 1n });
    t.is(await as.syscall(SYS.getpid), 2n, 'the loop serves again');
    const child = await as.fork();
    t.like(await child.injectSyscall(SYS.getppid), { ret: 1n });
    t.is(await child.syscall(SYS.getppid), 1n);
    t.deepEqual(statesOf(events, sp.threadId), ['detached', 'attaching', 'attached', 'injecting', 'attached', 'detaching', 'detached']);
    await child.release();
    await as.release();
  } finally {
    await platform.close();
  }
  t.deepEqual(leakedChildren(), []);
});

test('forkSandbox refuses a self-preparation it could not do: an address outside the region, offsets not page-aligned, with exec', (t) => {
  const region = native.stubRegionInit();
  const ok = { msgAddr: region.start + 0x100000n, msgFileOffset: 0, rulesFileOffset: 0 };
  const bad: Array<[object, RegExp]> = [
    [{ selfInit: { ...ok, msgAddr: 0x1000n } }, /msgAddr must be a page of the stub region/],
    [{ selfInit: { ...ok, msgAddr: region.start } }, /msgAddr must be a page of the stub region/],
    [{ selfInit: { ...ok, msgAddr: ok.msgAddr + 8n } }, /msgAddr must be a page/],
    [{ selfInit: { ...ok, msgAddr: 5 } }, /msgAddr must be a bigint/],
    [{ selfInit: { ...ok, msgFileOffset: 100 } }, /msgFileOffset must be a page-aligned file offset/],
    [{ selfInit: { ...ok, rulesFileOffset: -4096 } }, /rulesFileOffset must be a page-aligned file offset/],
    [{ selfInit: null }, /selfInit must be an object/],
    [{ selfInit: ok, exec: '/bin/true' }, /exclude each other/],
  ];
  for (const [options, message] of bad) t.throws(() => native.forkSandbox(0, options as ForkSandboxOptions), { instanceOf: TypeError, message });
});

test('a program going for Node by its pid (/proc/<node> as a pidfd, /proc/<node>/mem, kcmp, pidfd_open): nothing exists; Node lives, the next program runs', async (t) => {
  if (!privileged) return t.pass('unprivileged: no sandbox here (see the README: the filter alone guards Node then)');
  const hostile = buildFixture('hostile-mem', ['-static']);
  const platform = await createPlatform({ pool: false, sandbox: 'require' });
  try {
    const r = await run(platform, [hostile, 'node', String(process.pid)]);
    t.like(r.end, { kind: 'exited', status: 0 });
    t.deepEqual(r.out.trim().split('\n'), [
      'open(/proc/<node>): No such file or directory',
      'pidfd_send_signal(/proc/<node>, SIGKILL): No such file or directory',
      'open(/proc/<node>/mem, O_RDWR): No such file or directory',
      'kcmp(node, self, KCMP_VM): No such process',
      'pidfd_open(node): No such process',
      'process_madvise(node, MADV_PAGEOUT): No such process',
      'still running',
    ]);
    t.true(process.kill(process.pid, 0), 'Node is alive');
    const next = await run(platform, [requireTool('busybox', 'busybox-static'), 'echo', 'next']);
    t.is(next.out, 'next\n');
  } finally {
    await platform.close();
  }
});

test("a stub call that blocks longer than the liveness poll is not taken for the stub's death (a sandboxed stub is not Node's child)", async (t) => {
  if (!privileged) return t.pass('unprivileged: no sandbox to test');
  const platform = await createPlatform({ pool: false, sandbox: 'require' });
  try {
    const as = await platform.newAddressSpace({ sandbox: true });
    t.true(platform.port.sandboxed(as));
    t.is(await as.syscall(SYS.getpid), 2n, 'getpid in the sandbox');
    // poll(NULL, 0, 150): sleeps 150 ms in the stub, several 20 ms liveness polls.
    t.is(await as.syscall(SYS.poll, 0n, 0n, 150n), 0n);
    await as.release();
  } finally {
    await platform.close();
  }
});

test('200 sandboxed programs, some killed: fds and memory-file mappings flat, no zombie, no process left, the memory file back to where it was', async (t) => {
  const bb = requireTool('busybox', 'busybox-static');
  const platform = await createPlatform({ pool: false });
  const idle = pidfdCount(); // the source stub's exit watch
  try {
    const round = () =>
      Promise.all([
        run(platform, [bb, 'true']),
        run(platform, [bb, 'sh', '-c', 'exit 3']),
        run(platform, [bb, 'sh', '-c', 'kill -9 $$']),
        (async () => {
          const h = await runProgram(platform, { path: bb, argv: ['sleep', '10'], env: [], stdio: [0, 1, 2] });
          h.kill(15);
          return { end: await h.done };
        })(),
      ]);
    await round(); // warm: workers and sentry hosts for 4 programs at once, the memory file grown
    await until(() => pidfdCount() === idle);
    const fds = fdCount();
    const mappings = memfdMappings();
    t.true(mappings.length > 0, 'Node maps the memory file');
    const children = childPids().sort();
    const allocated = platform.memoryFile.allocated;
    for (let i = 0; i < 200; i += 4) {
      const ends = await round();
      t.deepEqual(
        ends.map(({ end }) => (end.kind === 'exited' ? `exit ${end.status}` : end.kind === 'killed' ? `signal ${end.signal}` : `${end.kind} ${JSON.stringify(end)}`)),
        ['exit 0', 'exit 3', 'signal 9', 'signal 15'],
      );
    }
    // Node's children: the parked source stub (and any warm child) as before, nothing else.
    const leaked = () => leakedChildren().filter((c) => c.pid !== platform.sourcePid);
    t.true(await until(() => leaked().length === 0), JSON.stringify(leaked()));
    t.true(await until(() => JSON.stringify(childPids().sort()) === JSON.stringify(children)), `children ${children} → ${childPids()}`);
    t.true(await until(() => fdCount() === fds), `fds ${fds} → ${fdCount()}`);
    t.is(platform.memoryFile.allocated, allocated);
    t.deepEqual(memfdMappings(), mappings, "Node's mappings of memory files (the platform's, the workers')");
  } finally {
    await platform.close();
  }
});

test("unprivileged where /proc is masked: 'auto' runs programs in plain stubs and says why, 'require' fails with a typed error", (t) => {
  if (!privileged) return t.pass('needs root to start a child as another user');
  const script = childScript(
    t,
    `const p = await lib.createPlatform({ pool: false, sandbox: process.argv[2] });
try {
  const h = await runProgram(p, { path: '/bin/true', argv: ['true'], env: [], stdio: [0, 1, 2] });
  console.log(JSON.stringify({ end: await h.done, sandboxed: h.sandboxed, sandbox: p.sandbox }));
} catch (e) {
  console.log(JSON.stringify({ typed: e instanceof lib.SystrapError, code: e.code, message: e.message }));
} finally {
  await p.close();
}
`,
  );
  openToOthers(t, fileURLToPath(new URL('..', import.meta.url)));
  const child = (mode: string) => {
    const r = spawnSync(process.execPath, [script, mode], { uid: 65534, gid: 65534, encoding: 'utf8', timeout: 60_000 });
    t.is(r.status, 0, r.stderr);
    return JSON.parse(r.stdout);
  };
  // Whether users may make these namespaces here at all (this VM and CI: not, /proc is masked).
  const probe = spawnSync(requireTool('unshare', 'util-linux'), ['-Urpf', '--mount-proc', 'true'], { uid: 65534, gid: 65534 });
  const auto = child('auto');
  t.like(auto.end, { kind: 'exited', status: 0 });
  if (probe.status === 0) {
    // A machine where users may make the namespaces: they get the sandbox.
    t.true(auto.sandboxed);
    return;
  }
  t.false(auto.sandboxed);
  t.false(auto.sandbox.available);
  t.regex(auto.sandbox.reason, /sandbox setup failed at /);
  const req = child('require');
  t.true(req.typed, 'a SystrapError');
  t.regex(req.code, /^E[A-Z]+$/);
  t.regex(req.message, /sandbox setup failed at /);
});

test('Node as PID 1 of a container (unshare -fp --mount-proc): 200 programs, then no zombie and no fd left in the container', (t) => {
  if (!privileged) return t.pass('needs root for a pid namespace');
  const unshare = requireTool('unshare', 'util-linux');
  const bb = requireTool('busybox', 'busybox-static');
  const script = childScript(
    t,
    `import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
const procs = () => readdirSync('/proc').filter((d) => /^\\d+$/.test(d)).map((d) => { try { const s = readFileSync('/proc/' + d + '/stat', 'utf8'); return s.slice(s.lastIndexOf(')') + 2, s.lastIndexOf(')') + 3); } catch { return 'gone'; } });
const p = await lib.createPlatform({ pool: false });
const once = async (argv) => (await (await runProgram(p, { path: '${bb}', argv, env: [], stdio: [0, 2, 2] })).done);
// Quiet: Node and its parked source stub only, and every exit seen (a process leaves /proc
// before the event loop hears of it and closes its pidfd).
const pidfds = () => readdirSync('/proc/self/fd').filter((f) => { try { return readlinkSync('/proc/self/fd/' + f) === 'anon_inode:[pidfd]'; } catch { return false; } }).length;
const idle = pidfds();
const quiet = async () => { for (const end = Date.now() + 5000; (procs().length > 2 || pidfds() > idle) && Date.now() < end; ) await new Promise((r) => setTimeout(r, 5)); };
await Promise.all([once(['true']), once(['sh', '-c', 'kill -9 $$'])]);
await quiet();
const fds = readdirSync('/proc/self/fd').length;
const ends = [];
for (let i = 0; i < 100; i++) ends.push(...(await Promise.all([once(['true']), once(['sh', '-c', 'kill -9 $$'])])).map((e) => e.kind));
await quiet();
const after = { pid: process.pid, fds: readdirSync('/proc/self/fd').length - fds, zombies: procs().filter((s) => s === 'Z').length, ends: [...new Set(ends)].sort() };
await p.close();
console.log(JSON.stringify({ ...after, left: procs().length }));
`,
  );
  const r = spawnSync(unshare, ['-fp', '--mount-proc', process.execPath, script], { encoding: 'utf8', timeout: 120_000 });
  t.is(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  t.is(out.pid, 1, 'Node is PID 1 in the container');
  t.deepEqual(out.ends, ['exited', 'killed']);
  t.is(out.fds, 0, 'fds in Node after the runs, compared with before');
  t.is(out.zombies, 0, 'zombies in the container after the runs');
  t.is(out.left, 1, 'after close, Node is the only process in the container');
});
