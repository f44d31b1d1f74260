// The sequence view: events between actors over time, as a sequence diagram. One lifeline per
// actor that sends or receives one of the events shown, in order of first appearance; one row
// per event, an arrow from its sender to its target. Events sent by the runtime's own code
// (not from inside an actor: an actor class calling `ref.send`) come from the `runtime` lifeline.

import { formatPayload } from './format.js';

/** Most events drawn: the newest ones up to the cursor (the diagram stays readable and fast). */
export const SEQUENCE_LIMIT = 250;
/** The lifeline of events with no sending actor. */
export const RUNTIME = 'runtime';

const COL_W = 150;
const LEFT = 64; // the time column
const ROW_H = 24;
const TOP = 10;
const CHAR_W = 6.3; // the 10.5px monospace labels

/**
 * What the diagram shows: its lifelines and rows, from the model's timeline (pure: the Node
 * tests check it without a DOM).
 *
 * @example
 * const { lifelines, rows } = sequenceOf(model, { only: 'platformContext:0' });
 *
 * @param {{ timeline: any[] }} model
 * @param {{ only?: string, limit?: number }} [options] only events to or from this actor
 */
export function sequenceOf(model, options = {}) {
  const limit = options.limit ?? SEQUENCE_LIMIT;
  const shown = model.timeline.filter((e) => !e.implicit && (!options.only || e.target === options.only || e.source === options.only));
  const rows = shown.slice(Math.max(0, shown.length - limit));
  /** @type {string[]} */
  const lifelines = [];
  const add = (id) => {
    if (!lifelines.includes(id)) lifelines.push(id);
  };
  if (rows.some((e) => !e.source)) add(RUNTIME);
  for (const e of rows) {
    add(e.source ?? RUNTIME);
    add(e.target);
  }
  return { lifelines, rows, hidden: shown.length - rows.length };
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** @param {string} name @param {Record<string, string | number>} [attrs] @param {string} [text] */
function el(name, attrs = {}, text) {
  const n = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
  if (text !== undefined) n.textContent = text;
  return n;
}

/**
 * Draws the diagram into `box` (a scrolling element): a sticky header of lifeline names
 * (`[data-lifeline]`, a click selects that actor) over an SVG of arrows (`g.msg` with
 * `data-source`, `data-target`, `data-type`; a click selects the target).
 *
 * @param {HTMLElement} box
 * @param {{ timeline: any[] }} model
 * @param {{ only?: string, selected?: string, onSelect: (id: string) => void }} options
 */
export function renderSequence(box, model, options) {
  const { lifelines, rows, hidden } = sequenceOf(model, { only: options.only });
  const x = (id) => LEFT + lifelines.indexOf(id) * COL_W + COL_W / 2;
  const width = LEFT + lifelines.length * COL_W;
  const height = TOP + rows.length * ROW_H + 10;

  const head = document.createElement('div');
  head.className = 'seq-head';
  head.style.width = `${width}px`;
  const note = document.createElement('span');
  note.className = 'seq-note';
  note.style.width = `${LEFT}px`;
  note.textContent = hidden ? `+${hidden}` : '';
  note.title = hidden ? `${hidden} older event(s) not drawn` : '';
  head.append(note);
  for (const id of lifelines) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = `seq-actor${id === RUNTIME ? ' runtime' : ''}${id === options.selected ? ' selected' : ''}`;
    b.style.width = `${COL_W}px`;
    b.dataset.lifeline = id;
    b.textContent = id;
    b.title = id === RUNTIME ? 'the runtime’s own code (events sent from outside any actor)' : id;
    if (id !== RUNTIME) b.addEventListener('click', () => options.onSelect(id));
    head.append(b);
  }

  const root = el('svg', { width, height, class: 'seq-body', role: 'img', 'aria-label': `sequence of ${rows.length} events between ${lifelines.length} lifelines` });
  const defs = el('defs');
  const marker = el('marker', { id: 'seq-arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' });
  marker.append(el('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'seq-arrowhead' }));
  defs.append(marker);
  root.append(defs);
  for (const id of lifelines) root.append(el('line', { class: `lifeline${id === options.selected ? ' selected' : ''}`, x1: x(id), y1: 0, x2: x(id), y2: height }));
  rows.forEach((e, i) => root.append(message(e, i, x)));
  box.replaceChildren(head, root);
}

/**
 * One event's row: its time, its arrow, its label (type and payload) on a plate above it.
 *
 * @param {any} e timeline entry
 * @param {number} i row
 * @param {(id: string) => number} x a lifeline's centre
 */
function message(e, i, x) {
  const source = e.source ?? RUNTIME;
  const y = TOP + i * ROW_H + ROW_H - 6;
  const x0 = x(source);
  const x1 = x(e.target);
  const payload = formatPayload(e.payload);
  const text = payload ? `${e.type} ${payload}` : e.type;
  const internal = e.type.startsWith('xstate.');
  const g = el('g', { class: `msg${e.source ? '' : ' external'}${internal ? ' internal' : ''}`, 'data-source': source, 'data-target': e.target, 'data-type': e.type });
  if (e.seq !== undefined) g.setAttribute('data-seq', String(e.seq));
  g.append(el('title', {}, `#${e.seq ?? '?'} at ${e.t.toFixed(1)} ms: ${source} → ${e.target}: ${e.type}${payload ? ` (${payload})` : ''}${e.to !== undefined ? `; ${e.from || '(no state)'} → ${e.to}` : ''}`));
  g.append(el('text', { class: 't', x: LEFT - 8, y: y + 4, 'text-anchor': 'end' }, e.t.toFixed(1)));
  if (x0 === x1) {
    // To itself: a small loop on the right of its lifeline.
    g.append(el('path', { class: 'arrow', d: `M ${x0} ${y - 8} h 22 v 10 h -20`, 'marker-end': 'url(#seq-arrow)' }));
  } else {
    g.append(el('line', { class: 'arrow', x1: x0, y1: y, x2: x1, y2: y, 'marker-end': 'url(#seq-arrow)' }));
  }
  // Over the arrow, beside its start: long labels run on over the next lifelines, never under
  // the arrowhead, and a plate keeps the lines crossed from cutting through the text.
  const lx = x0 === x1 ? x0 + 26 : Math.min(x0, x1) + 6;
  const max = Math.max(Math.abs(x1 - x0) - 12, 2 * COL_W - 20);
  const shown = text.length * CHAR_W > max && x0 !== x1 ? `${text.slice(0, Math.max(4, Math.floor(max / CHAR_W) - 1))}…` : text;
  g.append(el('rect', { class: 'plate', x: lx - 2, y: y - 15, width: shown.length * CHAR_W + 4, height: 12, rx: 2 }));
  g.append(el('text', { class: 'label', x: lx, y: y - 5.5 }, shown));
  return g;
}
