// Statechart drawing: a layered layout computed from the machine definition alone (pure, so
// Node can test it), then an SVG with the actor's current and visited states marked.

import { machineIndex, activeStateIds } from './model.js';

const BOX_H = 34;
const MIN_BOX_W = 84;
const CHAR_W = 7.4; // average advance of the 12px UI font: boxes sized without measuring text
const PAD = 14;
const HEADER = 24;
const ROW_GAP = 26;

/**
 * @typedef {{ x: number, y: number, w: number, h: number }} Rect
 * @typedef {{ source: string, target: string, events: string[] }} Edge
 * @typedef {{ source: string, event: string, targets: string[] }} Transition
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

/** All proper ancestors of a state, nearest first. @param {ReturnType<typeof machineIndex>} ix @param {string} id */
function ancestorsOf(ix, id) {
  const out = [];
  for (let p = ix.parentOf.get(id); p !== undefined; p = ix.parentOf.get(p)) out.push(p);
  return out;
}

/**
 * How an edge is drawn. Between neighbouring columns a short curve is clear; an edge that
 * skips columns would cut through the boxes between, so it is routed around the content
 * instead: backwards edges over the top, long forward ones under the bottom, each in its own
 * horizontal lane of the compound state that contains both ends. Within a column, neighbours
 * get a straight vertical arrow and others go round by the gap on the column's right.
 *
 * @param {ReturnType<typeof machineIndex>} ix
 * @param {Map<string, number>} depth
 * @param {Map<string, number>} row state → its place in its column
 * @param {string} source
 * @param {string} target
 * @returns {{ kind: 'loop' | 'direct' | 'above' | 'below' | 'vertical' | 'side', parent?: string, from?: string, to?: string, span: number }}
 */
function routeOf(ix, depth, row, source, target) {
  if (source === target) return { kind: 'loop', span: 0 };
  const up = ancestorsOf(ix, source);
  const upT = ancestorsOf(ix, target);
  if (up.includes(target) || upT.includes(source)) return { kind: 'direct', span: 0 };
  const parent = up.find((a) => upT.includes(a));
  if (parent === undefined) return { kind: 'direct', span: 0 };
  const from = /** @type {string} */ (childContaining(ix, parent, source));
  const to = /** @type {string} */ (childContaining(ix, parent, target));
  const span = /** @type {number} */ (depth.get(to)) - /** @type {number} */ (depth.get(from));
  const rows = Math.abs(/** @type {number} */ (row.get(to)) - /** @type {number} */ (row.get(from)));
  const kind = span < -1 ? 'above' : span > 1 ? 'below' : span !== 0 ? 'direct' : rows === 1 ? 'vertical' : 'side';
  return { kind, parent, from, to, span };
}

const LANE = 18;
const MIN_GAP = 48;
const LABEL_CHAR_W = 6.6; // advance of the 10.5px monospace edge labels

/**
 * @typedef {{ x: number, y: number, anchor: 'start' | 'middle' | 'end' }} LabelPos
 * @typedef {Edge & { kind: string, parent?: string, from?: string, to?: string, span: number, lane: number, lanes: number, d: string, label: LabelPos }} PlacedEdge
 */

/**
 * Lays a machine out: a box per state (compound states around their children, children in
 * columns by {@link columnsOf}), and every transition with a target as an edge with its SVG
 * path. Transitions of the root ("from any state") and targetless ones are only listed.
 *
 * @param {import('./model.js').MachineDef} def
 */
