/**
 * The observe-only trace ring (native/stub/trace_ring.c, src/sentry/kernel/traceRing.ts): calls
 * that are only watched are made by the stub, which records them, and the sentry decodes the
 * records later. The trace reads as with every call trapping; threads keep their order and lose
 * nothing; a full ring makes the program wait, never drop; a program that writes over its ring
 * hurts only its own trace.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildFixture } from './fixtures/build.js';
import { SYS } from '../src/abi/syscalls.js';
import { TRACE_RING, TRACE_SPEC } from '../src/abi/traceRing.js';
import { createPlatform, runProgram } from '../src/index.js';
import { traceRingSpec } from '../src/sentry/traceRingSpec.js';
import type { TraceOptions } from '../src/sentry/protocol.js';

const CLI = fileURLToPath(new URL('../bin/systrap.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'systrap-ring-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

function run(args: string[]) {
  return spawnSync(process.execPath, [CLI, 'run', ...args], { encoding: 'utf8', timeout: 120_000 });
}

/** The `-c` line of the trace ring, as numbers; undefined when there is none. */
function ringLine(summary: string): { calls: number; waits: number } | undefined {
  const m = /^systrap: (\d+) calls? made and recorded by the stub \(trace ring\), (\d+) waits? for room/m.exec(summary);
  return m ? { calls: Number(m[1]), waits: Number(m[2]) } : undefined;
}

/**
 * A trace with what differs from run to run taken out: addresses, random bytes, the counters
 * of statfs and sysinfo (free blocks, free memory, processes), a child's CPU times.
 */
