// Statechart drawing: a layered layout computed from the machine definition alone (pure, so
// Node can test it), then an SVG with the actor's current and visited states marked.

import { machineIndex, activeStateIds } from './model.js';

const BOX_H = 34;
const MIN_BOX_W = 84;
const CHAR_W = 7.4; // average advance of the 12px UI font: boxes sized without measuring text
const PAD = 14;
const HEADER = 24;
const COL_GAP = 64;
const ROW_GAP = 22;

/**
 * @typedef {{ x: number, y: number, w: number, h: number }} Rect
 * @typedef {{ source: string, target: string, events: string[] }} Edge
 * @typedef {{ source: string, event: string, targets: string[] }} Transition
 * @typedef {{
 *   width: number, height: number, rects: Map<string, Rect>, edges: Edge[],
 *   transitions: Transition[], depth: Map<string, number>,
 * }} Layout
 */

/**
 * The child of `parent` that is `id` or contains it, if any.
 *
 * @param {ReturnType<typeof machineIndex>} ix
 * @param {string} parent
 * @param {string} id
 */
function childContaining(ix, parent, id) {
  let cur = id;
  while (cur !== undefined) {
    const up = ix.parentOf.get(cur);
    if (up === parent) return cur;
    cur = /** @type {string} */ (up);
  }
  return undefined;
}

/** A state and all its descendants. @param {ReturnType<typeof machineIndex>} ix @param {string} id */
function subtree(ix, id) {
  const out = [id];
  for (let k = 0; k < out.length; k++) out.push(...(ix.byId.get(out[k])?.children ?? []));
  return out;
}

/**
 * Orders a compound state's children in columns: BFS depth from the first child (the record
 * does not say which child is initial; machines list it first), following transitions out of
 * each child's whole subtree. Children no path reaches (entered only through a transition of
 * an ancestor, like `faulted`) start new columns after the rest, and final states go last so
 * the chart reads left to right from birth to death.
 *
 * @param {ReturnType<typeof machineIndex>} ix
 * @param {string} parentId
 * @returns {string[][]}
 */
function columnsOf(ix, parentId) {
  const kids = ix.byId.get(parentId)?.children ?? [];
  /** @type {Map<string, Set<string>>} */
  const next = new Map(kids.map((k) => [k, new Set()]));
  for (const k of kids)
    for (const d of subtree(ix, k))
      for (const targets of Object.values(ix.byId.get(d)?.on ?? {}))
        for (const tgt of targets) {
          const sib = childContaining(ix, parentId, tgt);
          if (sib && sib !== k) next.get(k)?.add(sib);
        }
  /** @type {Map<string, number>} */
  const depth = new Map();
  const bfs = (start, d0) => {
    depth.set(start, d0);
    const queue = [start];
    while (queue.length) {
      const cur = /** @type {string} */ (queue.shift());
      for (const n of next.get(cur) ?? [])
        if (!depth.has(n)) {
          depth.set(n, /** @type {number} */ (depth.get(cur)) + 1);
          queue.push(n);
        }
    }
  };
  if (kids.length) bfs(kids[0], 0);
  for (;;) {
    const rest = kids.filter((k) => !depth.has(k));
    if (!rest.length) break;
    // Prefer a state nothing else unplaced leads to, so that chains keep their direction.
    const start = rest.find((k) => !rest.some((o) => o !== k && next.get(o)?.has(k))) ?? rest[0];
    bfs(start, Math.max(...depth.values()) + 1);
  }
  const finals = kids.filter((k) => ix.byId.get(k)?.type === 'final');
  const others = kids.filter((k) => ix.byId.get(k)?.type !== 'final');
  if (finals.length && others.length) {
    const last = Math.max(...others.map((k) => /** @type {number} */ (depth.get(k)))) + 1;
    for (const f of finals) depth.set(f, last);
  }
  /** @type {string[][]} */
  const cols = [];
  for (const k of kids) (cols[/** @type {number} */ (depth.get(k))] ??= []).push(k);
  return cols.filter(Boolean);
}

/**
 * Lays a machine out: a box per state (compound states around their children), the
 * transitions as edges between boxes, and those that cannot be drawn as arrows (on the root:
 * "from any state"; without a target: handled in place) kept for the list.
 *
 * @param {import('./model.js').MachineDef} def
 * @returns {Layout}
 */
