import { release } from 'node:os';
import type { AnyStateMachine, InspectionEvent } from 'xstate';
import { systrapVersion } from '../cliUsage.js';
import { contextJson, eventPayload } from './payload.js';
import { poolMachine } from '../machines/pool.js';
import { subprocessMachine } from '../machines/subprocess.js';
import { syscallThreadMachine } from '../machines/syscallThread.js';
import { sysmsgThreadMachine } from '../machines/sysmsgThread.js';
import { platformContextMachine } from '../machines/platformContext.js';
import { taskMachine } from '../machines/task.js';
import { processMachine } from '../machines/process.js';

/** One state of a statechart, as the viewer draws it. */
export interface StateDef {
  /** Full id (`subprocess.creating.forking`). */
  id: string;
  key: string;
  type: string;
  /** Child state ids (compound states). */
  children: string[];
  /** Event type → target state ids. */
  on: Record<string, string[]>;
}

/** A machine's statechart: its states in document order, the root first. */
export interface MachineDef {
  id: string;
  states: StateDef[];
}

/**
 * What a recording is of: the first record of every recording (and of what a live server
 * sends), shown in the viewer's header. `program` and `argv` only when a program was run
 * (`systrap run`); a library's recorder says what it is given.
 *
 * @example
 * ```ts
 * const meta: InspectMeta = inspectMeta({ program: 'ls', argv: ['ls', '-l'] });
 * ```
 */
export interface InspectMeta {
  kind: 'meta';
  /** The program as given on the command line, and its arguments (argv[0] first). */
  program?: string;
  argv?: string[];
  /** systrap's version (package.json). */
  version: string;
  /** When the recording started (ISO 8601, UTC). */
  date: string;
  /** The host kernel's release (`uname -r`). */
  kernel: string;
  /** Node's version (`v22.…`). */
  node: string;
}

/**
 * What the inspector records and serves, one JSON object per line (JSONL) or per WebSocket
 * message. `t` is milliseconds since the recording started; `seq` orders records. A snapshot
 * carries its actor's context (JSON-safe, size-capped: see payload.ts) only when it changed
 * since the actor's previous snapshot; an event carries its payload (every field but `type`,
 * with names beside syscall, signal and errno numbers) when it has one.
 */
export type InspectRecord =
  | InspectMeta
  | { kind: 'machines'; machines: MachineDef[] }
  | { kind: 'actor'; seq: number; t: number; id: string; parent?: string; machine?: string }
  | { kind: 'snapshot'; seq: number; t: number; id: string; value: string; status: string; event?: string; context?: unknown }
  | { kind: 'event'; seq: number; t: number; source?: string; target: string; type: string; payload?: Record<string, unknown> };

/** The machines of the runtime, by machine id. */
export const MACHINES: AnyStateMachine[] = [poolMachine, subprocessMachine, syscallThreadMachine, sysmsgThreadMachine, platformContextMachine, taskMachine, processMachine];

/**
 * The metadata record of a recording starting now, in this process.
 *
 * @example
 * ```ts
 * inspectMeta({ program: 'ls', argv: ['ls', '-l'] }); // { kind: 'meta', program: 'ls', version: '0.1.0', ... }
 * ```
 */
export function inspectMeta(run: { program?: string; argv?: string[] } = {}): InspectMeta {
  return {
    kind: 'meta',
    ...(run.program !== undefined ? { program: run.program } : {}),
    ...(run.argv ? { argv: [...run.argv] } : {}),
    version: systrapVersion(),
    date: new Date().toISOString(),
    kernel: release(),
    node: process.version,
  };
}

/**
 * A machine's statechart for the viewer (its states and transitions; guards and actions left
 * out).
 *
 * @example
 * ```ts
 * const def = describeMachine(subprocessMachine); // { id: 'subprocess', states: [...] }
 * ```
 */
