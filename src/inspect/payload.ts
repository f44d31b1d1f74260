import { constants } from 'node:os';
import { errnoName } from '../abi/linux.js';
import { syscallName } from '../abi/syscalls.js';

/**
 * JSON-safe, size-capped copies of what actors carry (event payloads, machine contexts), for
 * the inspector's records. A record must never throw, nor grow without bound: a pool's context
 * holds every actor of the system, an error holds a stack, a payload may hold a bigint.
 *
 * @module
 */

/** Most characters of one string kept (longer ones end with `…`). */
const MAX_STRING = 200;
/** Most entries of one array or object kept. */
const MAX_ENTRIES = 40;
/** Deepest nesting kept (deeper values become `'…'`). */
const MAX_DEPTH = 4;

/** An actor reference, as xstate makes them: shown by its id rather than its machinery. */
function isActorRef(v: object): v is { id: string } {
  const o = v as { id?: unknown; send?: unknown; getSnapshot?: unknown };
  return typeof o.id === 'string' && typeof o.send === 'function' && typeof o.getSnapshot === 'function';
}

/**
 * A JSON-safe copy of `value`: bigints as decimal strings, actor refs as `actor:ID`, Errors as
 * their message, Maps as objects, Sets as arrays, functions and symbols dropped; strings, arrays
 * and objects cut (see the limits above), cycles cut.
 *
 * @example
 * ```ts
 * jsonSafe({ rip: 0x401000n, ref: someActor }); // { rip: '4198400', ref: 'actor:subprocess:1' }
 * ```
 */
export function jsonSafe(value: unknown, depth = 0, seen: Set<object> = new Set()): unknown {
  switch (typeof value) {
    case 'string':
      return value.length > MAX_STRING ? `${value.slice(0, MAX_STRING)}…` : value;
    case 'number':
      return Number.isFinite(value) ? value : String(value);
    case 'boolean':
      return value;
    case 'bigint':
      return value.toString();
    case 'object':
      break;
    default:
      return undefined; // undefined, functions, symbols: JSON has no place for them
  }
  if (value === null) return null;
  if (isActorRef(value)) return `actor:${value.id}`;
  if (value instanceof Error) return `${value.name}: ${value.message}`.slice(0, MAX_STRING);
  if (depth >= MAX_DEPTH || seen.has(value)) return '…';
  seen.add(value);
  try {
    if (ArrayBuffer.isView(value)) return `(${value.byteLength} bytes)`;
    if (Array.isArray(value) || value instanceof Set) {
      const all = [...value];
      const out = all.slice(0, MAX_ENTRIES).map((x) => jsonSafe(x, depth + 1, seen) ?? null);
      if (all.length > MAX_ENTRIES) out.push(`… ${all.length - MAX_ENTRIES} more`);
      return out;
    }
    const entries = value instanceof Map ? [...value].map(([k, v]) => [String(k), v] as const) : Object.entries(value);
    const out: Record<string, unknown> = {};
    let n = 0;
    for (const [k, v] of entries) {
      const safe = jsonSafe(v, depth + 1, seen);
      if (safe === undefined) continue;
      if (n++ === MAX_ENTRIES) {
        out['…'] = `${entries.length - MAX_ENTRIES} more`;
        break;
      }
      out[k] = safe;
    }
    return out;
  } finally {
    seen.delete(value);
  }
}

/**
 * Most characters of one context in a record: a bigger one is cut to its JSON text's start.
 *
 * @example
 * ```ts
 * JSON.stringify(contextJson(ctx)).length; // about MAX_CONTEXT_CHARS at most
 * ```
 */
export const MAX_CONTEXT_CHARS = 4000;

/**
 * An actor's context for a snapshot record: {@link jsonSafe}, and when its JSON text is longer
 * than {@link MAX_CONTEXT_CHARS}, `{ truncated: <the first characters> }` instead, so that one
 * huge context does not make every record of a long run huge.
 *
 * @example
 * ```ts
 * contextJson({ switches: 3 }); // { switches: 3 }
 * ```
 */
export function contextJson(context: unknown): unknown {
  const safe = jsonSafe(context);
  if (safe === undefined) return undefined;
  const text = JSON.stringify(safe);
  return text.length > MAX_CONTEXT_CHARS ? { truncated: `${text.slice(0, MAX_CONTEXT_CHARS)}…` } : safe;
}

/** A signal's name (`SIGSEGV`) from Node's own table, or `SIG<n>` for a real-time one. */
function signalName(signo: number): string {
  for (const [name, value] of Object.entries(constants.signals)) if (value === signo) return name;
  return `SIG${signo}`;
}

/**
 * The payload of an event for its record: every field but `type`, JSON-safe, with names next to
 * the numbers a reader would otherwise look up: `syscall` for `sysno`, `signal` for `signo`,
 * `errnoName` for `errno` (positive or negative). Undefined when the event carries nothing.
 *
 * @example
 * ```ts
 * eventPayload({ type: 'TRAPPED_SYSCALL', sysno: 39 }); // { sysno: 39, syscall: 'getpid' }
 * eventPayload({ type: 'CLOSE' });                      // undefined
 * ```
 */
export function eventPayload(event: { type: string } & Record<string, unknown>): Record<string, unknown> | undefined {
  const out: Record<string, unknown> = {};
  let any = false;
  for (const [k, v] of Object.entries(event)) {
    if (k === 'type') continue;
    const safe = jsonSafe(v, 1);
    if (safe === undefined) continue;
    out[k] = safe;
    any = true;
  }
  if (!any) return undefined;
  const num = (v: unknown) => (typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : undefined);
  const sysno = num(event.sysno);
  if (sysno !== undefined && sysno >= 0 && !('syscall' in out)) out.syscall = syscallName(sysno);
  const signo = num(event.signo);
  if (signo !== undefined && signo > 0 && !('signal' in out)) out.signal = signalName(signo);
  const errno = num(event.errno);
  if (errno !== undefined && errno !== 0) out.errnoName = errnoName(Math.abs(errno));
  return out;
}
