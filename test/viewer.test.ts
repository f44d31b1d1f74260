import test from 'ava';
import { mkdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createActor } from 'xstate';
import { platformContextMachine } from '../src/machines/platformContext.js';
import { InspectionRecorder } from '../src/inspect/record.js';
import { systrapVersion } from '../src/cliUsage.js';
import { formatMeta, formatPayload } from '../viewer/format.js';
import { sequenceOf, RUNTIME } from '../viewer/sequence.js';
import { startInspectorServer, type InspectorServer } from '../src/inspect/server.js';
import type { InspectRecord, MachineDef } from '../src/inspect/record.js';
import { activeStateIds, buildModel, createModel, applyRecord, isFinished, parseJsonl } from '../viewer/model.js';
import { layoutMachine } from '../viewer/chart.js';
import { requireTool } from './helpers.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/sample-trace.jsonl', import.meta.url));
const ARTIFACTS = fileURLToPath(new URL('./artifacts/', import.meta.url));
const TEXT = readFileSync(FIXTURE, 'utf8');
const RECORDS = parseJsonl(TEXT).records as InspectRecord[];

/** Each actor's last snapshot value and status, straight from the records (no model). */
function lastSnapshots(records: InspectRecord[]): Map<string, { value: string; status: string }> {
  const out = new Map<string, { value: string; status: string }>();
  for (const r of records) if (r.kind === 'snapshot') out.set(r.id, { value: r.value, status: r.status });
  return out;
}

// ---------------------------------------------------------------------------------------------
// The model (viewer/model.js), in Node

test('model: the sample trace rebuilds every actor final state', (t) => {
  t.is(parseJsonl(TEXT).errors, 0);
  t.is(RECORDS.length, TEXT.trim().split('\n').length);
  const m = buildModel(RECORDS);
  t.is(m.applied, RECORDS.length);
  t.is(m.skipped, 0);
  t.deepEqual([...m.machines.keys()].sort(), ['platformContext', 'pool', 'subprocess', 'syscallThread', 'sysmsgThread']);

  const last = lastSnapshots(RECORDS);
  t.is(m.actors.size, 16);
  for (const a of m.actors.values()) {
    t.is(a.state, last.get(a.id)?.value, a.id);
    t.is(a.status, last.get(a.id)?.status, a.id);
    t.true(isFinished(m, a), `${a.id} is over at the end of the run`);
  }
  const contexts = [...m.actors.values()].filter((a) => a.id.startsWith('platformContext:'));
  t.is(contexts.length, 9);
  for (const c of contexts) {
    t.is(c.machine, 'platformContext');
    t.is(c.state, 'released');
    t.is(c.parent, 'pool');
    t.deepEqual(c.visited, ['idle', 'queued', 'running', 'syscall', 'released']);
  }
  const source = m.actors.get('subprocess:source');
  t.is(source?.state, 'dead');
  t.deepEqual(source?.visited, ['creating.forking', 'creating.initializing', 'ready', 'dead']);
  t.is(m.actors.get('pool')?.state, 'closed');
  t.is(m.actors.get('pool')?.parent, undefined);
  t.deepEqual(m.actors.get('pool')?.children.length, 15);
  t.is(m.actors.get('sysmsgThread:1/2')?.machine, 'sysmsgThread');

  // Every event got the state its snapshot reported.
  t.is(m.timeline.length, RECORDS.filter((r) => r.kind === 'event').length);
  t.true(m.timeline.every((e: { to?: string }) => typeof e.to === 'string'));
  const released = m.timeline.find((e: { target: string; type: string }) => e.target === 'platformContext:0' && e.type === 'RELEASE');
  t.like(released, { from: 'running', to: 'released', status: 'done' });
});

test('model: the first N records give the runtime as of record N', (t) => {
  for (const n of [0, 1, 7, 50, 100, 200, 300]) {
    const m = buildModel(RECORDS, n);
    t.is(m.applied, n);
    const last = lastSnapshots(RECORDS.slice(0, n));
    const spawned = RECORDS.slice(0, n).filter((r) => r.kind === 'actor').length;
    t.is(m.actors.size, spawned, `actors at ${n}`);
    for (const [id, s] of last) t.is(m.actors.get(id)?.state, s.value, `${id} at ${n}`);
  }
  // Incremental application and a rebuild agree.
  const inc = createModel();
  for (const r of RECORDS.slice(0, 150)) applyRecord(inc, r);
  t.deepEqual([...inc.actors.values()].map((a) => [a.id, a.state, a.visited.join(' ')]), [...buildModel(RECORDS, 150).actors.values()].map((a) => [a.id, a.state, a.visited.join(' ')]));
});

