// The inspector page: keeps every record received (live, over the server's WebSocket) or
// loaded (a JSONL trace), applies the first N of them to a model (model.js) and draws the
// model: actor tree, statechart of the selected actor (chart.js), event timeline. Moving N
// backwards rebuilds the model from record 0, which is cheap next to drawing it.

import { createModel, applyRecord, parseJsonl, isFinished, activeStateIds, rootActors } from './model.js';
import { renderChart, cachedLayout, shortId, chartMarks } from './chart.js';
import { formatMeta, formatPayload } from './format.js';
import { renderSequence } from './sequence.js';
import { renderDetails } from './details.js';
import { attachZoom } from './zoom.js';

/** Timeline lines kept in the DOM: older ones are dropped (the records stay). */
const TIMELINE_CAP = 3000;

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

const app = {
  /** @type {any[]} every record known, in arrival order */
  records: [],
  /** The first `model.applied` records, applied. */
  model: createModel(),
  /**
   * What `#status` says: `live` (the server's program is running), `replay` (a trace file or
   * URL, or a server replaying a recording), `ended` (the server's program is over),
   * `connecting`, `disconnected`. The server says which in its `hello` message.
   */
  mode: 'disconnected',
  /** The WebSocket to the server is open (its records are the ones shown). */
  connected: false,
  /** The lower panel's view: `events` (the timeline) or `sequence` (the diagram). */
  tab: 'events',
  /** The cursor sits at the last record and moves with new ones (live mode). */
  follow: true,
  /** @type {string | undefined} the actor the user clicked */
  selected: undefined,
  onlySelected: false,
  playing: false,
  /** @type {WebSocket | undefined} */
  ws: undefined,
  /** Reconnection attempts since the last open socket (backoff). */
  retries: 0,
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  retryTimer: undefined,
  /** Served by the inspector server (not opened from disk): `/events` and `/trace.jsonl` exist. */
  served: location.protocol === 'http:' || location.protocol === 'https:',
  source: '',
};

// ---------------------------------------------------------------------------------------------
// Records and the cursor

/**
 * Applies records up to `n`. Going back means starting over from an empty model: records only
 * ever add to it, there is nothing to undo.
 *
 * @param {number} n
 */
function setCursor(n) {
  const end = app.records.length;
  const target = Math.max(0, Math.min(end, Math.round(n)));
  if (target < app.model.applied) app.model = createModel();
  while (app.model.applied < target) applyRecord(app.model, app.records[app.model.applied]);
  app.follow = target === end;
  scheduleRender();
}

/** @param {any[]} list */
function addRecords(list) {
  app.records.push(...list);
  if (app.follow) setCursor(app.records.length);
  else scheduleRender();
}

/** Forgets everything (a new live connection re-sends all records from the first). */
function resetRecords() {
  app.records = [];
  app.model = createModel();
  app.follow = true;
  scheduleRender();
}

// ---------------------------------------------------------------------------------------------
// Sources: live WebSocket, trace file, ?trace=URL

