/**
 * Inspection of the whole system: one observer sees every actor (pool, subprocesses, syscall
 * threads, sysmsg threads, contexts) in order; @statelyai/inspect's WebSocket inspector works
 * with createPlatform({ inspect }); the JSONL recording replays to the same final states; the
 * relay (`connectInspector`) feeds a running inspector server.
 */
import test from 'ava';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { createPlatform, InspectionRecorder, connectInspector, startInspectorServer, type InspectRecord } from '../src/index.js';
import { runProgram } from '../src/sentry/run.js';
import { eventPayload, jsonSafe, contextJson, MAX_CONTEXT_CHARS } from '../src/inspect/payload.js';
import { systrapVersion } from '../src/cliUsage.js';
import { syscallName } from '../src/abi/syscalls.js';
import { buildFixture } from './fixtures/build.js';
import { inspectorUrl, until } from './helpers.js';

const CLI = fileURLToPath(new URL('../bin/systrap.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'systrap-inspect-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

/** Final state of every actor, rebuilt from records (what a replay shows). */
function finalStates(records: InspectRecord[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const r of records) if (r.kind === 'snapshot') m.set(r.id, r.value);
  return m;
}

test('one observer sees the whole system, in order, with ids naming each actor', async (t) => {
  const records: InspectRecord[] = [];
  const rec = new InspectionRecorder((r) => records.push(r));
  const platform = await createPlatform({ inspect: rec.observer, pool: false, maxSysmsgThreads: 2 });
  try {
    const exe = buildFixture('threads', ['-pthread']);
    const p = await runProgram(platform, { path: exe, argv: [exe], env: [], stdio: [0, 2, 2] });
    await p.done;
  } finally {
    await platform.close();
  }
  const actors = records.filter((r) => r.kind === 'actor').map((r) => (r as { id: string }).id);
  t.true(actors.includes('pool'));
  t.true(actors.some((id) => /^subprocess:\d+$/.test(id)));
  t.true(actors.some((id) => /^syscallThread:\d+$/.test(id)));
  t.true(actors.some((id) => /^sysmsgThread:\d+\/\d+$/.test(id)));
  t.is(actors.filter((id) => id.startsWith('platformContext:')).length, 9);
  // Program threads are actors too (the task machine, mirrored from the sentry worker): the
  // main thread and 8 pthreads, each through the stub and the sentry, all gone at the end.
  const tasks = actors.filter((id) => /^task:\d+\/\d+$/.test(id));
  t.is(tasks.length, 9);
  const visited = (id: string) => [...new Set(records.flatMap((r) => (r.kind === 'snapshot' && r.id === id ? [r.value] : [])))];
  for (const id of tasks) {
    const states = visited(id);
    for (const s of ['inStub.running', 'trapped', 'ready']) t.true(states.includes(s), `${id} went through ${s}: ${states.join(' ')}`);
    t.is(finalStates(records).get(id), 'exited', id);
  }
  t.true(tasks.some((id) => visited(id).includes('blocked.futex')), 'a thread waited on a futex in the sentry');
  // In order: seq increases, and every actor appears before its first snapshot.
  const seqs = records.flatMap((r) => ('seq' in r ? [r.seq] : []));
  t.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
  const born = new Set<string>();
  for (const r of records) {
    if (r.kind === 'actor') born.add(r.id);
    if (r.kind === 'snapshot') t.true(born.has(r.id), `${r.id} snapshot before its actor record`);
  }
  t.is(finalStates(records).get('pool'), 'closed');
});

test('each process of a program is a process actor under its parent: running, stopped, zombie, reaped', async (t) => {
  const records: InspectRecord[] = [];
  const rec = new InspectionRecorder((r) => records.push(r));
  const platform = await createPlatform({ inspect: rec.observer, pool: false });
  const devnull = openSync('/dev/null', 'w');
  try {
    // Stops and continues children, ends them, reaps them (see the fixture).
    const exe = buildFixture('jobs');
    const p = await runProgram(platform, { path: exe, argv: [exe], env: [], stdio: [0, devnull, 2] });
    t.like(await p.done, { kind: 'exited', status: 0 });
  } finally {
    closeSync(devnull);
    await platform.close();
  }
  const actors = records.flatMap((r) => (r.kind === 'actor' && r.id.startsWith('process:') ? [r] : []));
  const root = actors.find((a) => a.parent === 'pool');
  t.truthy(root, 'the first process hangs under the pool');
  const children = actors.filter((a) => a.parent === root!.id);
  t.is(children.length, actors.length - 1, 'every other process hangs under the first (it forked them all)');
  t.true(children.length >= 6, `${children.length} children`);
  const visited = (id: string) => new Set(records.flatMap((r) => (r.kind === 'snapshot' && r.id === id ? [r.value] : [])));
  for (const a of actors) {
    t.is(finalStates(records).get(a.id), 'reaped', a.id);
    t.true(visited(a.id).has('zombie'), `${a.id} was a zombie before it was reaped`);
  }
  t.true(children.filter((a) => visited(a.id).has('stopped')).length >= 4, 'the stopped children were shown stopped');
  // What ended or stopped each one travels with the event (the timeline shows it).
  const events = records.flatMap((r) => (r.kind === 'event' && r.target.startsWith('process:') ? [r] : []));
  const exits = events.filter((e) => e.type === 'EXIT');
  t.is(exits.length, actors.length);
  t.true(exits.every((e) => typeof e.payload?.status === 'number' || typeof e.payload?.signal === 'number'), JSON.stringify(exits.map((e) => e.payload)));
  t.like(exits.find((e) => e.target === root!.id), { payload: { status: 0 } });
  t.true(events.filter((e) => e.type === 'STOP').every((e) => typeof e.payload?.signal === 'number'));
});

test("@statelyai/inspect's WebSocket inspector receives the runtime's events (local relay, offline)", (t) => {
  const port = 18000 + Math.floor(Math.random() * 2000);
  const script = fileURLToPath(new URL('./fixtures/stately-relay.mjs', import.meta.url));
  const r = spawnSync(process.execPath, [script, String(port)], { encoding: 'utf8', timeout: 60_000 });
  t.is(r.status, 0, r.stderr);
  const got = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { types: string[]; machines: string[]; snapshots: number };
  t.deepEqual(got.types, ['@xstate.actor', '@xstate.event', '@xstate.snapshot']);
  for (const m of ['pool', 'subprocess', 'syscallThread']) t.true(got.machines.includes(m), `machine ${m} seen`);
  t.true(got.snapshots > 5);
});

test('systrap run --record: the JSONL trace replays to the same final states as the live run', async (t) => {
  const file = join(dir, 'run.jsonl');
  const exe = buildFixture('threads', ['-pthread']);
  const r = spawnSync(process.execPath, [CLI, 'run', '--record', file, '--max-threads', '2', '--', exe], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  const records = readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as InspectRecord);
  // What the recording is of comes first, then the statecharts.
  t.like(records[0], { kind: 'meta', program: exe, argv: [exe], version: systrapVersion(), kernel: release(), node: process.version });
  t.false(Number.isNaN(Date.parse((records[0] as { date: string }).date)));
  t.is(records[1].kind, 'machines');
  // Events keep what they carry: the trapped syscall's number and name, the stub's pid, the
  // spawned actor's kind; snapshots their context (only when it changed).
  const events = records.flatMap((r) => (r.kind === 'event' ? [r] : []));
  const traps = events.filter((e) => e.type === 'TRAPPED_SYSCALL');
  t.true(traps.length > 0, 'trapped syscalls were recorded');
  for (const e of traps) t.is(e.payload?.syscall, syscallName(e.payload?.sysno as number), JSON.stringify(e.payload));
  t.true(events.some((e) => e.type === 'FORKED' && typeof e.payload?.pid === 'number'));
  t.true(events.some((e) => e.type === 'SPAWN' && e.payload?.kind === 'platformContext'));
  t.true(events.every((e) => e.type !== 'CLOSE' || e.payload === undefined), 'no payload for an event that carries none');
  const contexts0 = records.flatMap((r) => (r.kind === 'snapshot' && r.id === 'platformContext:1' && r.context !== undefined ? [r.context as { switches: number }] : []));
  t.true(contexts0.length > 1 && contexts0.at(-1)!.switches > 0, JSON.stringify(contexts0));
  const finals = finalStates(records);
  // Every context released, the program's stub dead, the pool closed: the run's end.
  const contexts = [...finals].filter(([id]) => id.startsWith('platformContext:'));
  t.is(contexts.length, 9);
  for (const [, v] of contexts) t.is(v, 'released');
  t.is(finals.get('pool'), 'closed');
  // Replaying it through a server gives a viewer the same records (the page rebuilds from them).
  const server = await startInspectorServer({ port: 0 });
  try {
    for (const rec of records) server.push(rec);
    const res = await fetch(new URL('/trace.jsonl', server.url));
    const served = (await res.text()).trim().split('\n').map((l) => JSON.parse(l) as InspectRecord);
    t.deepEqual(finalStates(served), finals);
  } finally {
    await server.close();
  }
});

test('connectInspector relays a platform in this process to a running inspector server', async (t) => {
  const server = await startInspectorServer({ port: 0 });
  const viewer = new WebSocket(`ws://127.0.0.1:${server.port}/events`);
  const seen: InspectRecord[] = [];
  viewer.on('message', (d) => seen.push(JSON.parse(String(d)) as InspectRecord));
  await new Promise((r) => viewer.once('open', r));
  const relay = connectInspector(`ws://127.0.0.1:${server.port}/events`);
  const platform = await createPlatform({ inspect: relay.observer, pool: false });
  try {
    const as = await platform.newAddressSpace();
    await as.release();
  } finally {
    await platform.close();
  }
  await until(() => finalStates(seen).get('pool') === 'closed', 10_000);
  t.like(seen[0], { kind: 'hello', mode: 'live' });
  t.is(seen[1].kind, 'meta');
  t.is(seen[2].kind, 'machines');
  t.true([...finalStates(seen).keys()].some((id) => /^subprocess:\d+$/.test(id)));
  relay.close();
  viewer.close();
  await server.close();
});

test('systrap inspect TRACE: serves the viewer and the trace to replay; ends on SIGINT', async (t) => {
  const trace = fileURLToPath(new URL('./fixtures/sample-trace.jsonl', import.meta.url));
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [CLI, 'inspect', '--port', '0', trace], { stdio: ['ignore', 'ignore', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const url = await inspectorUrl(child);
  const page = await (await fetch(url)).text();
  t.regex(page, /<html/i);
  // Nothing from a CDN: no script, style or image loaded from another origin.
  t.notRegex(page, /(src|href)=["']https?:/);
  const served = (await (await fetch(new URL('/trace.jsonl', url))).text()).trim();
  t.is(served, readFileSync(trace, 'utf8').trim());
  // A served recording is a replay, not a live run: the server's first word says so.
  const ws = new WebSocket(new URL('/events', url.replace('http', 'ws')));
  const hello = await new Promise<unknown>((resolve) => ws.once('message', (d) => resolve(JSON.parse(String(d)))));
  ws.close();
  t.deepEqual(hello, { kind: 'hello', mode: 'replay', source: 'sample-trace.jsonl' });
  const code = await new Promise<number | null>((resolve) => {
    child.once('exit', (c) => resolve(c));
    child.kill('SIGINT');
  });
  t.is(code, 0);
});

test('event payloads and contexts are JSON-safe and small: bigints, refs, errors, names for numbers', (t) => {
  t.deepEqual(eventPayload({ type: 'TRAPPED_SYSCALL', sysno: 39 }), { sysno: 39, syscall: 'getpid' });
  t.deepEqual(eventPayload({ type: 'TRAPPED_FAULT', signo: 11 }), { signo: 11, signal: 'SIGSEGV' });
  t.deepEqual(eventPayload({ type: 'X', errno: -2, pid: 7 }), { errno: -2, pid: 7, errnoName: 'ENOENT' });
  t.is(eventPayload({ type: 'CLOSE' }), undefined);
  const ref = { id: 'subprocess:3', send() {}, getSnapshot() {} };
  const cyclic: Record<string, unknown> = { n: 1n << 70n };
  cyclic.self = cyclic;
  t.deepEqual(jsonSafe({ rip: 0x401000n, ref, err: new Error('boom'), f: () => 0, m: new Map([[1, 'a']]), cyclic }), {
    rip: '4198400',
    ref: 'actor:subprocess:3',
    err: 'Error: boom',
    m: { 1: 'a' },
    cyclic: { n: (1n << 70n).toString(), self: '…' },
  });
  const big = contextJson({ children: Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`k${i}`, 'x'.repeat(190)])) });
  t.is((big as { truncated: string }).truncated.length, MAX_CONTEXT_CHARS + 1);
});

test('systrap run --inspect-wait: the program waits for a viewer, the page is served after its end until SIGINT', async (t) => {
  t.timeout(60_000);
  const child = spawn(process.execPath, [CLI, 'run', '--inspect-wait=0', '--', '/bin/sh', '-c', 'echo started; exit 7'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const url = await inspectorUrl(child);
  t.true(await until(() => /starts when a viewer connects/.test(err), 10_000), err);
  // Held: the records so far (fetched over HTTP, which is no viewer) are the metadata and the
  // statecharts only; no actor exists, the program has written nothing.
  const before = (await (await fetch(new URL('/trace.jsonl', url))).text()).trim().split('\n').map((l) => JSON.parse(l) as InspectRecord);
  t.deepEqual(before.map((r) => r.kind), ['meta', 'machines']);
  t.like(before[0], { kind: 'meta', program: '/bin/sh', argv: ['/bin/sh', '-c', 'echo started; exit 7'] });
  t.is(out, '');
  const ws = new WebSocket(new URL('/events', url.replace('http', 'ws')));
  const seen: Array<{ kind: string; mode?: string }> = [];
  ws.on('message', (d) => seen.push(JSON.parse(String(d)) as { kind: string }));
  await new Promise((r) => ws.once('open', r));
  // Connected: the program runs to its end, and the server stays (and says the run ended).
  t.true(await until(() => out === 'started\n', 20_000), `stdout: ${out}\nstderr: ${err}`);
  t.true(await until(() => /inspector stays at .* until Ctrl-C/.test(err), 20_000), err);
  t.true(await until(() => seen.some((m) => m.kind === 'hello' && m.mode === 'ended'), 5_000));
  t.like(seen[0], { kind: 'hello', mode: 'live' });
  t.is(finalStates(seen as InspectRecord[]).get('pool'), 'closed');
  t.is(child.exitCode, null);
  t.is((await fetch(url)).status, 200);
  t.is(ws.readyState, ws.OPEN);
  const code = await new Promise<number | null>((resolve) => {
    child.once('exit', (c) => resolve(c));
    child.kill('SIGINT');
  });
  t.is(code, 7, 'the program\'s status, not the interrupt\'s');
  ws.close();
});

test('systrap run --inspect (plain): serves while the program runs and says how to hold a short one', (t) => {
  const r = spawnSync(process.execPath, [CLI, 'run', '--inspect=0', '--', '/bin/true'], { encoding: 'utf8', timeout: 60_000 });
  t.is(r.status, 0, r.stderr);
  t.regex(r.stderr, /^systrap: inspector at http:\/\/127\.0\.0\.1:\d+\/ \(until the program ends; --inspect-wait holds it for a viewer\)$/m);
});