test('model: dotted values name nested states; odd input is tolerated', (t) => {
  const machines = RECORDS[0].kind === 'machines' ? RECORDS[0].machines : [];
  const sub = machines.find((d) => d.id === 'subprocess') as MachineDef;
  t.deepEqual(activeStateIds(sub, 'creating.forking'), { active: ['subprocess.creating', 'subprocess.creating.forking'], leaves: ['subprocess.creating.forking'] });
  t.deepEqual(activeStateIds(sub, 'nosuch'), { active: [], leaves: [] });

  const { records, errors } = parseJsonl('not json\n\n{"kind":"actor","seq":0,"t":1,"id":"x:1"}\n{"no":"kind"}\n{"kind":"snapsh');
  t.is(errors, 3);
  t.is(records.length, 1);

  // A snapshot before its actor record, an actor whose parent was never announced, an event
  // nobody answered, and an id spawned again after it finished.
  const m = buildModel([
    RECORDS[0],
    { kind: 'snapshot', seq: 0, t: 1, id: 'platformContext:9', value: 'idle', status: 'active', event: 'xstate.init' },
    { kind: 'actor', seq: 1, t: 2, id: 'platformContext:9', parent: 'elsewhere', machine: 'platformContext' },
    { kind: 'event', seq: 2, t: 3, target: 'platformContext:9', type: 'IGNORED' },
    { kind: 'event', seq: 3, t: 4, target: 'platformContext:9', type: 'RELEASE' },
    { kind: 'snapshot', seq: 4, t: 5, id: 'platformContext:9', value: 'released', status: 'done', event: 'RELEASE' },
    { kind: 'actor', seq: 5, t: 6, id: 'platformContext:9', parent: 'elsewhere', machine: 'platformContext' },
    { kind: 'bogus' },
  ]);
  t.is(m.skipped, 1);
  t.deepEqual(m.actors.get('elsewhere')?.children, ['platformContext:9']);
  const pc = m.actors.get('platformContext:9');
  t.like(pc, { state: '', status: 'active', visited: [] });
  t.like(m.timeline[0], { type: 'xstate.init', to: 'idle', implicit: true });
  t.like(m.timeline[1], { type: 'IGNORED', unresolved: true });
  t.like(m.timeline[2], { type: 'RELEASE', from: 'idle', to: 'released' });
});

test('chart layout: boxes nest and do not overlap, every targeted transition is drawn', (t) => {
  const machines = RECORDS[0].kind === 'machines' ? RECORDS[0].machines : [];
  t.is(machines.length, 5);
  type Rect = { x: number; y: number; w: number; h: number };
  const inside = (a: Rect, b: Rect) => a.x >= b.x && a.y >= b.y && a.x + a.w <= b.x + b.w && a.y + a.h <= b.y + b.h;
  const apart = (a: Rect, b: Rect) => a.x + a.w <= b.x || b.x + b.w <= a.x || a.y + a.h <= b.y || b.y + b.h <= a.y;
  for (const def of machines) {
    const layout = layoutMachine(def);
    for (const s of def.states) {
      const r = layout.rects.get(s.id) as Rect;
      t.truthy(r, s.id);
      for (const c of s.children) t.true(inside(layout.rects.get(c) as Rect, r), `${c} inside ${s.id}`);
      for (const a of s.children) for (const b of s.children) if (a < b) t.true(apart(layout.rects.get(a) as Rect, layout.rects.get(b) as Rect), `${a} / ${b}`);
    }
    for (const s of def.states.slice(1))
      for (const [event, targets] of Object.entries(s.on))
        for (const target of targets) {
          const e = layout.edges.find((x: { source: string; target: string }) => x.source === s.id && x.target === target);
          t.truthy(e?.events.includes(event), `${s.id} ${event} → ${target}`);
          t.regex(e?.d ?? '', /^M [\d.-]+ [\d.-]+ /);
          t.false(/NaN/.test(e?.d ?? ''), `${s.id} → ${target}: ${e?.d}`);
        }
  }
});