function connect() {
  if (!app.served) return;
  clearTimeout(app.retryTimer);
  const url = new URL('events', location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  /** @type {WebSocket} */
  let ws;
  try {
    ws = new WebSocket(url);
  } catch {
    scheduleReconnect();
    return;
  }
  app.ws = ws;
  ws.addEventListener('open', () => {
    if (app.ws !== ws) return;
    // The server sends every past record first: start from scratch rather than duplicate.
    resetRecords();
    // Its `hello` says what the records are; until it comes, nothing is claimed live.
    app.mode = 'connecting';
    app.connected = true;
    app.source = url.host;
    app.retries = 0;
    showMessage('');
    scheduleRender();
  });
  ws.addEventListener('message', (ev) => {
    if (app.ws !== ws || typeof ev.data !== 'string') return;
    try {
      const r = JSON.parse(ev.data);
      if (r?.kind === 'hello') onHello(r, url.host);
      else if (r && typeof r.kind === 'string') addRecords([r]);
    } catch {
      // one malformed message must not stop the stream
    }
  });
  ws.addEventListener('close', () => {
    if (app.ws !== ws) return; // replaced on purpose (replay, reconnect)
    app.ws = undefined;
    app.connected = false;
    // A program known to be over stays "ended": its server going away is expected then.
    app.mode = app.mode === 'ended' ? 'ended' : 'disconnected';
    scheduleRender();
    scheduleReconnect();
  });
}

/**
 * The server's word on its records: `live`, `replay` (it serves a recording: the badge must
 * not say live) or `ended`.
 *
 * @param {{ mode?: string, source?: string }} hello
 * @param {string} host
 */
function onHello(hello, host) {
  app.mode = hello.mode === 'replay' || hello.mode === 'ended' ? hello.mode : 'live';
  app.source = hello.source ? `${hello.source} (served by ${host})` : host;
  scheduleRender();
}

function scheduleReconnect() {
  if (app.mode === 'replay') return;
  // Keep the last records visible meanwhile: a crashed run is exactly when one wants to look.
  const delay = Math.min(10000, 1000 * 2 ** app.retries++);
  clearTimeout(app.retryTimer);
  app.retryTimer = setTimeout(connect, delay);
}

function disconnect() {
  clearTimeout(app.retryTimer);
  const ws = app.ws;
  app.ws = undefined;
  app.connected = false;
  ws?.close();
}

/**
 * Replays a JSONL trace (from `systrap run --record FILE` or `/trace.jsonl`): the live
 * connection is closed so that the two do not mix.
 *
 * @param {string} text
 * @param {string} label
 */
function loadTrace(text, label) {
  disconnect();
  stopPlaying();
  const { records, errors } = parseJsonl(text);
  app.mode = 'replay';
  app.source = label;
  app.records = records;
  app.model = createModel();
  setCursor(records.length);
  if (!records.length) showMessage(`${label}: no records found (expected one JSON record per line).`);
  else showMessage(errors ? `${label}: ${errors} line(s) were not records and were skipped.` : '');
}

/** @param {File} file */
async function loadFile(file) {
  try {
    loadTrace(await file.text(), file.name);
  } catch (err) {
    showMessage(`could not read ${file.name}: ${/** @type {Error} */ (err).message}`);
  }
}

/** @param {string} param */
async function loadUrl(param) {
  try {
    const res = await fetch(new URL(param, location.href));
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    loadTrace(await res.text(), param);
  } catch (err) {
    showMessage(`could not load ${param}: ${/** @type {Error} */ (err).message}`);
  }
}

/** @param {string} text */
function showMessage(text) {
  const el = $('message');
  el.textContent = text;
  el.hidden = !text;
}

// ---------------------------------------------------------------------------------------------
// Replay controls

/** @type {ReturnType<typeof setInterval> | undefined} */
let playTimer;

function startPlaying() {
  if (app.model.applied >= app.records.length) setCursor(0);
  app.playing = true;
  let last = performance.now();
  let owed = 0;
  // Time-based rather than one record per tick, so the chosen speed holds even when the tab
  // is slow to render.
  playTimer = setInterval(() => {
    const now = performance.now();
    owed += ((now - last) / 1000) * Number(/** @type {HTMLSelectElement} */ ($('speed')).value);
    last = now;
    const steps = Math.floor(owed);
    owed -= steps;
    if (steps) setCursor(app.model.applied + steps);
    if (app.model.applied >= app.records.length) stopPlaying();
  }, 40);
  scheduleRender();
}

function stopPlaying() {
  clearInterval(playTimer);
  app.playing = false;
  scheduleRender();
}

/** @param {number} n */
function step(n) {
  stopPlaying();
  setCursor(app.model.applied + n);
}

// ---------------------------------------------------------------------------------------------
// Drawing. Records can arrive by hundreds per frame: changes only mark the page dirty and one
// render per frame draws the result.

let renderQueued = false;

function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  const run = () => {
    if (renderQueued) render();
  };
  requestAnimationFrame(run);
  // Background tabs get no animation frames; the timeout keeps the counters honest there.
  setTimeout(run, 250);
}

