import type { AnyStateMachine, InspectionEvent } from 'xstate';
import { poolMachine } from '../machines/pool.js';
import { subprocessMachine } from '../machines/subprocess.js';
import { syscallThreadMachine } from '../machines/syscallThread.js';
import { sysmsgThreadMachine } from '../machines/sysmsgThread.js';
import { platformContextMachine } from '../machines/platformContext.js';
import { taskMachine } from '../machines/task.js';

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
 * What the inspector records and serves, one JSON object per line (JSONL) or per WebSocket
 * message. `t` is milliseconds since the recording started; `seq` orders records.
 */
export type InspectRecord =
  | { kind: 'machines'; machines: MachineDef[] }
  | { kind: 'actor'; seq: number; t: number; id: string; parent?: string; machine?: string }
  | { kind: 'snapshot'; seq: number; t: number; id: string; value: string; status: string; event?: string }
  | { kind: 'event'; seq: number; t: number; source?: string; target: string; type: string };

/** The machines of the runtime, by machine id. */
export const MACHINES: AnyStateMachine[] = [poolMachine, subprocessMachine, syscallThreadMachine, sysmsgThreadMachine, platformContextMachine, taskMachine];

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

/**
 * Turns xstate inspection events into {@link InspectRecord}s (actors, their snapshots and the
 * events between them), numbered in the order they happened.
 *
 * @example
 * ```ts
 * const rec = new InspectionRecorder((r) => lines.push(JSON.stringify(r)));
 * const platform = await createPlatform({ inspect: rec.observer });
 * ```
 */
/** The id of a platform's root actor (the pool machine): see Platform. */
const ROOT_ID = 'pool';

export class InspectionRecorder {
  #seq = 0;
  readonly #t0 = performance.now();

  constructor(readonly emit: (r: InspectRecord) => void) {
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
      const s = e.snapshot as { value?: unknown; status?: string };
      this.emit({ kind: 'snapshot', seq: this.#seq++, t, id, value: stateString(s.value), status: s.status ?? 'active', event: e.event?.type });
    } else if (e.type === '@xstate.event') {
      this.emit({ kind: 'event', seq: this.#seq++, t, target: id, type: e.event.type, ...(e.sourceRef ? { source: (e.sourceRef as unknown as { id: string }).id } : {}) });
    }
  };
}