// ---------------------------------------------------------------------------------------------
// The page, in Chromium, against the real server

let shared: Promise<{ browser: Browser; server: InspectorServer }> | undefined;
const extraServers: InspectorServer[] = [];

/** One browser and one server with the sample trace, for all the browser tests. */
function env() {
  shared ??= (async () => {
    const executablePath = requireTool('chromium', 'chromium');
    mkdirSync(ARTIFACTS, { recursive: true });
    const server = await startInspectorServer({ port: 0 });
    for (const r of RECORDS) server.push(r);
    const browser = await chromium.launch({ executablePath, headless: true, timeout: 30_000, args: ['--no-sandbox', '--disable-background-networking'] });
    return { browser, server };
  })();
  return shared;
}

test.after.always(async () => {
  const e = await shared?.catch(() => undefined);
  await e?.browser.close();
  await e?.server.close();
  for (const s of extraServers) await s.close();
});

/** A page that records its errors and any request leaving the server's origin. */
async function openPage(browser: Browser, server: InspectorServer, path = '', init?: () => void) {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  if (init) await page.addInitScript(init);
  page.setDefaultTimeout(15_000);
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
  });
  page.on('request', (req) => {
    const u = new URL(req.url());
    if (u.protocol !== 'data:' && u.host !== new URL(server.url).host) problems.push(`request outside the server: ${req.url()}`);
  });
  await page.goto(server.url + path);
  return { page, problems };
}

async function waitFor(page: Page, status: string, count: number) {
  await page.waitForFunction(
    ([s, n]) => document.querySelector('#status')?.textContent === s && document.querySelector('#record-count')?.textContent === String(n),
    [status, count] as const,
  );
}

type Row = { id: string; machine: string; state: string; visited: string; finished: boolean; parent: string | null };

function rows(page: Page): Promise<Row[]> {
  return page.$$eval('[data-actor-id]', (els) =>
    els.map((el) => ({
      id: el.getAttribute('data-actor-id') ?? '',
      machine: el.getAttribute('data-machine') ?? '',
      state: el.getAttribute('data-state') ?? '',
      visited: el.getAttribute('data-visited') ?? '',
      finished: el.classList.contains('finished'),
      // The row of the tree item this row's item is nested in.
      parent: el.parentElement?.parentElement?.closest('li')?.querySelector(':scope > [data-actor-id]')?.getAttribute('data-actor-id') ?? null,
    })),
  );
}

/** What the rows must say after the first `n` records, from the model. */
function expectedRows(n = RECORDS.length) {
  const m = buildModel(RECORDS, n);
  return [...m.actors.values()].map((a) => ({ id: a.id, machine: a.machine, state: a.state, visited: a.visited.join(' '), finished: isFinished(m, a), parent: a.parent ?? null })).sort((a, b) => a.id.localeCompare(b.id));
}

const byId = (list: Row[]) => [...list].sort((a, b) => a.id.localeCompare(b.id));

