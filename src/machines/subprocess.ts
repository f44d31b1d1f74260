import { setup, assign } from 'xstate';

/** Events of a subprocess (a stub process serving one address space at a time). */
export type SubprocessEvent =
  | { type: 'FORKED'; pid: number }
  | { type: 'CREATED' }
  | { type: 'RELEASE' }
  | { type: 'RELEASED'; pooled: boolean }
  | { type: 'REUSE' }
  | { type: 'FAULT'; reason: string }
  | { type: 'DESTROY' }
  | { type: 'EXITED'; reason: string }
  | { type: 'FAILED'; reason: string };

export interface SubprocessContext {
  /** Stub pid, once forked. */
  pid?: number;
  /** Times this stub was taken from the pool. */
  reuses: number;
  /** Why it faulted or died unexpectedly. */
  reason?: string;
  /** True when it died on its own (ESTUBDEAD), false when the runtime killed it. */
  unexpected?: boolean;
}

/**
 * A stub process (gVisor's subprocess), from creation to death.
 *
 * creating.forking (cloned from the source) → creating.initializing (syscall thread prepared)
 * → ready (serving an address space) → releasing (application memory unmapped) → pooled (waiting
 * in the pool) → ready again, or dead. `faulted` is a stub that is alive but no longer trusted;
 * it is never pooled. Any state goes to dead on EXITED (the stub died on its own: ESTUBDEAD)
 * or DESTROY (the runtime killed it).
 *
 * @example
 * ```ts
 * const actor = createActor(subprocessMachine).start();
 * actor.send({ type: 'FORKED', pid: 1234 });
 * ```
 */
export const subprocessMachine = setup({
  types: {
    context: {} as SubprocessContext,
    events: {} as SubprocessEvent,
  },
  actions: {
    died: assign({ reason: ({ event }) => ('reason' in event ? event.reason : undefined), unexpected: true }),
  },
}).createMachine({
  id: 'subprocess',
  context: { reuses: 0 },
  initial: 'creating',
  on: {
    DESTROY: { target: '.dead', actions: assign({ unexpected: false }) },
    EXITED: { target: '.dead', actions: 'died' },
  },
  states: {
    creating: {
      initial: 'forking',
      on: {
        FAILED: { target: 'dead', actions: 'died' },
      },
      states: {
        forking: {
          on: { FORKED: { target: 'initializing', actions: assign({ pid: ({ event }) => event.pid }) } },
        },
        initializing: {
          on: { CREATED: '#subprocess.ready' },
        },
      },
    },
    ready: {
      on: {
        RELEASE: 'releasing',
        FAULT: { target: 'faulted', actions: assign({ reason: ({ event }) => event.reason }) },
      },
    },
    releasing: {
      on: {
        RELEASED: [
          { guard: ({ event }) => event.pooled, target: 'pooled' },
          { target: 'dead', actions: assign({ unexpected: false }) },
        ],
        FAULT: { target: 'faulted', actions: assign({ reason: ({ event }) => event.reason }) },
      },
    },
    pooled: {
      on: {
        REUSE: { target: 'ready', actions: assign({ reuses: ({ context }) => context.reuses + 1 }) },
      },
    },
    faulted: {},
    dead: { type: 'final' },
  },
});
