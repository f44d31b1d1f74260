// The selected actor's snapshot as of the cursor: its state value, status, parent, the event
// that made its current state, and its context (as recorded: JSON-safe and size-capped, see
// src/inspect/payload.ts).

import { formatContext, formatPayload } from './format.js';
import { isFinished } from './model.js';

/**
 * The last event that reached an actor, with its payload (timeline entries, newest last).
 *
 * @example
 * lastEventOf(model, 'platformContext:0'); // { type: 'TRAPPED_SYSCALL', payload: { sysno: 39, ... }, ... }
 *
 * @param {{ timeline: any[] }} model
 * @param {string} id
 */
export function lastEventOf(model, id) {
  for (let k = model.timeline.length - 1; k >= 0; k--) {
    const e = model.timeline[k];
    if (e.target === id && !e.implicit) return e;
  }
  return undefined;
}

/**
 * Fills the details box (`#actor-details`): a definition list with `[data-field]` hooks
 * (`state`, `status`, `machine`, `parent`, `children`, `since`, `event`) and the context in
 * `#actor-context`.
 *
 * @param {HTMLElement} box
 * @param {any} model
 * @param {any} a the actor, or undefined
 */
export function renderDetails(box, model, a) {
  const dl = /** @type {HTMLElement} */ (box.querySelector('dl'));
  const pre = /** @type {HTMLElement} */ (box.querySelector('pre'));
  const title = /** @type {HTMLElement} */ (box.querySelector('.details-title'));
  dl.replaceChildren();
  if (!a) {
    title.textContent = '';
    pre.textContent = 'Select an actor.';
    return;
  }
  title.textContent = a.id;
  const last = lastEventOf(model, a.id);
  const payload = last ? formatPayload(last.payload) : '';
  /** @type {Array<[string, string, string]>} */
  const fields = [
    ['state', 'state', a.state || '(none yet)'],
    ['status', 'status', `${a.status}${isFinished(model, a) ? ' (over)' : ''}`],
    ['machine', 'machine', a.machine],
    ['parent', 'parent', a.parent ?? '—'],
    ['children', 'children', String(a.children.length)],
    ['since', 'since', `${a.since.toFixed(1)} ms`],
    ['event', 'last event', last ? `${last.type}${payload ? ` ${payload}` : ''} at ${last.t.toFixed(1)} ms` : a.lastEvent ?? '—'],
  ];
  for (const [key, label, value] of fields) {
    const dt = document.createElement('dt');
    dt.textContent = label;
    const dd = document.createElement('dd');
    dd.dataset.field = key;
    dd.textContent = value;
    dd.title = value;
    dl.append(dt, dd);
  }
  pre.textContent = formatContext(a.context);
}