test('browser, live: actor tree with its DOM hooks, statechart, timeline', async (t) => {
  t.timeout(60_000);
  const { browser, server } = await env();
  const { page, problems } = await openPage(browser, server);
  try {
    await waitFor(page, 'live', RECORDS.length);
    const live = byId(await rows(page));
    t.deepEqual(live, expectedRows());
    t.true(live.some((r) => r.id.startsWith('subprocess:') && r.visited.split(' ').includes('ready')));
    t.true(live.some((r) => r.id.startsWith('platformContext:') && r.visited.split(' ').includes('syscall')));
    t.true(live.filter((r) => r.id !== 'pool').every((r) => r.parent === 'pool'));
    await page.screenshot({ path: `${ARTIFACTS}viewer-live.png` });

    // The chart of a platform context: current state released, syscall passed through.
    await page.click('[data-actor-id="platformContext:0"]');
    await page.waitForSelector('#chart-svg [data-state-id="platformContext.released"][data-current="true"]');
    t.deepEqual(await page.$$eval('#chart-svg [data-current="true"]', (els) => els.map((e) => e.getAttribute('data-state-id'))), ['platformContext.released']);
    t.deepEqual(
      await page.$$eval('#chart-svg [data-visited="true"]', (els) => els.map((e) => e.getAttribute('data-state-id')).sort()),
      ['platformContext.idle', 'platformContext.queued', 'platformContext.released', 'platformContext.running', 'platformContext.syscall'],
    );
    t.true((await page.$$('#chart-svg path.edge')).length >= 9);
    await (await page.$('.chart-panel'))?.screenshot({ path: `${ARTIFACTS}viewer-chart-platformContext.png` });

    // Timeline: every event, newest last; filtered to the selected actor on demand.
    const events = RECORDS.filter((r) => r.kind === 'event');
    t.is(await page.locator('#timeline li').count(), events.length);
    t.regex((await page.locator('#timeline li').last().textContent()) ?? '', /pool\s*CLOSED\s*→ closed/);
    await page.check('#filter-selected');
    const mine = events.filter((r) => r.kind === 'event' && (r.target === 'platformContext:0' || r.source === 'platformContext:0'));
    await page.waitForFunction((n) => document.querySelectorAll('#timeline li').length === n, mine.length);
    // Its own events and those it sent (its done event to the pool comes last).
    const lines = await page.locator('#timeline li').allTextContents();
    t.regex(lines.at(-2) ?? '', /platformContext:0\s*RELEASE\s*→ released \(done\)/);
    t.regex(lines.at(-1) ?? '', /pool\s*xstate\.done\.actor\.platformContext:0/);

    // A nested state: subprocess:1 as of record 30 is in creating.forking.
    await page.$eval('#cursor', (el) => {
      (el as HTMLInputElement).value = '30';
      el.dispatchEvent(new Event('input'));
    });
    await page.click('[data-actor-id="subprocess:1"]');
    await page.waitForSelector('#chart-svg [data-state-id="subprocess.creating.forking"][data-current="true"]');
    t.is(await page.getAttribute('#chart-svg [data-state-id="subprocess.creating"]', 'class'), 'state compound active visited');
    await (await page.$('.chart-panel'))?.screenshot({ path: `${ARTIFACTS}viewer-chart-subprocess-forking.png` });
    t.deepEqual(problems, []);
  } finally {
    await page.close();
  }
});

test('browser, replay: the trace through the file input gives the same final states as live', async (t) => {
  t.timeout(60_000);
  const { browser, server } = await env();
  const live = await openPage(browser, server);
  const replay = await openPage(browser, server);
  try {
    await waitFor(live.page, 'live', RECORDS.length);
    await replay.page.setInputFiles('#file-input', FIXTURE);
    await waitFor(replay.page, 'replay', RECORDS.length);
    const a = byId(await rows(live.page));
    const b = byId(await rows(replay.page));
    t.is(b.length, 16);
    t.deepEqual(b.map((r) => [r.id, r.state]), a.map((r) => [r.id, r.state]));
    t.deepEqual(b, a);
    await replay.page.screenshot({ path: `${ARTIFACTS}viewer-replay.png` });

    // Back to record 100: the tree as of then (some actors not spawned yet, none finished).
    await replay.page.$eval('#cursor', (el) => {
      (el as HTMLInputElement).value = '100';
      el.dispatchEvent(new Event('input'));
    });
    await waitFor(replay.page, 'replay', 100);
    t.deepEqual(byId(await rows(replay.page)), expectedRows(100));
    t.true((await rows(replay.page)).every((r) => !r.finished));
    await replay.page.screenshot({ path: `${ARTIFACTS}viewer-replay-record-100.png` });

    // Step buttons, then play to the end.
    await replay.page.click('#first-button');
    await waitFor(replay.page, 'replay', 0);
    t.is(await replay.page.locator('[data-actor-id]').count(), 0);
    await replay.page.click('#forward-button');
    await replay.page.click('#forward-button');
    await waitFor(replay.page, 'replay', 2);
    t.deepEqual(byId(await rows(replay.page)), expectedRows(2));
    await replay.page.selectOption('#speed', '1000');
    await replay.page.click('#play-button');
    await waitFor(replay.page, 'replay', RECORDS.length);
    t.deepEqual(byId(await rows(replay.page)), a);
    t.deepEqual([...live.problems, ...replay.problems], []);
  } finally {
    await live.page.close();
    await replay.page.close();
  }
});

