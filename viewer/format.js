// Texts the page shows for record fields: an event's payload in one short line, a recording's
// metadata in one header line, a context as indented JSON. Pure (no DOM) so Node tests them.

/** Longest payload text in a timeline line; the whole payload is in the line's tooltip. */
const PAYLOAD_CHARS = 80;

/** Keys whose numbers come with a name (the recorder adds it, see src/inspect/payload.ts). */
const NAMED = [
  ['sysno', 'syscall'],
  ['signo', 'signal'],
  ['errno', 'errnoName'],
];

/**
 * An event's payload in one line: names first with their numbers (`getpid (39)`,
 * `SIGSEGV (11)`, `ENOENT (2)`), then the other fields as `key=value`.
 *
 * @example
 * formatPayload({ sysno: 39, syscall: 'getpid' }); // 'getpid (39)'
 * formatPayload({ pid: 1234 });                    // 'pid=1234'
 *
 * @param {Record<string, unknown> | undefined} payload
 * @returns {string}
 */
export function formatPayload(payload) {
  if (!payload || typeof payload !== 'object') return '';
  const parts = [];
  const used = new Set();
  for (const [num, name] of NAMED)
    if (payload[name] !== undefined) {
      parts.push(payload[num] !== undefined ? `${payload[name]} (${payload[num]})` : String(payload[name]));
      used.add(num).add(name);
    }
  for (const [k, v] of Object.entries(payload)) {
    if (used.has(k)) continue;
    parts.push(`${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  }
  const text = parts.join(' ');
  return text.length > PAYLOAD_CHARS ? `${text.slice(0, PAYLOAD_CHARS - 1)}…` : text;
}

/**
 * A recording's metadata record in one header line, and the details for its tooltip.
 *
 * @example
 * formatMeta({ kind: 'meta', argv: ['ls', '-l'], version: '0.1.0', kernel: '6.1.0', node: 'v22.1.0', date: '2026-01-02T03:04:05.000Z' });
 * // { text: 'ls -l · systrap 0.1.0 · Linux 6.1.0 · Node v22.1.0 · 2026-01-02 03:04:05 UTC', title: '...' }
 *
 * @param {any} meta
 * @returns {{ text: string, title: string }}
 */
export function formatMeta(meta) {
  if (!meta || meta.kind !== 'meta') return { text: '', title: '' };
  const argv = Array.isArray(meta.argv) ? meta.argv.map(quoteArg).join(' ') : (meta.program ?? '');
  const date = typeof meta.date === 'string' ? meta.date.replace('T', ' ').replace(/\.\d+Z$/, ' UTC') : '';
  const parts = [argv, meta.version && `systrap ${meta.version}`, meta.kernel && `Linux ${meta.kernel}`, meta.node && `Node ${meta.node}`, date].filter(Boolean);
  const title = [`program: ${meta.program ?? '(none)'}`, `argv: ${JSON.stringify(meta.argv ?? [])}`, `systrap: ${meta.version ?? '?'}`, `kernel: ${meta.kernel ?? '?'}`, `node: ${meta.node ?? '?'}`, `date: ${meta.date ?? '?'}`].join('\n');
  return { text: parts.join(' · '), title };
}

/** An argument as a shell would need it written. @param {unknown} a */
function quoteArg(a) {
  const s = String(a);
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * A context as the details pane shows it: indented JSON, or a note when none was recorded.
 *
 * @example
 * formatContext({ switches: 3 }); // '{\n  "switches": 3\n}'
 *
 * @param {unknown} context
 */
export function formatContext(context) {
  if (context === undefined) return '(no context recorded)';
  return JSON.stringify(context, null, 2);
}
