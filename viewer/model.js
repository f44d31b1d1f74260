// The viewer's model: the state of every actor rebuilt from inspector records
// (src/inspect/record.ts). Pure data, no DOM, so that the page and a Node unit test share it:
// replaying records 0..N into a fresh model gives the runtime as of record N.

/**
 * @typedef {{ id: string, key: string, type: string, children: string[], on: Record<string, string[]> }} StateDef
 * @typedef {{ id: string, states: StateDef[] }} MachineDef
 * @typedef {{
 *   id: string, parent?: string, machine: string, state: string, status: string,
 *   visited: string[], prevState: string, lastEvent?: string, children: string[],
 *   since: number, updated: number, context?: unknown,
 * }} Actor
 * @typedef {{
 *   i: number, seq?: number, t: number, target: string, source?: string, type: string,
 *   from: string, to?: string, status?: string, implicit?: boolean, unresolved?: boolean,
 *   payload?: Record<string, unknown>,
 * }} TimelineEntry
 */

/** An empty model (no machines, no actors). */
export function createModel() {
  return {
    /** @type {Map<string, MachineDef>} machine id → statechart */
    machines: new Map(),
    /** @type {Map<string, Actor>} in order of appearance (the tree keeps that order) */
    actors: new Map(),
    /** @type {TimelineEntry[]} events and state changes, oldest first */
    timeline: [],
    /**
     * Timeline entries that got their new state since the view last looked: an event record
     * comes before the snapshot it causes, so a line already drawn may need its "→ state".
     * @type {TimelineEntry[]}
     */
    resolved: [],
    /** @type {Map<string, TimelineEntry[]>} per actor, events still waiting for their snapshot */
    pending: new Map(),
    /** Records applied so far. */
    applied: 0,
    /** Records that were not understood (unknown kind, missing fields). */
    skipped: 0,
    /** `t` of the last record applied (ms since the recording started). */
    t: 0,
    /** The recording's metadata record (program, versions, date), if it had one. */
    meta: undefined,
  };
}

/**
 * Splits a JSONL text into records. Blank lines are ignored and lines that are not JSON are
 * counted rather than fatal: a trace cut short by a crash still loads up to its last line.
 *
 * @param {string} text
 * @returns {{ records: object[], errors: number }}
 */
export function parseJsonl(text) {
  const records = [];
  let errors = 0;
  for (const line of text.split('\n')) {
    const s = line.trim();
    if (!s) continue;
    try {
      const r = JSON.parse(s);
      if (r && typeof r === 'object' && typeof r.kind === 'string') records.push(r);
      else errors++;
    } catch {
      errors++;
    }
  }
  return { records, errors };
}

/**
 * The machine an actor runs when no `actor` record said so (a snapshot seen first, or a parent
 * only known by name): the runtime names actors `<machine>:<n>`.
 *
 * @param {string} id
 */
export function guessMachine(id) {
  const i = id.indexOf(':');
  return i > 0 ? id.slice(0, i) : id;
}

/**
 * @param {ReturnType<typeof createModel>} model
 * @param {string} id
 * @param {number} t
 * @returns {Actor}
 */
function ensureActor(model, id, t) {
  let a = model.actors.get(id);
  if (!a) {
    a = { id, machine: guessMachine(id), state: '', status: 'active', visited: [], prevState: '', children: [], since: t, updated: model.applied };
    model.actors.set(id, a);
  }
  return a;
}

/** @param {ReturnType<typeof createModel>} model @param {Actor} a @param {string | undefined} parent @param {number} t */
function setParent(model, a, parent, t) {
  if (a.parent === parent) return;
  if (a.parent) {
    const old = model.actors.get(a.parent);
    if (old) old.children = old.children.filter((c) => c !== a.id);
  }
  a.parent = parent;
  if (parent) {
    // A parent never announced (records relayed from the middle of a run) still gets a row,
    // so that its children are not orphaned at the root.
    const p = ensureActor(model, parent, t);
    if (!p.children.includes(a.id)) p.children.push(a.id);
  }
}

/**
 * The parts of a state value, one per parallel region: `stateString` (record.ts) joins the
 * regions with `, `, and `data-visited` is space-separated, so regions are kept apart.
 *
 * @param {string} value
 */
export function valueParts(value) {
  return value ? value.split(', ').filter(Boolean) : [];
}

/**
 * Applies one record to the model (mutating it).
 *
 * @param {ReturnType<typeof createModel>} model
 * @param {any} r
 */
