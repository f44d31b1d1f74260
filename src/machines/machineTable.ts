/**
 * A machine without context or guards, compiled into a table: for each state (a dotted path,
 * `inStub.running`) the state each event leads to. Sending an event is one lookup, cheap enough
 * for a hot path where running the interpreter per event is not (the sentry's tasks change state
 * several times per trapped syscall). The machine still decides: the table is derived from it
 * (compileMachine), and an event it ignores leaves the state as it is.
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

/**
 * A compiled machine as data (JSON-able): for each state, the events that change it and where
 * they lead. Written out ahead of time (src/machines/taskTable.ts), it spares a worker loading
 * xstate and running the interpreter over every state and event at its start.
 *
 * @example
 * ```ts
 * const t: MachineTable = { initial: 'a', states: ['a', 'b'], next: { a: { GO: 'b' }, b: {} } };
 * ```
 */
export interface MachineTable {
  readonly initial: string;
  readonly states: readonly string[];
  readonly next: Readonly<Record<string, Readonly<Record<string, string>>>>;
}

/**
 * The compiled machine that a table describes.
 *
 * @example
 * ```ts
 * const LIFECYCLE = fromTable<TaskEvent['type']>(TASK_TABLE);
 * LIFECYCLE.next('ready', 'SWITCH'); // 'inStub.running'
 * ```
 */
export function fromTable<E extends string>(t: MachineTable): CompiledMachine<E> {
  // Plain objects, not Maps: V8 looks up a constant property name on a small object faster.
  const table: Record<string, Record<string, string>> = Object.create(null);
  for (const s of t.states) table[s] = Object.assign(Object.create(null) as Record<string, string>, t.next[s]);
  return {
    initial: t.initial,
    states: t.states,
    next(state, event) {
      return table[state]?.[event] ?? state;
    },
  };
}