export function layoutMachine(def) {
  const ix = machineIndex(def);
  const rootId = ix.root.id;

  /** @type {Map<string, string[][]>} */
  const columns = new Map();
  /** @type {Map<string, number>} state → its column in its parent */
  const depth = new Map();
  /** @type {Map<string, number>} state → its place in that column */
  const row = new Map();
  for (const s of def.states)
    if (s.children.length) {
      const cols = columnsOf(ix, s.id);
      columns.set(s.id, cols);
      cols.forEach((col, d) =>
        col.forEach((c, r) => {
          depth.set(c, d);
          row.set(c, r);
        }),
      );
    }

  /** @type {Map<string, PlacedEdge>} */
  const byPair = new Map();
  /** @type {Transition[]} */
  const transitions = [];
  for (const s of def.states)
    for (const [event, targets] of Object.entries(s.on)) {
      transitions.push({ source: s.id, event, targets });
      if (s.id === rootId) continue;
      for (const target of targets) {
        if (!ix.byId.has(target)) continue;
        const key = `${s.id}\u0000${target}`;
        let e = byPair.get(key);
        if (!e) byPair.set(key, (e = { source: s.id, target, events: [], ...routeOf(ix, depth, row, s.id, target), lane: 0, lanes: 0, d: '', label: { x: 0, y: 0, anchor: 'middle' } }));
        if (!e.events.includes(event)) e.events.push(event);
      }
    }
  const edges = [...byPair.values()];

  // Lanes: the shortest routed edges nearest the content, so that longer ones arc over them.
  /** @type {Map<string, PlacedEdge[]>} */
  const laneGroups = new Map();
  for (const e of edges)
    if (e.kind === 'above' || e.kind === 'below' || e.kind === 'side') {
      const k = e.kind === 'side' ? `${e.parent}|side|${depth.get(/** @type {string} */ (e.from))}` : `${e.parent}|${e.kind}`;
      if (!laneGroups.has(k)) laneGroups.set(k, []);
      /** @type {PlacedEdge[]} */ (laneGroups.get(k)).push(e);
    }
  for (const group of laneGroups.values()) {
    group.sort((a, b) => Math.abs(a.span) - Math.abs(b.span));
    group.forEach((e, i) => {
      e.lane = i;
      e.lanes = group.length;
    });
  }
  /** @param {string} p @param {'above' | 'below'} side */
  const laneCount = (p, side) => laneGroups.get(`${p}|${side}`)?.length ?? 0;

  // A gap between two columns is wide enough for the labels of the curves that cross it, and
  // of the edges that go round by it.
  /** @param {string} p @param {number} d gap after column d */
  const gapAfter = (p, d) => {
    let w = 0;
    let crossing = 0;
    for (const e of edges) {
      if (e.parent !== p) continue;
      const label = Math.ceil(e.events.join(' / ').length * LABEL_CHAR_W);
      const d0 = /** @type {number} */ (depth.get(/** @type {string} */ (e.from)));
      const d1 = /** @type {number} */ (depth.get(/** @type {string} */ (e.to)));
      if (e.kind === 'direct' && Math.min(d0, d1) === d) {
        w = Math.max(w, label + 26);
        crossing++;
      }
      if ((e.kind === 'vertical' || e.kind === 'side') && d0 === d) w = Math.max(w, 16 + 5 * e.lanes + label + 12);
    }
    // Many curves through one gap: more room to spread their labels.
    return Math.max(MIN_GAP, w + (crossing > 2 ? 8 * crossing : 0));
  };

  /** @typedef {{ w: number, h: number, rel: Map<string, { x: number, y: number }>, cols: { x: number, w: number }[], top: number, contentH: number }} Size */
  /** @type {Map<string, Size>} */
  const sizes = new Map();
  // Sizes bottom-up: a compound's size depends on its children's.
  /** @param {string} id @returns {Size} */
  const measure = (id) => {
    const s = /** @type {import('./model.js').StateDef} */ (ix.byId.get(id));
    /** @type {Size} */
    let size;
    if (!s.children.length) {
      size = { w: Math.max(MIN_BOX_W, Math.ceil(s.key.length * CHAR_W) + 28), h: BOX_H, rel: new Map(), cols: [], top: 0, contentH: 0 };
    } else {
      const cols = /** @type {string[][]} */ (columns.get(id));
      const colSizes = cols.map((col) => {
        const items = col.map((c) => ({ id: c, ...measure(c) }));
        return { items, w: Math.max(...items.map((x) => x.w)), h: items.reduce((n, x) => n + x.h, 0) + ROW_GAP * (items.length - 1) };
      });
      const contentH = Math.max(...colSizes.map((c) => c.h));
      const top = HEADER + laneCount(id, 'above') * LANE;
      const rel = new Map();
      const colBoxes = [];
      let x = PAD;
      colSizes.forEach((col, d) => {
        let y = top + (contentH - col.h) / 2;
        for (const item of col.items) {
          rel.set(item.id, { x: x + (col.w - item.w) / 2, y });
          y += item.h + ROW_GAP;
        }
        colBoxes.push({ x, w: col.w });
        x += col.w + (d < colSizes.length - 1 ? gapAfter(id, d) : 0);
      });
      const titleW = Math.ceil(s.key.length * CHAR_W) + 2 * PAD;
      size = { w: Math.max(x + PAD, titleW), h: top + contentH + laneCount(id, 'below') * LANE + PAD, rel, cols: colBoxes, top, contentH };
    }
    sizes.set(id, size);
    return size;
  };
  const rootSize = measure(rootId);

  /** @type {Map<string, Rect>} */
  const rects = new Map();
  /** @param {string} id @param {number} x @param {number} y */
  const place = (id, x, y) => {
    const size = /** @type {Size} */ (sizes.get(id));
    rects.set(id, { x, y, w: size.w, h: size.h });
    for (const [c, r] of size.rel) place(c, x + r.x, y + r.y);
  };
  place(rootId, 0, 0);

  const reverse = new Set(edges.map((e) => `${e.target}\u0000${e.source}`));
  /** @type {Map<PlacedEdge, (t: number) => { x: number, y: number }>} */
  const curves = new Map();
  for (const e of edges) {
    const { d, label, along } = edgePath(e, rects, sizes, depth, reverse.has(`${e.source}\u0000${e.target}`));
    e.d = d;
    e.label = label;
    if (along) curves.set(e, along);
  }
  placeLabels(def, edges, rects, curves);
  return { width: rootSize.w, height: rootSize.h, rects, edges, transitions, depth };
}