export function applyRecord(model, r) {
  const i = model.applied++;
  if (typeof r?.t === 'number') model.t = r.t;
  const t = typeof r?.t === 'number' ? r.t : model.t;
  switch (r?.kind) {
    case 'meta':
      model.meta = r;
      return;
    case 'machines':
      // Several processes may relay into one server, each announcing its machines: merge.
      for (const m of r.machines ?? []) if (m && typeof m.id === 'string') model.machines.set(m.id, m);
      return;
    case 'actor': {
      if (typeof r.id !== 'string') break;
      const known = model.actors.get(r.id);
      const a = ensureActor(model, r.id, t);
      if (known && isFinished(model, known)) {
        // The same id spawned again (a pooled object re-created): a new actor, a new history.
        a.state = '';
        a.prevState = '';
        a.status = 'active';
        a.visited = [];
        a.lastEvent = undefined;
        a.context = undefined;
        a.since = t;
      }
      if (typeof r.machine === 'string') a.machine = r.machine;
      setParent(model, a, typeof r.parent === 'string' ? r.parent : undefined, t);
      a.updated = i;
      return;
    }
    case 'snapshot': {
      if (typeof r.id !== 'string') break;
      const a = ensureActor(model, r.id, t);
      const value = typeof r.value === 'string' ? r.value : '';
      a.prevState = a.state;
      a.state = value;
      a.status = typeof r.status === 'string' ? r.status : 'active';
      a.lastEvent = r.event;
      // The recorder sends a context only when it changed: no field means "as before".
      if ('context' in r) a.context = r.context;
      for (const part of valueParts(value)) if (!a.visited.includes(part)) a.visited.push(part);
      a.updated = i;
      resolveTimeline(model, a, r, i, t);
      return;
    }
    case 'event': {
      if (typeof r.target !== 'string' || typeof r.type !== 'string') break;
      const target = model.actors.get(r.target);
      /** @type {TimelineEntry} */
      const e = { i, seq: r.seq, t, target: r.target, source: r.source, type: r.type, from: target?.state ?? '' };
      if (r.payload && typeof r.payload === 'object') e.payload = r.payload;
      model.timeline.push(e);
      let q = model.pending.get(r.target);
      if (!q) model.pending.set(r.target, (q = []));
      q.push(e);
      return;
    }
  }
  model.skipped++;
}

/**
 * Gives the event line that caused a snapshot its new state. An actor handles its events in
 * order, so the first waiting event of the same type is the one; events queued before it got
 * no snapshot (ignored, or the actor had stopped) and stay without a new state.
 *
 * @param {ReturnType<typeof createModel>} model
 * @param {Actor} a
 * @param {any} r
 * @param {number} i
 * @param {number} t
 */
function resolveTimeline(model, a, r, i, t) {
  const q = model.pending.get(a.id) ?? [];
  const k = q.findIndex((e) => e.type === r.event);
  if (k >= 0) {
    for (const skipped of q.slice(0, k)) {
      skipped.unresolved = true;
      model.resolved.push(skipped);
    }
    const e = q[k];
    q.splice(0, k + 1);
    e.to = a.state;
    e.status = a.status;
    model.resolved.push(e);
    return;
  }
  // A change with no recorded event (stopped by its parent, or records from mid-run): a line
  // of its own so that every state change shows in the timeline.
  model.timeline.push({ i, seq: r.seq, t, target: a.id, type: r.event ?? `(${a.status})`, from: a.prevState, to: a.state, status: a.status, implicit: true });
}

/**
 * A model with the first `n` records applied (all by default).
 *
 * @param {any[]} records
 * @param {number} [n]
 */
export function buildModel(records, n = records.length) {
  const model = createModel();
  const end = Math.max(0, Math.min(n, records.length));
  for (let k = 0; k < end; k++) applyRecord(model, records[k]);
  return model;
}

/**
 * Index of a statechart: state by id, and the state a dotted value names.
 *
 * @param {MachineDef} def
 */
export function indexMachine(def) {
  const byId = new Map(def.states.map((s) => [s.id, s]));
  const root = def.states[0];
  /** @type {Map<string, string>} */
  const parentOf = new Map();
  for (const s of def.states) for (const c of s.children) parentOf.set(c, s.id);
  return { def, byId, root, parentOf };
}

/** @type {WeakMap<MachineDef, ReturnType<typeof indexMachine>>} */
const indexes = new WeakMap();

/** {@link indexMachine}, computed once per definition. @param {MachineDef} def */
export function machineIndex(def) {
  let ix = indexes.get(def);
  if (!ix) indexes.set(def, (ix = indexMachine(def)));
  return ix;
}

/**
 * The state ids a value makes active: `creating.forking` in `subprocess` gives
 * `subprocess.creating` and `subprocess.creating.forking` (the path down from the root, root
 * excluded). Looked up by key rather than by building ids, since a state may have a custom id.
 *
 * @param {MachineDef} def
 * @param {string} value
 * @returns {{ active: string[], leaves: string[] }}
 */
export function activeStateIds(def, value) {
  const { byId, root } = machineIndex(def);
  const active = [];
  const leaves = [];
  for (const part of valueParts(value)) {
    let node = root;
    for (const key of part.split('.')) {
      const next = node?.children.map((c) => byId.get(c)).find((c) => c?.key === key);
      if (!next) {
        node = undefined;
        break;
      }
      active.push(next.id);
      node = next;
    }
    if (node && node !== root) leaves.push(node.id);
  }
  return { active, leaves };
}

/**
 * Whether an actor is over: stopped, done or failed, or in a final state of its machine (the
 * runtime's `dead`, `released`, `closed`).
 *
 * @param {ReturnType<typeof createModel>} model
 * @param {Actor} a
 */
export function isFinished(model, a) {
  if (a.status === 'done' || a.status === 'stopped' || a.status === 'error') return true;
  const def = model.machines.get(a.machine);
  if (!def || !a.state) return false;
  const { leaves } = activeStateIds(def, a.state);
  const { byId } = machineIndex(def);
  return leaves.length > 0 && leaves.every((id) => byId.get(id)?.type === 'final');
}

/**
 * Actors with no (known) parent: the roots of the tree.
 *
 * @param {ReturnType<typeof createModel>} model
 */
export function rootActors(model) {
  return [...model.actors.values()].filter((a) => !a.parent || !model.actors.has(a.parent));
}