/** What is on screen, to update it in place instead of redrawing everything. */
const view = {
  /** @type {Map<string, { li: HTMLLIElement, row: HTMLButtonElement, kids: HTMLUListElement, state?: string, visited?: string }>} */
  rows: new Map(),
  chartKey: '',
  /** @type {any} */
  chartDef: undefined,
  /** @type {any} the model the timeline lines come from */
  timelineModel: undefined,
  timelineFilter: '',
  timelineCount: 0,
  hiddenLines: 0,
  /** @type {Map<any, HTMLLIElement>} timeline entry → its line */
  lines: new Map(),
  selectedShown: '',
  /** @type {any} */
  detailsModel: undefined,
  detailsKey: '',
  /** @type {any} */
  sequenceModel: undefined,
  sequenceKey: '',
  /** @type {ReturnType<typeof attachZoom> | undefined} */
  zoom: undefined,
  /** @type {any} model and record count at the last render: how far it moved since */
  lastModel: undefined,
  lastApplied: 0,
};

function render() {
  renderQueued = false;
  const shown = shownActor();
  // Flash changed rows only for small steps forward (live, play, step): after a jump or the
  // initial burst every row would flash at once, which says nothing.
  const advanced = view.lastModel === app.model ? app.model.applied - view.lastApplied : Infinity;
  view.lastModel = app.model;
  view.lastApplied = app.model.applied;
  renderHeader();
  renderTree(shown, advanced > 0 && advanced <= 20);
  renderChartPanel(shown);
  renderDetailsPanel(shown);
  if (app.tab === 'sequence') renderSequencePanel(shown);
  else renderTimeline(shown);
}

/** The details box, redrawn only when what it shows changed. @param {any} a */
function renderDetailsPanel(a) {
  const key = a ? [a.id, a.state, a.status, a.updated, app.model.timeline.length] : [];
  if (view.detailsModel === app.model && JSON.stringify(key) === view.detailsKey) return;
  view.detailsModel = app.model;
  view.detailsKey = JSON.stringify(key);
  renderDetails($('actor-details'), app.model, a);
}

/** The sequence diagram, redrawn when the records, the filter or the selection moved. @param {any} a */
function renderSequencePanel(a) {
  const box = $('sequence');
  const only = app.onlySelected ? a?.id : undefined;
  const key = JSON.stringify([app.model.applied, only, a?.id]);
  if (view.sequenceModel === app.model && view.sequenceKey === key) return;
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  view.sequenceModel = app.model;
  view.sequenceKey = key;
  renderSequence(box, app.model, { only, selected: a?.id, onSelect: select });
  // The timeline's bookkeeping, while it is not drawn (it is rebuilt when shown again).
  app.model.resolved.length = 0;
  $('timeline-more').hidden = true;
  $('filter-actor').textContent = a?.id || 'the selected actor';
  if (atBottom) box.scrollTop = box.scrollHeight;
}

/** The actor whose chart is drawn: the selected one, or the first (the pool) by default. */
function shownActor() {
  const m = app.model;
  return (app.selected && m.actors.get(app.selected)) || rootActors(m)[0];
}

function renderHeader() {
  const status = $('status');
  status.textContent = app.mode;
  status.className = `status ${app.mode}`;
  $('record-count').textContent = String(app.model.applied);
  $('source').textContent = app.source;
  $('source').title = app.source;
  $('live-button').hidden = !app.served || app.connected;
  $('download-link').hidden = !app.served || !app.connected;
  const meta = formatMeta(app.model.meta);
  $('meta').hidden = !meta.text;
  $('meta').textContent = meta.text;
  $('meta').title = meta.title;
  const slider = /** @type {HTMLInputElement} */ ($('cursor'));
  slider.max = String(app.records.length);
  slider.value = String(app.model.applied);
  $('position').textContent = `${app.model.applied} / ${app.records.length} · ${formatT(app.model.t)} ms`;
  $('play-button').textContent = app.playing ? '▮▮ pause' : '▶ play';
}