/** @param {Rect} a @param {Rect} b */
function overlap(a, b) {
  const w = Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x);
  const h = Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y);
  return w > 0 && h > 0 ? w * h : 0;
}

/** The box a label's text covers. @param {PlacedEdge} e @param {LabelPos} pos @returns {Rect} */
export function labelBox(e, pos) {
  const w = e.events.join(' / ').length * LABEL_CHAR_W + 4;
  const h = 13;
  const x = pos.anchor === 'middle' ? pos.x - w / 2 : pos.anchor === 'start' ? pos.x : pos.x - w;
  return { x, y: pos.y - h / 2, w, h };
}

/**
 * Moves the labels of curves along them, greedily, to where they cover the fewest state boxes
 * and labels already placed: where several curves leave one box their midpoints bunch up.
 * Labels of routed edges sit on their own lane and stay.
 *
 * @param {import('./model.js').MachineDef} def
 * @param {PlacedEdge[]} edges
 * @param {Map<string, Rect>} rects
 * @param {Map<PlacedEdge, (t: number) => { x: number, y: number }>} curves
 */
function placeLabels(def, edges, rects, curves) {
  const boxes = def.states.filter((s) => !s.children.length).map((s) => /** @type {Rect} */ (rects.get(s.id)));
  const placed = edges.filter((e) => !curves.has(e)).map((e) => labelBox(e, e.label));
  const tries = [0.5, 0.4, 0.6, 0.32, 0.68, 0.25, 0.75];
  for (const [e, along] of curves) {
    let best = e.label;
    let bestCost = Infinity;
    for (const t of tries) {
      const p = along(t);
      const pos = /** @type {LabelPos} */ ({ x: round(p.x), y: round(p.y), anchor: 'middle' });
      const box = labelBox(e, pos);
      // A box hidden under a label is worse than two labels touching; moving far from the
      // middle costs a little so that free curves keep centred labels.
      let cost = Math.abs(t - 0.5) * 20;
      for (const b of boxes) cost += 3 * overlap(box, b);
      for (const b of placed) cost += overlap(box, b);
      if (cost < bestCost) {
        bestCost = cost;
        best = pos;
      }
    }
    e.label = best;
    placed.push(labelBox(e, best));
  }
}

/** @type {WeakMap<import('./model.js').MachineDef, ReturnType<typeof layoutMachine>>} */
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

const round = (n) => Math.round(n * 10) / 10;

/**
 * A polyline through `pts` with rounded corners.
 *
 * @param {{ x: number, y: number }[]} pts
 */
function roundedPath(pts, r = 6) {
  let d = `M ${round(pts[0].x)} ${round(pts[0].y)}`;
  for (let i = 1; i < pts.length - 1; i++) {
    const [a, b, c] = [pts[i - 1], pts[i], pts[i + 1]];
    const r1 = Math.min(r, Math.hypot(b.x - a.x, b.y - a.y) / 2, Math.hypot(c.x - b.x, c.y - b.y) / 2);
    const towards = (p, q, len) => {
      const l = Math.hypot(q.x - p.x, q.y - p.y) || 1;
      return { x: p.x + ((q.x - p.x) / l) * len, y: p.y + ((q.y - p.y) / l) * len };
    };
    const p1 = towards(b, a, r1);
    const p2 = towards(b, c, r1);
    d += ` L ${round(p1.x)} ${round(p1.y)} Q ${round(b.x)} ${round(b.y)} ${round(p2.x)} ${round(p2.y)}`;
  }
  const last = pts[pts.length - 1];
  return `${d} L ${round(last.x)} ${round(last.y)}`;
}

