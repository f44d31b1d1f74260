import { setup, assign } from 'xstate';

/** Events of a subprocess (a stub process serving one address space at a time). */
export type SubprocessEvent =
  | { type: 'FORKED'; pid: number }
  | { type: 'CREATED' }
  | { type: 'RELEASE' }
  | { type: 'RELEASED'; pooled: boolean }
  | { type: 'REUSE' }
  | { type: 'FAULT'; reason: string }
  | { type: 'KILL' }
  | { type: 'EXITED'; reason: string }
  | { type: 'FAILED'; reason: string };

export interface SubprocessContext {
  /** Stub pid, once forked. */
  pid?: number;
  /** Times this stub was taken from the pool. */
  reuses: number;
  /** Why it faulted or died unexpectedly. */
  reason?: string;
  /** The runtime asked for its death (release without pooling, close): its exit is expected. */
  killRequested: boolean;
  /** True when it died on its own (ESTUBDEAD), false when the runtime killed it. */
  unexpected?: boolean;
}

/**
 * A stub process (gVisor's subprocess), from creation to death.
 *
 * creating.forking (cloned from the source) → creating.initializing (syscall thread prepared)
 * → ready (serving an address space) → releasing (application memory unmapped) → pooled (waiting
 * in the pool) → ready again, or dead. `faulted` is a stub that is alive but no longer trusted;
 * it is never pooled. KILL records that the runtime asked for its death (the stub lives until
 * its exit is seen); EXITED is its death as seen (its pidfd, or an operation that met it): the
 * machine decides whether that was the runtime's kill or the stub dying on its own (ESTUBDEAD).
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
    recordPid: assign({ pid: ({ event }) => (event.type === 'FORKED' ? event.pid : undefined) }),
    recordKill: assign({ killRequested: true }),
    recordReason: assign({ reason: ({ event }) => ('reason' in event ? event.reason : undefined) }),
    diedExpectedly: assign({ unexpected: false }),
    diedUnexpectedly: assign({ reason: ({ event }) => ('reason' in event ? event.reason : undefined), unexpected: true }),
    countReuse: assign({ reuses: ({ context }) => context.reuses + 1 }),
  },
  guards: {
    killRequested: ({ context }) => context.killRequested,
    pooled: ({ event }) => event.type === 'RELEASED' && event.pooled,
  },
}).createMachine({
  id: 'subprocess',
  context: { reuses: 0, killRequested: false },
  initial: 'creating',
  on: {
    KILL: { actions: 'recordKill' },
    EXITED: [
      { guard: 'killRequested', target: '.dead', actions: 'diedExpectedly' },
      { target: '.dead', actions: 'diedUnexpectedly' },
    ],
  },
  states: {
    creating: {
      initial: 'forking',
      on: {
        FAILED: { target: 'dead', actions: 'diedUnexpectedly' },
      },
      states: {
        forking: {
          on: { FORKED: { target: 'initializing', actions: 'recordPid' } },
        },
        initializing: {
          on: { CREATED: '#subprocess.ready' },
        },
      },
    },
    ready: {
      on: {
        RELEASE: 'releasing',
        FAULT: { target: 'faulted', actions: 'recordReason' },
      },
    },
    releasing: {
      on: {
        RELEASED: [{ guard: 'pooled', target: 'pooled' }, { target: 'dead', actions: 'diedExpectedly' }],
        FAULT: { target: 'faulted', actions: 'recordReason' },
      },
    },
    pooled: {
      on: {
        REUSE: { target: 'ready', actions: 'countReuse' },
      },
    },
    faulted: {},
    dead: { type: 'final' },
  },
});
