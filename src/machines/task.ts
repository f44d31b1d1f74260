import { setup } from 'xstate';

/**
 * Events of a task (one thread of a program under the sentry), as the sentry sends them.
 *
 * - SWITCH / SWITCH_PASS: the sentry hands the task to the stub (its program code, or a call
 *   the stub runs for it at the passthrough gadget);
 * - KICK: the sentry interrupts it in the stub (a signal for it, preemption, execve);
 * - TRAP: it came back (a syscall, a fault, the gadget's call done, an interrupt);
 * - RETURN: the sentry is done with the trap, the task runs again next;
 * - WAIT_FUTEX / SLEEP / SUSPEND: the sentry parks it (futex wait, nanosleep, sigsuspend or
 *   pause), holding no stub thread; WAKE ends the wait;
 * - WAIT_EXEC: its execve waits for the main thread (checks, then the new image), which no
 *   signal interrupts; WAKE ends it too;
 * - STOP / CONTINUE: job control (SIGSTOP and friends, SIGCONT);
 * - EXIT: the thread is gone (exit, exit_group, execve of another thread, the program's death).
 */
export type TaskEvent =
  | { type: 'SWITCH' }
  | { type: 'SWITCH_PASS' }
  | { type: 'KICK' }
  | { type: 'TRAP' }
  | { type: 'RETURN' }
  | { type: 'WAIT_FUTEX' }
  | { type: 'SLEEP' }
  | { type: 'SUSPEND' }
  | { type: 'WAIT_EXEC' }
  | { type: 'WAKE' }
  | { type: 'STOP' }
  | { type: 'CONTINUE' }
  | { type: 'EXIT' };

/** Every task event type (for the compiled transition table). */
export const TASK_EVENTS: ReadonlyArray<TaskEvent['type']> = [
  'SWITCH', 'SWITCH_PASS', 'KICK', 'TRAP', 'RETURN', 'WAIT_FUTEX', 'SLEEP', 'SUSPEND', 'WAIT_EXEC', 'WAKE', 'STOP', 'CONTINUE', 'EXIT',
];

/**
 * The lifecycle of a task (gVisor's kernel.Task run states, reduced to a sentry whose threads
 * run in stubs): where the thread is, and so what the sentry may do with it.
 *
 * ```
 * ready ──SWITCH──▶ inStub.running ─┐         ┌─TRAP─▶ trapped ──RETURN──▶ ready
 *       ──SWITCH_PASS─▶ inStub.passthrough ─┘           ├─WAIT_FUTEX/SLEEP/SUSPEND/WAIT_EXEC─▶ blocked.* ──WAKE──▶ ready
 *   (KICK: inStub.*Kicked, one interrupt at a time)     └─STOP─▶ stopped ──CONTINUE──▶ ready
 * any ──EXIT──▶ exited
 * ```
 *
 * `inStub.*` are the states where the stub, not the sentry, holds the task: only there can its
 * trap be published, and only there does an interrupt need a signal. The machine is pure and
 * has no context: the sentry worker runs it through a compiled table (one lookup per event, see
 * `compileMachine`), and the same machine mirrored on the main thread shows the task in the
 * inspector.
 *
 * @example
 * ```ts
 * const a = createActor(taskMachine).start();
 * a.send({ type: 'SWITCH' }); // { inStub: 'running' }
 * ```
 */
export const taskMachine = setup({
  types: { events: {} as TaskEvent },
}).createMachine({
  id: 'task',
  initial: 'ready',
  on: { EXIT: '.exited' },
  states: {
    ready: {
      on: { SWITCH: 'inStub.running', SWITCH_PASS: 'inStub.passthrough', STOP: 'stopped' },
    },
    inStub: {
      initial: 'running',
      on: { TRAP: 'trapped' },
      states: {
        running: { on: { KICK: 'runningKicked' } },
        runningKicked: {},
        passthrough: { on: { KICK: 'passthroughKicked' } },
        passthroughKicked: {},
      },
    },
    trapped: {
      on: {
        RETURN: 'ready',
        WAIT_FUTEX: 'blocked.futex',
        SLEEP: 'blocked.sleeping',
        SUSPEND: 'blocked.suspended',
        WAIT_EXEC: 'blocked.exec',
        STOP: 'stopped',
      },
    },
    blocked: {
      initial: 'futex',
      on: { WAKE: 'ready' },
      states: {
        futex: {},
        sleeping: {},
        suspended: {},
        exec: {},
      },
    },
    stopped: {
      on: { CONTINUE: 'ready' },
    },
    exited: { type: 'final' },
  },
});