/**
 * An edge's SVG path and label position.
 *
 * @param {PlacedEdge} e
 * @param {Map<string, Rect>} rects
 * @param {Map<string, { cols: { x: number, w: number }[], top: number, contentH: number }>} sizes
 * @param {Map<string, number>} depth
 * @param {boolean} twoWay the opposite edge exists too
 * @returns {{ d: string, label: LabelPos, along?: (t: number) => { x: number, y: number } }}
 */
function edgePath(e, rects, sizes, depth, twoWay) {
  const a = /** @type {Rect} */ (rects.get(e.source));
  const b = /** @type {Rect} */ (rects.get(e.target));
  if (e.kind === 'loop') {
    // Over the top-right corner of the box.
    const x = a.x + a.w - 18;
    const y = a.y;
    return { d: `M ${x - 10} ${y} C ${x - 14} ${y - 30}, ${x + 22} ${y - 30}, ${x + 8} ${y}`, label: { x: x + 4, y: y - 26, anchor: 'middle' } };
  }
  if (e.kind === 'vertical') {
    // Neighbours in a column: a straight arrow in the gap between them, label beside it; a
    // pair of opposite arrows side by side.
    const down = b.y > a.y;
    const dx = twoWay ? (down ? -7 : 7) : 0;
    const cx = (Math.max(a.x, b.x) + Math.min(a.x + a.w, b.x + b.w)) / 2 + dx;
    const y0 = down ? a.y + a.h : a.y;
    const y1 = down ? b.y : b.y + b.h;
    return { d: `M ${round(cx)} ${round(y0)} L ${round(cx)} ${round(y1)}`, label: dx < 0 ? { x: round(cx - 5), y: round((y0 + y1) / 2), anchor: 'end' } : { x: round(cx + 5), y: round((y0 + y1) / 2), anchor: 'start' } };
  }
  if (e.kind === 'direct') {
    // A curve bending to the right of its direction: transitions both ways between two
    // states get two separate arcs.
    const ax = a.x + a.w / 2;
    const ay = a.y + a.h / 2;
    const bx = b.x + b.w / 2;
    const by = b.y + b.h / 2;
    const dist = Math.hypot(bx - ax, by - ay) || 1;
    const bend = Math.min(40, 10 + dist * 0.1);
    const cx = (ax + bx) / 2 + (-(by - ay) / dist) * bend;
    const cy = (ay + by) / 2 + ((bx - ax) / dist) * bend;
    const p0 = borderPoint(a, cx, cy);
    const p2 = borderPoint(b, cx, cy);
    /** A point of the quadratic Bézier. @param {number} t */
    const along = (t) => ({ x: (1 - t) * (1 - t) * p0.x + 2 * (1 - t) * t * cx + t * t * p2.x, y: (1 - t) * (1 - t) * p0.y + 2 * (1 - t) * t * cy + t * t * p2.y });
    const mid = along(0.5);
    return { d: `M ${round(p0.x)} ${round(p0.y)} Q ${round(cx)} ${round(cy)} ${round(p2.x)} ${round(p2.y)}`, label: { x: round(mid.x), y: round(mid.y), anchor: 'middle' }, along };
  }
  // Routed: out of the source's side into the column gap, along the lane, down (or up) the
  // gap next to the target's column, into the target's side.
  const parent = /** @type {string} */ (e.parent);
  const p = /** @type {Rect} */ (rects.get(parent));
  const size = /** @type {{ cols: { x: number, w: number }[], top: number, contentH: number }} */ (sizes.get(parent));
  const colOf = (id) => size.cols[/** @type {number} */ (depth.get(id))];
  const fromCol = colOf(/** @type {string} */ (e.from));
  const toCol = colOf(/** @type {string} */ (e.to));
  if (e.kind === 'side') {
    // Same column, not neighbours: out of the right side, down (or up) the gap, back in.
    const gx = p.x + fromCol.x + fromCol.w + 12 + 5 * e.lane;
    const ay = a.y + a.h / 2;
    const by = b.y + b.h / 2;
    return { d: roundedPath([{ x: a.x + a.w, y: ay }, { x: gx, y: ay }, { x: gx, y: by }, { x: b.x + b.w, y: by }]), label: { x: round(gx + 4), y: round((ay + by) / 2), anchor: 'start' } };
  }
  const above = e.kind === 'above';
  const laneY = above ? p.y + size.top - (e.lane + 0.5) * LANE : p.y + size.top + size.contentH + (e.lane + 0.5) * LANE;
  // Outer lanes further from the source's column and nearer the target's, so that the
  // vertical legs of nested lanes do not cross each other.
  const step = 5;
  const ay = a.y + a.h / 2;
  const by = b.y + b.h / 2;
  /** @type {{ x: number, y: number }[]} */
  let pts;
  if (above) {
    const gx1 = p.x + fromCol.x - 10 - step * e.lane;
    const gx2 = p.x + toCol.x + toCol.w + 10 + step * (e.lanes - 1 - e.lane);
    const start = e.source === e.from ? { x: a.x, y: ay } : { x: a.x + a.w / 2, y: a.y };
    const end = e.target === e.to ? { x: b.x + b.w, y: by } : { x: b.x + b.w / 2, y: b.y };
    pts = [start, ...(e.source === e.from ? [{ x: gx1, y: ay }] : []), { x: e.source === e.from ? gx1 : start.x, y: laneY }, { x: e.target === e.to ? gx2 : end.x, y: laneY }, ...(e.target === e.to ? [{ x: gx2, y: by }] : []), end];
  } else {
    const gx1 = p.x + fromCol.x + fromCol.w + 10 + step * e.lane;
    const gx2 = p.x + toCol.x - 10 - step * (e.lanes - 1 - e.lane);
    const start = e.source === e.from ? { x: a.x + a.w, y: ay } : { x: a.x + a.w / 2, y: a.y + a.h };
    const end = e.target === e.to ? { x: b.x, y: by } : { x: b.x + b.w / 2, y: b.y + b.h };
    pts = [start, ...(e.source === e.from ? [{ x: gx1, y: ay }] : []), { x: e.source === e.from ? gx1 : start.x, y: laneY }, { x: e.target === e.to ? gx2 : end.x, y: laneY }, ...(e.target === e.to ? [{ x: gx2, y: by }] : []), end];
  }
  const l1 = pts.findIndex((q) => q.y === laneY);
  return { d: roundedPath(pts), label: { x: round((pts[l1].x + pts[l1 + 1].x) / 2), y: round(laneY), anchor: 'middle' } };
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
  const M = 16; // margin: room for a self-loop over a box at the top
  root.replaceChildren();
  // The chart's own size; the viewBox that fits it to the panel, and the zoom, are zoom.js's.
  const W = layout.width + 2 * M;
  const H = layout.height + 2 * M;
  root.dataset.chartWidth = String(W);
  root.dataset.chartHeight = String(H);
  root.setAttribute('viewBox', `0 0 ${W} ${H}`);
  root.removeAttribute('width');
  root.removeAttribute('height');
  root.setAttribute('role', 'img');
  root.setAttribute('aria-label', `statechart of ${def.id}, current state ${marks.state || 'unknown'}`);

  const defs = svg('defs');
  for (const [id, cls] of [['arrow', 'arrowhead'], ['arrow-taken', 'arrowhead taken']]) {
    const m = svg('marker', { id, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' });
    m.append(svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: cls }));
    defs.append(m);
  }
  root.append(defs);
  // Zoom and pan move this group (zoom.js); the inner one keeps the margin.
  const viewport = svg('g', { class: 'viewport' });
  const content = svg('g', { transform: `translate(${M} ${M})` });
  viewport.append(content);
  root.append(viewport);

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
  content.append(states);

  const edges = svg('g', { class: 'edges' });
  const labels = svg('g', { class: 'labels' });
  for (const e of layout.edges) {
    const isTaken = taken(e);
    const cls = `edge ${e.kind}${isTaken ? ' taken' : ''}`;
    edges.append(svg('path', { class: cls, d: e.d, 'marker-end': `url(#${isTaken ? 'arrow-taken' : 'arrow'})`, 'data-source': e.source, 'data-target': e.target }));
    // An opaque plate under each label: edges pass under labels, never through their text.
    const box = labelBox(e, e.label);
    const g = svg('g', { class: `label${isTaken ? ' taken' : ''}` });
    g.append(svg('rect', { class: 'label-bg', x: round(box.x - 1), y: round(box.y - 1), width: round(box.w + 2), height: box.h + 2, rx: 3 }));
    g.append(svg('text', { x: e.label.x, y: e.label.y + 4, 'text-anchor': e.label.anchor }, e.events.join(' / ')));
    labels.append(g);
  }
  content.append(edges, labels);
  return layout;
}
