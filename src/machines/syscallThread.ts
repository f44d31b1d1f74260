import { setup, assign } from 'xstate';

/** Events of a syscall thread: the steps of ptrace transactions, plus its death. */
export type SyscallThreadEvent =
  | { type: 'ATTACH' }
  | { type: 'ATTACHED' }
  | { type: 'INJECT' }
  | { type: 'INJECTED' }
  | { type: 'CLONE' }
  | { type: 'CLONED' }
  | { type: 'DETACH' }
  | { type: 'DETACHED' }
  | { type: 'FAILED'; error: string }
  | { type: 'EXITED'; reason?: string };

export interface SyscallThreadContext {
  /** The stub's pid (the syscall thread is the stub's first thread: tid == tgid). */
  pid: number;
  /** Transactions completed. */
  transactions: number;
  /** Why the thread died, once dead. */
  reason?: string;
}

/**
 * The syscall thread of one stub process (gVisor's syscallThread + the ptrace `thread`).
 *
 * `detached` means untraced: parked in group-stop, or serving shared-memory syscall requests in
 * its loop. A ptrace transaction takes it through attaching → attached → (injecting | cloning)*
 * → detaching → detached; the tracer worker reports each step. A transaction that fails without
 * killing the thread still detaches it (FAILED then DETACHED).
 *
 * @example
 * ```ts
 * const actor = createActor(syscallThreadMachine, { input: { pid } }).start();
 * actor.send({ type: 'ATTACH' });
 * ```
 */
export const syscallThreadMachine = setup({
  types: {
    context: {} as SyscallThreadContext,
    events: {} as SyscallThreadEvent,
    input: {} as { pid: number },
  },
  actions: {
    recordReason: assign({ reason: ({ event }) => (event.type === 'EXITED' ? (event.reason ?? 'exited') : undefined) }),
    countTransaction: assign({ transactions: ({ context }) => context.transactions + 1 }),
  },
}).createMachine({
  id: 'syscallThread',
  context: ({ input }) => ({ pid: input.pid, transactions: 0 }),
  initial: 'detached',
  on: {
    EXITED: { target: '.dead', actions: 'recordReason' },
  },
  states: {
    detached: {
      on: { ATTACH: 'attaching' },
    },
    attaching: {
      on: {
        ATTACHED: 'attached',
        FAILED: 'detached', // attach refused (EPERM, …): nothing is attached
      },
    },
    attached: {
      on: {
        INJECT: 'injecting',
        CLONE: 'cloning',
        DETACH: 'detaching',
      },
    },
    injecting: {
      on: { INJECTED: 'attached', DETACH: 'detaching' },
    },
    cloning: {
      on: { CLONED: 'attached', DETACH: 'detaching' },
    },
    detaching: {
      on: {
        DETACHED: { target: 'detached', actions: 'countTransaction' },
      },
    },
    dead: { type: 'final' },
  },
});