/** @param {number} t */
function formatT(t) {
  return t.toFixed(1);
}

// Actor tree -----------------------------------------------------------------------------------

/** @param {string} id */
function createRow(id) {
  const li = document.createElement('li');
  li.setAttribute('role', 'treeitem');
  const row = document.createElement('button');
  row.type = 'button';
  row.className = 'actor-row';
  row.dataset.actorId = id;
  row.innerHTML = '<span class="dot"></span><span class="id"></span><span class="machine"></span><span class="state"></span>';
  /** @type {HTMLElement} */ (row.querySelector('.id')).textContent = id;
  row.addEventListener('click', () => select(id));
  const kids = document.createElement('ul');
  kids.setAttribute('role', 'group');
  li.append(row, kids);
  return { li, row, kids };
}

/** @param {any} shown @param {boolean} flash */
function renderTree(shown, flash) {
  const m = app.model;
  const tree = $('actor-tree');
  // After a rewind, actors not spawned yet at the cursor go away; the others keep their rows
  // (and the tree its scroll position).
  for (const [id, v] of view.rows)
    if (!m.actors.has(id)) {
      v.li.remove();
      view.rows.delete(id);
    }
  for (const a of m.actors.values()) if (!view.rows.has(a.id)) view.rows.set(a.id, createRow(a.id));
  // Attached in a second pass: a child may be known before its parent (snapshot first).
  let running = 0;
  for (const a of m.actors.values()) {
    const v = /** @type {NonNullable<ReturnType<typeof view.rows.get>>} */ (view.rows.get(a.id));
    const container = (a.parent && view.rows.get(a.parent)?.kids) || tree;
    if (v.li.parentElement !== container) container.append(v.li);
    const finished = isFinished(m, a);
    if (!finished) running++;
    const visited = a.visited.join(' ');
    const row = v.row;
    if (v.state !== a.state) {
      if (flash && v.state !== undefined) {
        // Restart the flash animation: drop the class, force a style flush, add it back.
        row.classList.remove('changed');
        void row.offsetWidth;
        row.classList.add('changed');
      }
      v.state = a.state;
      row.dataset.state = a.state;
      /** @type {HTMLElement} */ (row.querySelector('.state')).textContent = a.state || '…';
    }
    if (v.visited !== visited) {
      v.visited = visited;
      row.dataset.visited = visited;
    }
    if (row.dataset.machine !== a.machine) {
      row.dataset.machine = a.machine;
      /** @type {HTMLElement} */ (row.querySelector('.machine')).textContent = a.machine;
    }
    row.dataset.status = a.status;
    row.classList.toggle('finished', finished);
    row.classList.toggle('error', a.status === 'error');
    const isShown = a === shown;
    row.classList.toggle('selected', isShown);
    v.li.setAttribute('aria-selected', String(isShown));
    row.title = `${a.id}: ${a.machine}, ${a.state || 'no state yet'} (${a.status})\nvisited: ${a.visited.join(', ')}`;
  }
  $('tree-empty').hidden = m.actors.size > 0;
  $('actor-summary').textContent = m.actors.size ? `${m.actors.size} · ${running} running` : '';
}

/** @param {string} id */
function select(id) {
  app.selected = id;
  scheduleRender();
}

// Statechart -----------------------------------------------------------------------------------

