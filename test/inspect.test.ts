/**
 * Inspection of the whole system: one observer sees every actor (pool, subprocesses, syscall
 * threads, sysmsg threads, contexts) in order; @statelyai/inspect's WebSocket inspector works
 * with createPlatform({ inspect }); the JSONL recording replays to the same final states; the
 * relay (`connectInspector`) feeds a running inspector server.
 */
import test from 'ava';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { createPlatform, InspectionRecorder, connectInspector, startInspectorServer, type InspectRecord } from '../src/index.js';
import { runProgram } from '../src/sentry/run.js';
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
  t.is(records[0].kind, 'machines');
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
  t.is(seen[0].kind, 'machines');
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
  const code = await new Promise<number | null>((resolve) => {
    child.once('exit', (c) => resolve(c));
    child.kill('SIGINT');
  });
  t.is(code, 0);
});