function normalized(trace: string): string {
  return trace
    .split('\n')
    .map((l) => {
      l = l.replace(/0x[0-9a-f]+/g, 'X');
      if (/^getrandom\(/.test(l)) l = l.replace(/"(\\x[0-9a-f]{2})+"/, '"R"');
      if (/^(f?statfs|sysinfo)\(/.test(l)) l = l.replace(/\d+/g, 'N');
      l = l.replace(/si_([us])time=\d+( \/\* [\d.]+ s \*\/)?/g, 'si_$1time=T');
      return l;
    })
    .join('\n');
}

/** A fresh folder for ring-calls.c to work in. */
function workdir(name: string): string {
  const w = join(dir, name);
  rmSync(w, { recursive: true, force: true });
  mkdirSync(w);
  return w;
}

test('every call the ring takes reads in the trace as when it traps: same program output as natively, same lines with the ring off', (t) => {
  const exe = buildFixture('ring-calls');
  const native = spawnSync(exe, [workdir('w')], { encoding: 'utf8' });
  t.is(native.status, 0);
  const traces: Record<string, string> = {};
  for (const mode of ['ring', 'no ring']) {
    const out = join(dir, `calls-${mode}`);
    const r = run([...(mode === 'ring' ? [] : ['--no-trace-ring']), '-e', 'trace=all', '-o', out, '--', exe, workdir('w')]);
    t.is(r.stdout, native.stdout, `${mode}: ${r.stderr}`);
    t.is(r.status, 0);
    traces[mode] = normalized(readFileSync(out, 'utf8'));
  }
  t.is(traces.ring, traces['no ring']);
  // Lines only the ring made: bad pointers (the stub's copy of "0x1" failed, as the kernel's
  // did) and structs copied out.
  t.regex(traces.ring, /^newfstatat\(AT_FDCWD, X, X, 0\) += -1 EFAULT \(Bad address\)$/m);
  t.regex(traces.ring, /^newfstatat\(AT_FDCWD, "d", X, 0\) += -1 EFAULT \(Bad address\)$/m);
  t.regex(traces.ring, /^getdents64\(3, X \/\* 3 entries \*\/, 4096\) += \d+$/m);
  t.regex(traces.ring, /^pipe2\(\[\d+, \d+\], O_CLOEXEC\) += 0$/m);
  t.regex(traces.ring, /^uname\(\{sysname="Linux", nodename="[^"]*", \.\.\.\}\) += 0$/m);
  // And they did go through the ring: -c says how many.
  const sum = join(dir, 'calls-c');
  t.is(run(['-c', '-o', sum, '--', exe, workdir('c')]).status, 0);
  const line = ringLine(readFileSync(sum, 'utf8'));
  t.true(line !== undefined && line.calls >= 60, readFileSync(sum, 'utf8'));
});

test('-c counts every call and error the same with the ring on and off', (t) => {
  const exe = buildFixture('ring-calls');
  const table = (mode: string) => {
    const out = join(dir, `summary-${mode}`);
    const r = run([...(mode === 'ring' ? [] : ['--no-trace-ring']), '-c', '-o', out, '--', exe, workdir('w')]);
    t.is(r.status, 0, r.stderr);
    const text = readFileSync(out, 'utf8');
    const counts = new Map<string, string>();
    for (const m of text.matchAll(/^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(\d*)\s*(\w+)$/gm)) counts.set(m[3], `${m[1]}/${m[2] || 0}`);
    return { counts: Object.fromEntries([...counts].sort()), text };
  };
  const on = table('ring');
  const off = table('off');
  t.true(Object.keys(on.counts).length > 40, on.text);
  t.deepEqual(on.counts, off.counts);
  t.truthy(ringLine(on.text), on.text);
  t.is(ringLine(off.text), undefined, off.text);
});

test('forked children record through rings of their own: the -f trace reads as with the ring off', (t) => {
  const script = 'busybox ls -l /usr > /dev/null; busybox ls -a /etc > /dev/null; (busybox ls / > /dev/null)';
  const traces: Record<string, string> = {};
  for (const mode of ['ring', 'no ring']) {
    const out = join(dir, `fork-${mode}`);
    const r = run([...(mode === 'ring' ? [] : ['--no-trace-ring']), '-f', '-e', 'trace=newfstatat,getdents64,openat,close,lstat', '-o', out, '--', '/bin/busybox', 'sh', '-c', script]);
    t.is(r.status, 0, r.stderr);
    traces[mode] = normalized(readFileSync(out, 'utf8'));
  }
  t.is(traces.ring, traces['no ring']);
  t.true(traces.ring.split('\n').length > 100, traces.ring);
  const sum = join(dir, 'fork-c');
  t.is(run(['-f', '-c', '-o', sum, '--', '/bin/busybox', 'sh', '-c', script]).status, 0);
  const line = ringLine(readFileSync(sum, 'utf8'));
  t.true(line !== undefined && line.calls > 100, readFileSync(sum, 'utf8'));
});

/** ring-order.c under runProgram with faccessat2 traced (-f; glibc's faccessat makes it): each thread's call numbers in trace order, and the run's end. */
async function orderedRun(threads: number, calls: number, ringSize?: number) {
  const exe = buildFixture('ring-order', ['-pthread']);
  const out = join(dir, `order-${threads}-${ringSize ?? 'full'}`);
  const fd = openSync(out, 'w');
  const devnull = openSync('/dev/null', 'w');
  const platform = await createPlatform({ pool: false });
  try {
    const trace = { trace: [SYS.faccessat2], outFd: fd, toFile: true, style: { follow: true }, ...(ringSize ? { ringSize } : {}) };
    const p = await runProgram(platform, { path: exe, argv: [exe, String(threads), String(calls)], env: [], stdio: [0, devnull, 2], trace });
    const end = await p.done;
    const seen = new Map<number, number[]>();
    for (const m of readFileSync(out, 'utf8').matchAll(/faccessat2\(AT_FDCWD, "\/nonexistent\/ring\/(\d+)\/(\d+)", F_OK, 0\) += -1 ENOENT/g)) {
      const list = seen.get(Number(m[1])) ?? [];
      list.push(Number(m[2]));
      seen.set(Number(m[1]), list);
    }
    return { end, seen };
  } finally {
    closeSync(fd);
    closeSync(devnull);
    await platform.close();
  }
}

test('threads making ring calls at once: every call of every thread is in the trace, in its order', async (t) => {
  const { end, seen } = await orderedRun(4, 3000);
  t.like(end, { kind: 'exited', status: 0 });
  t.is(seen.size, 4);
  const expected = Array.from({ length: 3000 }, (_, i) => i);
  for (const [thread, list] of seen) t.deepEqual(list, expected, `thread ${thread}`);
  // 4 × 3000 × 3 calls went through it (getuid and newfstatat untraced pass the kernel: not these).
  t.true(end.ring !== undefined && end.ring.records >= 12_000, JSON.stringify(end.ring));
});

test('-c of threads making ring calls at once counts what it counts with the ring off', (t) => {
  const exe = buildFixture('ring-order', ['-pthread']);
  const counts = (mode: string) => {
    const out = join(dir, `threads-c-${mode}`);
    const r = run([...(mode === 'ring' ? [] : ['--no-trace-ring']), '-f', '-c', '-e', 'trace=faccessat2,getuid,newfstatat', '-o', out, '--', exe, '4', '2000']);
    t.is(r.status, 0, r.stderr);
    const text = readFileSync(out, 'utf8');
    return { text, calls: Object.fromEntries([...text.matchAll(/^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(\d*)\s*(\w+)$/gm)].map((m) => [m[3], `${m[1]}/${m[2] || 0}`])) };
  };
  const on = counts('ring');
  const off = counts('off');
  t.deepEqual(on.calls, off.calls);
  t.like(on.calls, { faccessat2: '8000/8000', getuid: '8000/0' });
  t.true((ringLine(on.text)?.calls ?? 0) >= 24_000, on.text);
});

test('a full ring makes the stub wait for the sentry, never drop a record', async (t) => {
  const { end, seen } = await orderedRun(3, 2000, 4096);
  t.like(end, { kind: 'exited', status: 0 });
  t.true(end.ring !== undefined && end.ring.fullWaits > 0, `no wait for room: ${JSON.stringify(end.ring)}`);
  const expected = Array.from({ length: 2000 }, (_, i) => i);
  for (const [thread, list] of seen) t.deepEqual(list, expected, `thread ${thread}`);
  t.is(seen.size, 3);
});

test('a program that writes over its own ring while it makes ring calls: its calls still work, it ends as natively; Node untouched', (t) => {
  const exe = buildFixture('hostile-ring', ['-pthread']);
  const native = spawnSync(exe, [String(TRACE_RING.size)], { encoding: 'utf8' });
  t.is(native.stdout, 'no ring\n2000 20000\n');
  const r = run(['-e', 'trace=getuid,geteuid,newfstatat', '-o', '/dev/null', '--', exe, String(TRACE_RING.size)]);
  t.is(r.stdout, 'survived\n2000 1 20000\n', r.stderr);
  t.is(r.status, 0);
});

test('a call whose path another thread unmaps at once: it works or fails as natively, and a copy that faults costs only its bytes', async (t) => {
  const exe = buildFixture('ring-race', ['-pthread']);
  t.is(spawnSync(exe, [], { encoding: 'utf8' }).stdout, 'ok 0\n');
  const out = join(dir, 'race');
  const fd = openSync(out, 'w');
  const devnull = openSync('/dev/null', 'w');
  const platform = await createPlatform({ pool: false });
  try {
    let faults = 0;
    for (let i = 0; i < 3; i++) {
      const p = await runProgram(platform, { path: exe, argv: [exe], env: [], stdio: [0, fd, 2], trace: { trace: [SYS.newfstatat], outFd: devnull, style: { follow: true } } });
      const end = await p.done;
      t.like(end, { kind: 'exited', status: 0 });
      t.true(end.ring !== undefined && end.ring.records >= 20_000, JSON.stringify(end.ring));
      faults += end.ring?.faults ?? 0;
    }
    t.is(readFileSync(out, 'utf8'), 'ok 0\n'.repeat(3));
    // Copies that faulted after their call had worked (the page went in between): how often
    // depends on timing (2 to 24 a run when measured).
    t.log(`copies that faulted: ${faults} in 3 runs`);
  } finally {
    closeSync(fd);
    closeSync(devnull);
    await platform.close();
  }
});

test('the spec: only observed calls, never under a policy or -y/-P, never denied, injected or the sentry\'s own', (t) => {
  const base: TraceOptions = { trace: [SYS.newfstatat, SYS.getuid, SYS.getpid, SYS.read, SYS.openat, SYS.close], outFd: 2, summary: false, inject: [] };
  const spec = traceRingSpec(base);
  // getpid is the sentry's; read can wait: neither goes through the ring.
  t.deepEqual(spec.calls, [SYS.close, SYS.getuid, SYS.newfstatat, SYS.openat].sort((a, b) => a - b));
  const dv = new DataView(spec.bytes.buffer);
  t.is(dv.getUint32(TRACE_SPEC.magic, true), TRACE_SPEC.MAGIC);
  t.is(dv.getUint32(TRACE_SPEC.flags, true), 0, 'no times without -t, -T, -r or -c');
  t.is(dv.getUint32(TRACE_SPEC.calls + 4 * SYS.read, true), 0);
  // newfstatat: a string in (argument 1), a struct stat out (argument 2).
  t.is(dv.getUint32(TRACE_SPEC.calls + 4 * SYS.newfstatat, true), (1 << 24) | (7 << 28) | (1 << 4) | (3 << 8));
  t.deepEqual(traceRingSpec({ ...base, policy: 'file:///p.mjs' }).calls, []);
  t.deepEqual(traceRingSpec({ ...base, style: { decodeFds: 1 } }).calls, []);
  t.deepEqual(traceRingSpec({ ...base, style: { paths: ['/etc'] } }).calls, []);
  t.deepEqual(traceRingSpec({ ...base, ring: false }).calls, []);
  t.false(traceRingSpec({ ...base, denied: [[SYS.close, 1]] }).calls.includes(SYS.close));
  t.false(traceRingSpec({ ...base, inject: [{ syscalls: [SYS.getuid], error: 1 }] }).calls.includes(SYS.getuid));
  const counted = traceRingSpec({ ...base, trace: [], summary: true });
  t.true(counted.calls.includes(SYS.getdents64) && !counted.calls.includes(SYS.getpid));
  t.is(new DataView(counted.bytes.buffer).getUint32(TRACE_SPEC.flags, true), TRACE_SPEC.TIMES, '-c times every call');
  t.throws(() => traceRingSpec({ ...base, ringSize: 5000 }), { instanceOf: RangeError });
});
