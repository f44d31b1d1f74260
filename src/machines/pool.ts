import { setup, assign, stopChild, type AnyActorLogic, type AnyActorRef } from 'xstate';

/** Events of the subprocess pool. */
export type PoolEvent =
  | { type: 'SOURCE_READY'; pid: number }
  | { type: 'SOURCE_FAILED'; reason: string }
  | { type: 'MARK_AVAILABLE'; id: string }
  | { type: 'FETCH'; id: string }
  | { type: 'FORGET'; id: string }
  | { type: 'SPAWN'; id: string; logic: AnyActorLogic; input?: unknown }
  | { type: 'STOP_CHILD'; id: string }
  | { type: 'CLOSE' }
  | { type: 'CLOSED' };

export interface PoolContext {
  /** Pid of the source stub every other stub is cloned from. */
  sourcePid?: number;
  /** Released subprocesses ready for reuse, most recent last (LIFO, as gVisor's pool). */
  available: string[];
  /** Most subprocesses kept; 0 disables pooling. */
  maxAvailable: number;
  /** The actors of the system (subprocesses, syscall threads), by system id. */
  children: Record<string, AnyActorRef>;
  reason?: string;
}

/**
 * The subprocess pool (gVisor's globalPool): owns the source stub and the list of released
 * subprocesses that newAddressSpace() may reuse (fetchAvailable / markAvailable).
 *
 * @example
 * ```ts
 * const pool = createActor(poolMachine, { input: { maxAvailable: 16 } }).start();
 * pool.send({ type: 'SOURCE_READY', pid });
 * ```
 */
export const poolMachine = setup({
  types: {
    context: {} as PoolContext,
    events: {} as PoolEvent,
    input: {} as { maxAvailable: number },
  },
  guards: {
    hasRoom: ({ context }) => context.available.length < context.maxAvailable,
    isAvailable: ({ context, event }) => 'id' in event && context.available.includes(event.id),
  },
}).createMachine({
  id: 'pool',
  context: ({ input }) => ({ available: [], maxAvailable: input.maxAvailable, children: {} }),
  initial: 'starting',
  on: {
    // Every subprocess and syscall thread is spawned here so that one actor system, and so one
    // inspection observer, sees them all. The system id is the actor's name: 'subprocess:3'.
    SPAWN: {
      actions: assign({
        children: ({ context, event, spawn }) => {
          // spawn's typing only knows the machine's declared actors; these are provided per event.
          const spawnAny = spawn as unknown as (
            logic: AnyActorLogic,
            options: { id: string; systemId: string; input?: unknown },
          ) => AnyActorRef;
          return { ...context.children, [event.id]: spawnAny(event.logic, { id: event.id, systemId: event.id, input: event.input }) };
        },
      }),
    },
    STOP_CHILD: {
      actions: [
        stopChild(({ event }) => event.id),
        assign({
          children: ({ context, event }) => {
            const { [event.id]: _gone, ...rest } = context.children;
            return rest;
          },
        }),
      ],
    },
  },
  states: {
    starting: {
      on: {
        SOURCE_READY: { target: 'running', actions: assign({ sourcePid: ({ event }) => event.pid }) },
        SOURCE_FAILED: { target: 'closed', actions: assign({ reason: ({ event }) => event.reason }) },
        CLOSE: 'closing',
      },
    },
    running: {
      on: {
        MARK_AVAILABLE: {
          guard: 'hasRoom',
          actions: assign({ available: ({ context, event }) => [...context.available, event.id] }),
        },
        FETCH: {
          guard: 'isAvailable',
          actions: assign({ available: ({ context, event }) => context.available.filter((id) => id !== event.id) }),
        },
        FORGET: {
          actions: assign({ available: ({ context, event }) => context.available.filter((id) => id !== event.id) }),
        },
        CLOSE: 'closing',
      },
    },
    closing: {
      entry: assign({ available: [] }),
      on: { CLOSED: 'closed' },
    },
    closed: { type: 'final' },
  },
});