export function layoutMachine(def) {
  const ix = machineIndex(def);
  /** @type {Map<string, { w: number, h: number, rel: Map<string, { x: number, y: number }> }>} */
  const sizes = new Map();
  /** @type {Map<string, number>} */
  const depth = new Map();

  // Sizes bottom-up: a compound's size depends on its children's.
  const measure = (id) => {
    const s = /** @type {import('./model.js').StateDef} */ (ix.byId.get(id));
    const rel = new Map();
    if (!s.children.length) {
      const size = { w: Math.max(MIN_BOX_W, Math.ceil(s.key.length * CHAR_W) + 28), h: BOX_H, rel };
      sizes.set(id, size);
      return size;
    }
    const cols = columnsOf(ix, id);
    const colSizes = cols.map((col) => {
      const items = col.map((c) => ({ id: c, ...measure(c) }));
      return { items, w: Math.max(...items.map((x) => x.w)), h: items.reduce((n, x) => n + x.h, 0) + ROW_GAP * (items.length - 1) };
    });
    const contentH = Math.max(...colSizes.map((c) => c.h));
    let x = PAD;
    colSizes.forEach((col, d) => {
      let y = HEADER + (contentH - col.h) / 2;
      for (const item of col.items) {
        rel.set(item.id, { x: x + (col.w - item.w) / 2, y });
        depth.set(item.id, d);
        y += item.h + ROW_GAP;
      }
      x += col.w + COL_GAP;
    });
    const titleW = Math.ceil(s.key.length * CHAR_W) + 2 * PAD;
    const size = { w: Math.max(x - COL_GAP + PAD, titleW), h: HEADER + contentH + PAD, rel };
    sizes.set(id, size);
    return size;
  };
  const rootSize = measure(ix.root.id);

  /** @type {Map<string, Rect>} */
  const rects = new Map();
  const place = (id, x, y) => {
    const size = /** @type {{ w: number, h: number, rel: Map<string, { x: number, y: number }> }} */ (sizes.get(id));
    rects.set(id, { x, y, w: size.w, h: size.h });
    for (const [c, r] of size.rel) place(c, x + r.x, y + r.y);
  };
  place(ix.root.id, 0, 0);

  /** @type {Map<string, Edge>} */
  const edges = new Map();
  /** @type {Transition[]} */
  const transitions = [];
  for (const s of def.states)
    for (const [event, targets] of Object.entries(s.on)) {
      transitions.push({ source: s.id, event, targets });
      if (s.id === ix.root.id) continue;
      for (const target of targets) {
        if (!rects.has(target)) continue;
        const key = `${s.id}\u0000${target}`;
        const e = edges.get(key) ?? { source: s.id, target, events: [] };
        if (!e.events.includes(event)) e.events.push(event);
        edges.set(key, e);
      }
    }
  return { width: rootSize.w, height: rootSize.h, rects, edges: [...edges.values()], transitions, depth };
}

/** @type {WeakMap<import('./model.js').MachineDef, Layout>} */
const layouts = new WeakMap();

/** {@link layoutMachine}, computed once per definition. @param {import('./model.js').MachineDef} def */
export function cachedLayout(def) {
  let l = layouts.get(def);
  if (!l) layouts.set(def, (l = layoutMachine(def)));
  return l;
}

/** A state id without its machine's prefix (`subprocess.creating.forking` → `creating.forking`). */
export function shortId(def, id) {
  return id.startsWith(`${def.id}.`) ? id.slice(def.id.length + 1) : id;
}

/** Where the ray from a rect's centre towards (px, py) leaves the rect. @param {Rect} r */
function borderPoint(r, px, py) {
  const cx = r.x + r.w / 2;
  const cy = r.y + r.h / 2;
  const dx = px - cx;
  const dy = py - cy;
  if (!dx && !dy) return { x: cx, y: cy };
  const s = Math.min(dx ? r.w / 2 / Math.abs(dx) : Infinity, dy ? r.h / 2 / Math.abs(dy) : Infinity);
  return { x: cx + dx * s, y: cy + dy * s };
}

/**
 * An edge's path and label position. Every edge bends to the right of its direction, so two
 * states with transitions both ways get two separate arcs; longer edges bend more so they tend
 * to go around the boxes between.
 *
 * @param {Rect} a
 * @param {Rect} b
 */