export function describeMachine(machine: AnyStateMachine): MachineDef {
  const states: StateDef[] = [];
  type Node = AnyStateMachine['root'];
  const walk = (n: Node) => {
    const on: Record<string, string[]> = {};
    for (const [ev, ts] of n.transitions) on[ev] = ts.flatMap((t) => (t.target ?? []).map((x) => x.id));
    const children = Object.values(n.states) as Node[];
    states.push({ id: n.id, key: n.key, type: n.type, children: children.map((c) => c.id), on });
    children.forEach(walk);
  };
  walk(machine.root);
  return { id: machine.id, states };
}

/** A state value as one dotted string (`creating.forking`), or several joined with `, `. */
export function stateString(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object')
    return Object.entries(value as Record<string, unknown>)
      .map(([k, v]) => {
        const inner = stateString(v);
        return inner ? `${k}.${inner}` : k;
      })
      .join(', ');
  return '';
}

/** The id of a platform's root actor (the pool machine): see Platform. */
const ROOT_ID = 'pool';

/**
 * Turns xstate inspection events into {@link InspectRecord}s (actors, their snapshots and the
 * events between them), numbered in the order they happened. The first two records say what
 * the recording is of ({@link inspectMeta}) and the machines' statecharts.
 *
 * @example
 * ```ts
 * const rec = new InspectionRecorder((r) => lines.push(JSON.stringify(r)), { program: 'ls', argv: ['ls'] });
 * const platform = await createPlatform({ inspect: rec.observer });
 * ```
 */
export class InspectionRecorder {
  #seq = 0;
  readonly #t0 = performance.now();
  /** Each actor's context as last recorded: xstate replaces a context when it changes (assign), so an identical object means nothing to record. */
  readonly #contexts = new Map<string, unknown>();

  constructor(
    readonly emit: (r: InspectRecord) => void,
    run: { program?: string; argv?: string[] } = {},
  ) {
    emit(inspectMeta(run));
    emit({ kind: 'machines', machines: MACHINES.map(describeMachine) });
  }

  /** The function to pass as `createPlatform({ inspect })`. */
  readonly observer = (e: InspectionEvent): void => {
    const t = Math.round((performance.now() - this.#t0) * 1000) / 1000;
    const id = (e.actorRef as unknown as { id: string }).id;
    if (e.type === '@xstate.actor') {
      const logic = (e.actorRef as unknown as { logic?: { id?: string } }).logic;
      // Every actor of a platform is spawned by its pool, the actor system's root; one whose
      // input names a parent actor (a program's process: its parent process) is shown there.
      // (Its snapshot does not exist yet when this event comes: the input does.)
      const named = (e.actorRef as unknown as { options?: { input?: { parent?: unknown } } }).options?.input?.parent;
      const parent = id === ROOT_ID ? undefined : typeof named === 'string' ? named : ROOT_ID;
      this.emit({ kind: 'actor', seq: this.#seq++, t, id, ...(parent ? { parent } : {}), ...(logic?.id ? { machine: logic.id } : {}) });
    } else if (e.type === '@xstate.snapshot') {
      const s = e.snapshot as { value?: unknown; status?: string; context?: unknown };
      const changed = s.context !== undefined && this.#contexts.get(id) !== s.context;
      if (changed) this.#contexts.set(id, s.context);
      // A finished actor's entry goes: ids are reused (pooled objects re-created), and a long
      // run must not keep every dead actor's context alive.
      if (s.status !== undefined && s.status !== 'active') this.#contexts.delete(id);
      const context = changed ? contextJson(s.context) : undefined;
      this.emit({ kind: 'snapshot', seq: this.#seq++, t, id, value: stateString(s.value), status: s.status ?? 'active', event: e.event?.type, ...(context !== undefined ? { context } : {}) });
    } else if (e.type === '@xstate.event') {
      const payload = eventPayload(e.event as { type: string } & Record<string, unknown>);
      this.emit({ kind: 'event', seq: this.#seq++, t, target: id, type: e.event.type, ...(e.sourceRef ? { source: (e.sourceRef as unknown as { id: string }).id } : {}), ...(payload ? { payload } : {}) });
    }
  };
}