/** @param {any} a */
function renderChartPanel(a) {
  const m = app.model;
  const def = a ? m.machines.get(a.machine) : undefined;
  const key = a ? JSON.stringify([a.id, a.machine, a.state, a.prevState, a.lastEvent, a.visited.length, a.status]) : '';
  if (key === view.chartKey && def === view.chartDef) return;
  view.chartKey = key;
  view.chartDef = def;
  const svgEl = /** @type {SVGSVGElement} */ (/** @type {unknown} */ ($('chart-svg')));
  const table = $('transitions');
  $('chart-title').textContent = a ? `${a.id} · ${a.machine} · ${a.state || '…'} (${a.status})` : '';
  if (!a || !def) {
    svgEl.replaceChildren();
    svgEl.removeAttribute('width');
    svgEl.removeAttribute('height');
    table.replaceChildren();
    $('chart-empty').hidden = false;
    $('chart-empty').textContent = !a ? 'No actors yet.' : `No statechart recorded for machine “${a.machine}”.`;
    return;
  }
  $('chart-empty').hidden = true;
  const marks = { state: a.state, prevState: a.prevState, lastEvent: a.lastEvent, visited: a.visited };
  renderChart(svgEl, def, marks);
  view.zoom ??= attachZoom(svgEl);
  view.zoom.fit(def.id);
  renderTransitions(table, def, marks, isFinished(m, a));
}

/**
 * The transitions as a list too: arrows of a busy chart are hard to read, and the list says
 * which events the actor accepts right now.
 *
 * @param {HTMLElement} table
 * @param {any} def
 * @param {import('./chart.js').ChartMarks} marks
 * @param {boolean} finished
 */
function renderTransitions(table, def, marks, finished) {
  const layout = cachedLayout(def);
  const { active, taken } = chartMarks(def, marks);
  const rootId = def.states[0].id;
  const now = activeStateIds(def, marks.state).active;
  table.replaceChildren();
  for (const tr of layout.transitions) {
    const row = document.createElement('tr');
    const from = tr.source === rootId ? 'any state' : shortId(def, tr.source);
    const to = tr.targets.length ? tr.targets.map((x) => shortId(def, x)).join(' | ') : '(no change)';
    const available = !finished && (tr.source === rootId || active.has(tr.source));
    const wasTaken = tr.source !== rootId ? tr.targets.some((target) => taken({ source: tr.source, target, events: [tr.event] })) : tr.event === marks.lastEvent && marks.prevState !== marks.state && tr.targets.some((x) => now.includes(x));
    if (available) row.className = 'available';
    if (wasTaken) row.className = 'taken';
    for (const [text, cls] of [
      [from, ''],
      [tr.event, ''],
      ['→', 'arrow'],
      [to, ''],
    ]) {
      const td = document.createElement('td');
      td.textContent = text;
      if (cls) td.className = cls;
      row.append(td);
    }
    table.append(row);
  }
}

// Timeline -------------------------------------------------------------------------------------

/**
 * @param {any} e timeline entry
 * @param {string} selectedId
 */
function createLine(e, selectedId) {
  const li = document.createElement('li');
  li.dataset.target = e.target;
  if (e.source) li.dataset.source = e.source;
  if (e.seq !== undefined) li.dataset.seq = String(e.seq);
  const internal = e.type.startsWith('xstate.') || e.implicit;
  li.innerHTML = '<span class="t"></span><span class="target"></span><span class="type"></span><span class="payload"></span><span class="to"></span>';
  const [t, target, type, payload] = /** @type {HTMLElement[]} */ ([...li.children]);
  t.textContent = formatT(e.t);
  target.textContent = e.target;
  type.textContent = e.type;
  // What the event carries (a syscall, a signal, a pid): `getpid (39)`.
  payload.textContent = formatPayload(e.payload);
  if (e.payload) li.dataset.payload = JSON.stringify(e.payload);
  type.classList.toggle('internal', internal);
  li.classList.toggle('selected-actor', e.target === selectedId || e.source === selectedId);
  li.addEventListener('click', () => select(e.target));
  fillLine(li, e);
  return li;
}

