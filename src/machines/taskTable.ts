import type { MachineTable } from './machineTable.js';

/**
 * The task machine (src/machines/task.ts) as a table, written out ahead of time: the sentry
 * worker runs its tasks through it (see CompiledMachine) without loading xstate or running the
 * interpreter at its start. test/machines.test.ts checks it against machineTable(taskMachine,
 * TASK_EVENTS), and prints the table anew when the machine has changed.
 *
 * @example
 * ```ts
 * const LIFECYCLE = fromTable<TaskEvent['type']>(TASK_TABLE);
 * ```
 */
export const TASK_TABLE: MachineTable = {
  initial: 'ready',
  states: ['ready', 'inStub.running', 'inStub.runningKicked', 'inStub.passthrough', 'inStub.passthroughKicked', 'trapped', 'blocked.futex', 'blocked.sleeping', 'blocked.suspended', 'blocked.exec', 'stopped', 'exited'],
  next: {
    ready: { SWITCH: 'inStub.running', SWITCH_PASS: 'inStub.passthrough', STOP: 'stopped', EXIT: 'exited' },
    'inStub.running': { KICK: 'inStub.runningKicked', TRAP: 'trapped', EXIT: 'exited' },
    'inStub.runningKicked': { TRAP: 'trapped', EXIT: 'exited' },
    'inStub.passthrough': { KICK: 'inStub.passthroughKicked', TRAP: 'trapped', EXIT: 'exited' },
    'inStub.passthroughKicked': { TRAP: 'trapped', EXIT: 'exited' },
    trapped: { RETURN: 'ready', WAIT_FUTEX: 'blocked.futex', SLEEP: 'blocked.sleeping', SUSPEND: 'blocked.suspended', WAIT_EXEC: 'blocked.exec', STOP: 'stopped', EXIT: 'exited' },
    'blocked.futex': { WAKE: 'ready', EXIT: 'exited' },
    'blocked.sleeping': { WAKE: 'ready', EXIT: 'exited' },
    'blocked.suspended': { WAKE: 'ready', EXIT: 'exited' },
    'blocked.exec': { WAKE: 'ready', EXIT: 'exited' },
    stopped: { CONTINUE: 'ready', EXIT: 'exited' },
    exited: {},
  },
};
