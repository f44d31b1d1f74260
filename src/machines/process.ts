import { setup } from 'xstate';

/**
 * Events of a program's process, as the sentry reports them: STOP / CONTINUE (job control),
 * EXIT (it ended: a zombie until its parent waits), REAP (waited for, or reaped by the tree's
 * parent).
 */
export type ProcessEvent =
  /** Stopped by `signal` (a stop signal, or SIGSTOP). */
  | { type: 'STOP'; signal?: number }
  | { type: 'CONTINUE' }
  /** Ended: exited with `status`, or killed by `signal` (what the inspector's timeline shows). */
  | { type: 'EXIT'; status?: number; signal?: number }
  | { type: 'REAP' };

export interface ProcessContext {
  /** Its pid as the program sees it. */
  pid: number;
  /** The actor id of its parent process (the inspector's tree shows it under that one). */
  parent?: string;
}

/**
 * A process of a program under the sentry (gVisor's ThreadGroup lifecycle, reduced): running,
 * stopped by a stop signal until SIGCONT, a zombie once it ended, reaped once its parent (or
 * the tree's) waited for it. Pure: the sentry reports, the actor records.
 *
 * ```
 * running ──STOP──▶ stopped ──CONTINUE──▶ running
 * running/stopped ──EXIT──▶ zombie ──REAP──▶ reaped
 * ```
 *
 * @example
 * ```ts
 * const a = createActor(processMachine, { input: { pid: 2 } }).start();
 * a.send({ type: 'EXIT' }); // 'zombie'
 * ```
 */
export const processMachine = setup({
  types: {
    context: {} as ProcessContext,
    events: {} as ProcessEvent,
    input: {} as ProcessContext,
  },
}).createMachine({
  id: 'process',
  context: ({ input }) => ({ pid: input.pid, ...(input.parent ? { parent: input.parent } : {}) }),
  initial: 'running',
  states: {
    running: { on: { STOP: 'stopped', EXIT: 'zombie' } },
    stopped: { on: { CONTINUE: 'running', EXIT: 'zombie' } },
    zombie: { on: { REAP: 'reaped' } },
    reaped: { type: 'final' },
  },
});