/** The part of a line known only once the snapshot arrives. @param {HTMLLIElement} li @param {any} e */
function fillLine(li, e) {
  const to = /** @type {HTMLElement} */ (li.lastElementChild);
  if (e.to === undefined) {
    to.textContent = e.unresolved ? '→ (no new snapshot)' : '→ …';
    to.className = 'to same';
  } else {
    to.textContent = `→ ${e.to}${e.status && e.status !== 'active' ? ` (${e.status})` : ''}`;
    to.className = `to ${e.status === 'done' || e.status === 'stopped' ? 'done' : e.to === e.from ? 'same' : 'changed'}`;
  }
  li.title = `#${e.seq ?? '?'} at ${formatT(e.t)} ms: ${e.type} to ${e.target}${e.source ? ` from ${e.source}` : ''}; ${e.from || '(no state)'} → ${e.to ?? '?'}${e.payload ? `\n${JSON.stringify(e.payload)}` : ''}`;
}

/** @param {any} shown */
function renderTimeline(shown) {
  const m = app.model;
  const ol = $('timeline');
  const selectedId = shown?.id ?? '';
  const filter = app.onlySelected ? `only:${selectedId}` : 'all';
  /** @param {any} e */
  const matches = (e) => !app.onlySelected || e.target === selectedId || e.source === selectedId;
  // Follow the newest line unless the user scrolled up to read older ones.
  const atBottom = ol.scrollHeight - ol.scrollTop - ol.clientHeight < 40;
  const rebuild = view.timelineModel !== m || view.timelineFilter !== filter;
  if (rebuild) {
    view.timelineModel = m;
    view.timelineFilter = filter;
    view.lines.clear();
    const entries = m.timeline.filter(matches);
    view.hiddenLines = Math.max(0, entries.length - TIMELINE_CAP);
    const frag = document.createDocumentFragment();
    for (const e of entries.slice(view.hiddenLines)) {
      const li = createLine(e, selectedId);
      view.lines.set(e, li);
      frag.append(li);
    }
    ol.replaceChildren(frag);
  } else {
    for (const e of m.resolved) {
      const li = view.lines.get(e);
      if (li) fillLine(li, e);
    }
    const frag = document.createDocumentFragment();
    for (const e of m.timeline.slice(view.timelineCount))
      if (matches(e)) {
        const li = createLine(e, selectedId);
        view.lines.set(e, li);
        frag.append(li);
      }
    ol.append(frag);
    while (ol.childElementCount > TIMELINE_CAP) {
      const first = /** @type {HTMLLIElement} */ (ol.firstElementChild);
      first.remove();
      view.hiddenLines++;
    }
    if (view.lines.size > TIMELINE_CAP * 2) for (const [e, li] of view.lines) if (!li.isConnected) view.lines.delete(e);
    if (view.selectedShown !== selectedId)
      for (const li of /** @type {HTMLCollectionOf<HTMLLIElement>} */ (ol.children)) {
        li.classList.toggle('selected-actor', li.dataset.target === selectedId || li.dataset.source === selectedId);
      }
  }
  view.selectedShown = selectedId;
  view.timelineCount = m.timeline.length;
  m.resolved.length = 0;
  $('filter-actor').textContent = selectedId || 'the selected actor';
  const more = $('timeline-more');
  more.hidden = view.hiddenLines === 0;
  more.textContent = `${view.hiddenLines} older line(s) not shown`;
  if (rebuild || atBottom) ol.scrollTop = ol.scrollHeight;
}

// ---------------------------------------------------------------------------------------------
// Wiring