export function edgeGeometry(a, b) {
  if (a === b) {
    // A self-transition: a loop over the top-right corner.
    const x = a.x + a.w - 18;
    const y = a.y;
    return { d: `M ${x - 10} ${y} C ${x - 14} ${y - 30}, ${x + 22} ${y - 30}, ${x + 8} ${y}`, label: { x: x + 4, y: y - 26 } };
  }
  const ax = a.x + a.w / 2;
  const ay = a.y + a.h / 2;
  const bx = b.x + b.w / 2;
  const by = b.y + b.h / 2;
  const dx = bx - ax;
  const dy = by - ay;
  const dist = Math.hypot(dx, dy) || 1;
  const bend = Math.min(90, 12 + dist * 0.14);
  const cx = (ax + bx) / 2 + (-dy / dist) * bend;
  const cy = (ay + by) / 2 + (dx / dist) * bend;
  const p0 = borderPoint(a, cx, cy);
  const p2 = borderPoint(b, cx, cy);
  const f = (n) => Math.round(n * 10) / 10;
  return {
    d: `M ${f(p0.x)} ${f(p0.y)} Q ${f(cx)} ${f(cy)} ${f(p2.x)} ${f(p2.y)}`,
    // The curve's midpoint (t = ½ of the quadratic Bézier).
    label: { x: f(0.25 * p0.x + 0.5 * cx + 0.25 * p2.x), y: f(0.25 * p0.y + 0.5 * cy + 0.25 * p2.y) },
  };
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** @param {string} name @param {Record<string, string | number>} [attrs] @param {string} [text] */
function svg(name, attrs = {}, text) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/**
 * What to mark on a chart.
 *
 * @typedef {{ state: string, prevState?: string, lastEvent?: string, visited: string[] }} ChartMarks
 */

/**
 * The active and visited state ids of an actor, and the edge it last took (the transition
 * from a state active before to one active now, on the event of its last snapshot).
 *
 * @param {import('./model.js').MachineDef} def
 * @param {ChartMarks} marks
 */
export function chartMarks(def, marks) {
  const now = activeStateIds(def, marks.state);
  const visited = new Set();
  for (const v of marks.visited) for (const id of activeStateIds(def, v).active) visited.add(id);
  const before = new Set(marks.prevState ? activeStateIds(def, marks.prevState).active : []);
  const active = new Set(now.active);
  const leaves = new Set(now.leaves);
  /** @param {Edge} e */
  const taken = (e) => marks.prevState !== undefined && marks.prevState !== marks.state && e.events.includes(marks.lastEvent ?? '') && before.has(e.source) && active.has(e.target);
  return { active, leaves, visited, taken };
}

/**
 * Draws a machine into an `<svg>` element: boxes (`data-state-id`, `data-current="true"` on
 * the current state, `data-visited="true"` on states the actor has been in) and labelled
 * arrows.
 *
 * @param {SVGSVGElement} root
 * @param {import('./model.js').MachineDef} def
 * @param {ChartMarks} marks
 */
export function renderChart(root, def, marks) {
  const layout = cachedLayout(def);
  const { active, leaves, visited, taken } = chartMarks(def, marks);
  const M = 34; // margin: room for self-loops and arcs bending out of the root box
  root.replaceChildren();
  root.setAttribute('viewBox', `${-M} ${-M} ${layout.width + 2 * M} ${layout.height + 2 * M}`);
  root.setAttribute('width', String(layout.width + 2 * M));
  root.setAttribute('height', String(layout.height + 2 * M));
  root.setAttribute('role', 'img');
  root.setAttribute('aria-label', `statechart of ${def.id}, current state ${marks.state || 'unknown'}`);

  const defs = svg('defs');
  for (const [id, cls] of [['arrow', 'arrowhead'], ['arrow-taken', 'arrowhead taken']]) {
    const m = svg('marker', { id, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' });
    m.append(svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: cls }));
    defs.append(m);
  }
  root.append(defs);

  // States first (parents before children: document order), edges above them so arrows into
  // nested states stay visible.
  const states = svg('g', { class: 'states' });
  for (const s of def.states) {
    const r = /** @type {Rect} */ (layout.rects.get(s.id));
    const isRoot = s.id === def.states[0].id;
    const cls = ['state', s.type, isRoot ? 'root' : ''];
    if (leaves.has(s.id)) cls.push('current');
    else if (active.has(s.id)) cls.push('active');
    if (visited.has(s.id)) cls.push('visited');
    const g = svg('g', { class: cls.filter(Boolean).join(' '), 'data-state-id': s.id });
    if (leaves.has(s.id)) g.setAttribute('data-current', 'true');
    if (visited.has(s.id)) g.setAttribute('data-visited', 'true');
    g.append(svg('title', {}, `${shortId(def, s.id)} (${s.type})${leaves.has(s.id) ? ' — current' : visited.has(s.id) ? ' — visited' : ''}`));
    g.append(svg('rect', { x: r.x, y: r.y, width: r.w, height: r.h, rx: s.children.length ? 10 : 8 }));
    if (s.type === 'final') g.append(svg('rect', { class: 'inner', x: r.x + 3, y: r.y + 3, width: r.w - 6, height: r.h - 6, rx: 6 }));
    if (s.children.length) g.append(svg('text', { class: 'title', x: r.x + 10, y: r.y + 16 }, isRoot ? def.id : s.key));
    else g.append(svg('text', { x: r.x + r.w / 2, y: r.y + r.h / 2 + 4, 'text-anchor': 'middle' }, s.key));
    states.append(g);
  }
  root.append(states);

  const edges = svg('g', { class: 'edges' });
  const labels = svg('g', { class: 'labels' });
  for (const e of layout.edges) {
    const a = /** @type {Rect} */ (layout.rects.get(e.source));
    const b = /** @type {Rect} */ (layout.rects.get(e.target));
    const geo = edgeGeometry(a, e.source === e.target ? a : b);
    const isTaken = taken(e);
    const cls = `edge${isTaken ? ' taken' : ''}`;
    const path = svg('path', { class: cls, d: geo.d, 'marker-end': `url(#${isTaken ? 'arrow-taken' : 'arrow'})`, 'data-source': e.source, 'data-target': e.target });
    edges.append(path);
    labels.append(svg('text', { class: `label${isTaken ? ' taken' : ''}`, x: geo.label.x, y: geo.label.y + 4, 'text-anchor': 'middle' }, e.events.join(' / ')));
  }
  root.append(edges, labels);
  return layout;
}