test('browser, replay: ?trace=URL and a dropped file', async (t) => {
  t.timeout(60_000);
  const { browser, server } = await env();
  const { page, problems } = await openPage(browser, server, '?trace=trace.jsonl');
  try {
    await waitFor(page, 'replay', RECORDS.length);
    t.deepEqual(byId(await rows(page)), expectedRows());

    // Drop the first 60 records as a file: the page replays that instead.
    const part = TEXT.split('\n').slice(0, 60).join('\n');
    await page.evaluate((text) => {
      const dt = new DataTransfer();
      dt.items.add(new File([text], 'part.jsonl'));
      window.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, part);
    await waitFor(page, 'replay', 60);
    t.deepEqual(byId(await rows(page)), expectedRows(60));
    t.is(await page.textContent('#source'), 'part.jsonl');
    t.deepEqual(problems, []);
  } finally {
    await page.close();
  }
});

test('browser, live: records pushed later are appended; a closed server shows disconnected', async (t) => {
  t.timeout(60_000);
  const { browser } = await env();
  const server = await startInspectorServer({ port: 0 });
  extraServers.push(server);
  for (const r of RECORDS.slice(0, 120)) server.push(r);
  const { page, problems } = await openPage(browser, server);
  try {
    await waitFor(page, 'live', 120);
    t.deepEqual(byId(await rows(page)), expectedRows(120));
    for (const r of RECORDS.slice(120)) server.push(r);
    await waitFor(page, 'live', RECORDS.length);
    t.deepEqual(byId(await rows(page)), expectedRows());
    await server.close();
    await page.waitForFunction(() => document.querySelector('#status')?.textContent === 'disconnected');
    // The records stay on screen.
    t.is(await page.textContent('#record-count'), String(RECORDS.length));
    t.deepEqual(problems.filter((p) => !/WebSocket|ERR_CONNECTION_REFUSED/.test(p)), []);
  } finally {
    await page.close();
  }
});

// ---------------------------------------------------------------------------------------------
// Payloads, contexts, metadata, the sequence view, zoom and pan, the badge

/**
 * Records of the real recorder for a platform context (the machine alone, no ptrace): it
 * trapped getpid, switched again, and faulted with SIGSEGV.
 */
function recordedRun(): InspectRecord[] {
  const records: InspectRecord[] = [];
  const rec = new InspectionRecorder((r) => records.push(r), { program: 'demo', argv: ['demo', 'a b'] });
  const a = createActor(platformContextMachine, { id: 'platformContext:7', inspect: rec.observer }).start();
  for (const e of [{ type: 'SWITCH' }, { type: 'RUNNING' }, { type: 'TRAPPED_SYSCALL', sysno: 39 }, { type: 'SWITCH' }, { type: 'RUNNING' }, { type: 'TRAPPED_FAULT', signo: 11 }] as const) a.send(e);
  a.stop();
  return records;
}
const RUN = recordedRun();
/** Records up to (and with) the snapshot that entered `syscall`. */
const AT_SYSCALL = RUN.findIndex((r) => r.kind === 'snapshot' && r.value === 'syscall') + 1;

test('model: metadata, event payloads and contexts, as of any record', (t) => {
  t.like(RUN[0], { kind: 'meta', program: 'demo', version: systrapVersion() });
  const m = buildModel(RUN);
  t.is(m.skipped, 0);
  t.is(m.meta?.program, 'demo');
  const trap = m.timeline.find((e: { type: string }) => e.type === 'TRAPPED_SYSCALL');
  t.deepEqual(trap?.payload, { sysno: 39, syscall: 'getpid' });
  t.is(formatPayload(trap?.payload), 'getpid (39)');
  t.is(formatPayload(m.timeline.find((e: { type: string }) => e.type === 'TRAPPED_FAULT')?.payload), 'SIGSEGV (11)');
  t.is(formatPayload({ errno: -2, errnoName: 'ENOENT', pid: 4 }), 'ENOENT (-2) pid=4');
  t.deepEqual(m.actors.get('platformContext:7')?.context, { switches: 2 });
  t.deepEqual(buildModel(RUN, AT_SYSCALL).actors.get('platformContext:7')?.context, { switches: 1 });
  t.regex(formatMeta(RUN[0]).text, new RegExp(`^demo 'a b' · systrap ${systrapVersion()} · Linux \\S+ · Node v`));
});

test('sequence: lifelines in order of appearance, runtime first, newest events up to a limit', (t) => {
  const m = buildModel(RECORDS);
  const all = sequenceOf(m);
  t.is(all.lifelines[0], RUNTIME);
  t.is(all.lifelines[1], 'pool');
  t.is(all.rows.length, RECORDS.filter((r) => r.kind === 'event').length);
  t.truthy(all.rows.find((e: { source?: string; target: string; type: string }) => e.source === 'pool' && e.target === 'subprocess:1' && e.type === 'xstate.init'));
  const mine = sequenceOf(m, { only: 'platformContext:0' });
  t.true(mine.rows.length > 2 && mine.rows.every((e: { source?: string; target: string }) => e.target === 'platformContext:0' || e.source === 'platformContext:0'));
  const last = sequenceOf(m, { limit: 10 });
  t.is(last.rows.length, 10);
  t.is(last.hidden, all.rows.length - 10);
  t.is(last.rows.at(-1), all.rows.at(-1));
});

test('browser: payloads in the timeline, the snapshot and context, the metadata header, the sequence view', async (t) => {
  t.timeout(60_000);
  const { browser } = await env();
  const server = await startInspectorServer({ port: 0 });
  extraServers.push(server);
  for (const r of RUN) server.push(r);
  const { page, problems } = await openPage(browser, server);
  try {
    await waitFor(page, 'live', RUN.length);
    t.regex((await page.textContent('#meta')) ?? '', new RegExp(`^demo 'a b' · systrap ${systrapVersion()}`));
    t.is(await page.textContent('#timeline li:has(.type:text-is("TRAPPED_SYSCALL")) .payload'), 'getpid (39)');
    t.is(await page.textContent('#timeline li:has(.type:text-is("TRAPPED_FAULT")) .payload'), 'SIGSEGV (11)');
    await page.click('[data-actor-id="platformContext:7"]');
    await page.waitForSelector('#actor-details [data-field="state"]:text-is("fault")');
    t.regex((await page.textContent('#actor-details [data-field="event"]')) ?? '', /^TRAPPED_FAULT SIGSEGV \(11\)/);
    t.deepEqual(JSON.parse((await page.textContent('#actor-context')) ?? ''), { switches: 2 });
    // As of the trap: the snapshot of then.
    await page.evaluate((n) => (window as unknown as { systrapViewer: { setCursor(n: number): void } }).systrapViewer.setCursor(n), AT_SYSCALL);
    await page.waitForSelector('#actor-details [data-field="state"]:text-is("syscall")');
    t.deepEqual(JSON.parse((await page.textContent('#actor-context')) ?? ''), { switches: 1 });

    await page.click('#tab-sequence');
    await page.waitForSelector('#sequence g.msg[data-type="TRAPPED_SYSCALL"]');
    t.deepEqual(await page.$$eval('#sequence [data-lifeline]', (els) => els.map((e) => e.getAttribute('data-lifeline'))), [RUNTIME, 'platformContext:7']);
    t.is(await page.getAttribute('#sequence g.msg[data-type="TRAPPED_SYSCALL"]', 'data-source'), RUNTIME);
    t.regex((await page.textContent('#sequence g.msg[data-type="TRAPPED_SYSCALL"] text.label')) ?? '', /TRAPPED_SYSCALL getpid \(39\)/);
    t.true(await page.isHidden('#timeline'));
    await page.screenshot({ path: `${ARTIFACTS}viewer-sequence-details.png` });

    // The run is over: the server says so, and its going away does not make it "disconnected".
    server.setMode('ended');
    await page.waitForSelector('#status:text-is("ended")');
    await server.close();
    await page.waitForFunction(() => document.querySelector('#live-button:not([hidden])'));
    t.is(await page.textContent('#status'), 'ended');
    t.deepEqual(problems.filter((p) => !/WebSocket|ERR_CONNECTION_REFUSED/.test(p)), []);
  } finally {
    await page.close();
  }
});

test('browser: pages of the sample run: actor-to-actor arrows; the chart fits, zooms and pans; labels on plates', async (t) => {
  t.timeout(60_000);
  const { browser, server } = await env();
  const { page, problems } = await openPage(browser, server);
  try {
    await waitFor(page, 'live', RECORDS.length);
    await page.click('#tab-sequence');
    await page.waitForSelector('#sequence g.msg[data-source="pool"][data-target="subprocess:1"][data-type="xstate.init"]');

    await page.click('[data-actor-id="subprocess:1"]');
    await page.waitForSelector('#chart-svg [data-state-id="subprocess.dead"][data-current="true"]');
    const transform = () => page.getAttribute('#chart-svg g.viewport', 'transform');
    t.is(await transform(), 'translate(0 0) scale(1)');
    // Fitted: the drawing is inside the panel.
    const fits = await page.evaluate(() => {
      const box = document.querySelector('#chart')!.getBoundingClientRect();
      const r = document.querySelector('#chart-svg g.viewport')!.getBoundingClientRect();
      return r.left >= box.left - 1 && r.right <= box.right + 1 && r.top >= box.top - 1 && r.bottom <= box.bottom + 1 && r.width > box.width / 3;
    });
    t.true(fits);
    // Every edge label sits on its plate.
    t.is(await page.locator('#chart-svg g.label > rect.label-bg').count(), await page.locator('#chart-svg g.label > text').count());
    t.true((await page.locator('#chart-svg g.label > rect.label-bg').count()) >= 8);

    const svg = (await page.locator('#chart-svg').boundingBox())!;
    const cx = svg.x + svg.width / 2;
    const cy = svg.y + svg.height / 2;
    await page.mouse.move(cx, cy);
    await page.mouse.wheel(0, -400);
    await page.waitForFunction(() => !/scale\(1\)$/.test(document.querySelector('#chart-svg g.viewport')!.getAttribute('transform')!));
    const zoomed = (await transform())!;
    t.true(Number(/scale\(([\d.]+)\)/.exec(zoomed)![1]) > 1.2, zoomed);
    await page.mouse.down();
    await page.mouse.move(cx + 120, cy + 60, { steps: 4 });
    await page.mouse.up();
    const panned = (await transform())!;
    t.not(panned, zoomed);
    t.is(/scale\(([\d.]+)\)/.exec(panned)![1], /scale\(([\d.]+)\)/.exec(zoomed)![1], 'a drag pans, it does not zoom');
    await page.screenshot({ path: `${ARTIFACTS}viewer-chart-zoomed.png` });
    // A redraw (another state, another actor of the machine) keeps the zoom; Reset brings the
    // whole chart back.
    await page.click('[data-actor-id="subprocess:source"]');
    await page.waitForSelector('#chart-title:has-text("subprocess:source")');
    t.is(await transform(), panned);
    await page.click('#zoom-reset');
    t.is(await transform(), 'translate(0 0) scale(1)');
    await page.click('#zoom-in');
    t.regex((await transform())!, /scale\(1\.25\)$/);
    t.deepEqual(problems, []);
  } finally {
    await page.close();
  }
});

test('browser: a served recording shows REPLAY, never LIVE', async (t) => {
  t.timeout(60_000);
  const { browser } = await env();
  const server = await startInspectorServer({ port: 0, mode: 'replay', source: 'sample-trace.jsonl' });
  extraServers.push(server);
  for (const r of RECORDS) server.push(r);
  // Every text the badge ever shows, from the first paint on.
  const { page, problems } = await openPage(browser, server, '', () => {
    const seen: string[] = [];
    (window as unknown as { badges: string[] }).badges = seen;
    document.addEventListener('DOMContentLoaded', () => {
      const s = document.getElementById('status')!;
      seen.push(s.textContent ?? '');
      new MutationObserver(() => seen.push(`${s.textContent} ${s.className}`)).observe(s, { childList: true, characterData: true, subtree: true, attributes: true });
    });
  });
  try {
    await waitFor(page, 'replay', RECORDS.length);
    t.is(await page.getAttribute('#status', 'class'), 'status replay');
    t.regex((await page.textContent('#source')) ?? '', /^sample-trace\.jsonl/);
    const badges = await page.evaluate(() => (window as unknown as { badges: string[] }).badges);
    t.false(badges.some((b) => /live/.test(b)), badges.join(' | '));
    t.deepEqual(problems, []);
  } finally {
    await page.close();
  }
});
