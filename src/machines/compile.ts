import { initialTransition, transition, type AnyStateMachine, type StateValue } from 'xstate';
import { fromTable, type CompiledMachine, type MachineTable } from './machineTable.js';

export type { CompiledMachine, MachineTable } from './machineTable.js';

/** `{ a: { b: 'c' } }` → 'a.b.c'. */
export function stateString(v: StateValue): string {
  if (typeof v === 'string') return v;
  const [k] = Object.keys(v);
  const sub = v[k];
  return sub === undefined ? k : `${k}.${stateString(sub)}`;
}

function stateValue(path: string): StateValue {
  const parts = path.split('.');
  let v: StateValue = parts.pop()!;
  while (parts.length) v = { [parts.pop()!]: v };
  return v;
}

/** What compileMachine reads of a state node: its key and its child states. */
interface StateTree {
  readonly key: string;
  readonly states: Readonly<Record<string, StateTree>>;
}

/** Leaf state paths of a state node's children. */
function leaves(node: StateTree, prefix: string): string[] {
  const children = Object.values(node.states);
  if (children.length === 0) return [prefix];
  return children.flatMap((c) => leaves(c, prefix ? `${prefix}.${c.key}` : c.key));
}

/**
 * The table of `machine` over `events` (see MachineTable): only the events that change a state
 * are listed. Precondition: the machine's transitions depend on the state and the event type
 * only (no guards, no context): what the table cannot represent.
 *
 * @example
 * ```ts
 * const t = machineTable(taskMachine, TASK_EVENTS); // t.next.ready.SWITCH === 'inStub.running'
 * ```
 */
export function machineTable(machine: AnyStateMachine, events: readonly string[]): MachineTable {
  const states = leaves(machine.root, '');
  const next: Record<string, Record<string, string>> = {};
  for (const s of states) {
    const row: Record<string, string> = {};
    const snap = machine.resolveState({ value: stateValue(s), context: {} });
    for (const e of events) {
      const [to] = transition(machine, snap, { type: e });
      if (stateString(to.value) !== s) row[e] = stateString(to.value);
    }
    next[s] = row;
  }
  return { initial: stateString(initialTransition(machine)[0].value), states, next };
}

/**
 * Compiles `machine` over `events` (see CompiledMachine; the precondition of machineTable).
 *
 * @example
 * ```ts
 * const table = compileMachine(taskMachine, TASK_EVENTS);
 * table.next(table.initial, 'SWITCH'); // 'inStub.running'
 * ```
 */
export function compileMachine<E extends string>(machine: AnyStateMachine, events: readonly E[]): CompiledMachine<E> {
  return fromTable<E>(machineTable(machine, events));
}