function wire() {
  const fileInput = /** @type {HTMLInputElement} */ ($('file-input'));
  fileInput.addEventListener('change', () => {
    const f = fileInput.files?.[0];
    if (f) loadFile(f);
    // The same file may be loaded again after it changed on disk.
    fileInput.value = '';
  });
  $('live-button').addEventListener('click', () => {
    stopPlaying();
    app.mode = 'disconnected';
    app.source = '';
    app.retries = 0;
    showMessage('');
    connect();
    scheduleRender();
  });
  $('first-button').addEventListener('click', () => step(-Infinity));
  $('back-button').addEventListener('click', () => step(-1));
  $('forward-button').addEventListener('click', () => step(1));
  $('last-button').addEventListener('click', () => step(Infinity));
  $('play-button').addEventListener('click', () => (app.playing ? stopPlaying() : startPlaying()));
  const slider = /** @type {HTMLInputElement} */ ($('cursor'));
  slider.addEventListener('input', () => {
    stopPlaying();
    setCursor(Number(slider.value));
  });
  $('zoom-in').addEventListener('click', () => view.zoom?.zoomBy(1.25));
  $('zoom-out').addEventListener('click', () => view.zoom?.zoomBy(0.8));
  $('zoom-reset').addEventListener('click', () => view.zoom?.reset());
  for (const tab of ['events', 'sequence'])
    $(`tab-${tab}`).addEventListener('click', () => {
      app.tab = tab;
      $('tab-events').setAttribute('aria-selected', String(tab === 'events'));
      $('tab-sequence').setAttribute('aria-selected', String(tab === 'sequence'));
      $('timeline').hidden = tab !== 'events';
      $('sequence').hidden = tab !== 'sequence';
      // The timeline is rebuilt when it is shown again: it was not kept up meanwhile.
      view.timelineModel = undefined;
      view.sequenceKey = '';
      scheduleRender();
    });
  const onlySelected = /** @type {HTMLInputElement} */ ($('filter-selected'));
  onlySelected.addEventListener('change', () => {
    app.onlySelected = onlySelected.checked;
    scheduleRender();
  });

  document.addEventListener('keydown', (ev) => {
    const tag = /** @type {HTMLElement} */ (ev.target).tagName;
    if (tag === 'INPUT' || tag === 'SELECT' || tag === 'TEXTAREA' || ev.altKey || ev.ctrlKey || ev.metaKey) return;
    const keys = { ArrowLeft: () => step(-1), ArrowRight: () => step(1), Home: () => step(-Infinity), End: () => step(Infinity), ' ': () => (app.playing ? stopPlaying() : startPlaying()) };
    const f = keys[/** @type {keyof typeof keys} */ (ev.key)];
    // Space on a focused button (an actor row, "play") already clicks it.
    if (f && !(tag === 'BUTTON' && ev.key === ' ')) {
      ev.preventDefault();
      f();
    }
  });

  // Drag & drop anywhere on the page. dragenter/dragleave fire for every child crossed, hence
  // the depth count.
  const overlay = $('drop-overlay');
  let depth = 0;
  /** @param {DragEvent} ev */
  const hasFiles = (ev) => [...(ev.dataTransfer?.types ?? [])].includes('Files');
  window.addEventListener('dragenter', (ev) => {
    if (!hasFiles(ev)) return;
    ev.preventDefault();
    depth++;
    overlay.hidden = false;
  });
  window.addEventListener('dragleave', () => {
    depth = Math.max(0, depth - 1);
    if (!depth) overlay.hidden = true;
  });
  window.addEventListener('dragover', (ev) => {
    if (!hasFiles(ev)) return;
    ev.preventDefault();
    if (ev.dataTransfer) ev.dataTransfer.dropEffect = 'copy';
  });
  window.addEventListener('drop', (ev) => {
    ev.preventDefault();
    depth = 0;
    overlay.hidden = true;
    const f = ev.dataTransfer?.files?.[0];
    if (f) loadFile(f);
  });
}

function start() {
  $('boot-hint').remove();
  wire();
  const trace = new URLSearchParams(location.search).get('trace');
  if (trace) {
    app.source = trace;
    loadUrl(trace);
  } else if (app.served) {
    connect();
  } else {
    showMessage('Not connected to an inspector server: open a trace (button above, or drop a file).');
  }
  scheduleRender();
}

// For tests and the console: the page's state and its entry points.
Object.assign(window, { systrapViewer: { app, setCursor, loadTrace } });

start();
