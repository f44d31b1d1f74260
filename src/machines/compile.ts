import { initialTransition, transition, type AnyStateMachine, type StateValue } from 'xstate';

/**
 * A machine without context or guards, compiled into a table: for each state (a dotted path,
 * `inStub.running`) the state each event leads to. Sending an event is one lookup, cheap enough
 * for a hot path where running the interpreter per event is not (the sentry's tasks change state
 * several times per trapped syscall). The machine still decides: the table is derived from it,
 * and an event it ignores leaves the state as it is.
 *
 * @example
 * ```ts
 * const table = compileMachine(taskMachine, TASK_EVENTS);
 * let s = table.initial;          // 'ready'
 * s = table.next(s, 'SWITCH');    // 'inStub.running'
 * ```
 */
export interface CompiledMachine<E extends string> {
  readonly initial: string;
  /** The state `event` leads to from `state` (the same state when the machine ignores it). */
  next(state: string, event: E): string;
  /** Every state (leaf paths). */
  readonly states: readonly string[];
}

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
 * Compiles `machine` over `events`. Precondition: the machine's transitions depend on the state
 * and the event type only (no guards, no context): what the table cannot represent.
 */
export function compileMachine<E extends string>(machine: AnyStateMachine, events: readonly E[]): CompiledMachine<E> {
  const states = leaves(machine.root, '');
  // Plain objects, not Maps: V8 looks up a constant property name on a small object faster.
  const table: Record<string, Record<string, string>> = Object.create(null);
  for (const s of states) {
    const row: Record<string, string> = Object.create(null);
    const snap = machine.resolveState({ value: stateValue(s), context: {} });
    for (const e of events) {
      const [next] = transition(machine, snap, { type: e });
      row[e] = stateString(next.value);
    }
    table[s] = row;
  }
  const initial = stateString(initialTransition(machine)[0].value);
  return {
    initial,
    states,
    next(state, event) {
      return table[state]?.[event] ?? state;
    },
  };
}
