import { setup, assign, enqueueActions, stopChild } from 'xstate';
import { subprocessMachine } from './subprocess.js';
import { syscallThreadMachine } from './syscallThread.js';
import { sysmsgThreadMachine } from './sysmsgThread.js';
import { platformContextMachine } from './platformContext.js';
import { taskMachine } from './task.js';
import { processMachine } from './process.js';

/**
 * The machines whose actors live in a platform's actor system, by kind: the pool spawns them
 * (setup's `actors`), so one inspection observer sees every one of them.
 */
export const ACTOR_LOGIC = {
  subprocess: subprocessMachine,
  syscallThread: syscallThreadMachine,
  sysmsgThread: sysmsgThreadMachine,
  platformContext: platformContextMachine,
  task: taskMachine,
  process: processMachine,
} as const;

/** A kind of actor the pool spawns. */
export type ActorKind = keyof typeof ACTOR_LOGIC;

/** An actor of a kind to spawn, under a system id, with the input its machine takes. */
export type SpawnSpec =
  | { kind: 'subprocess' | 'platformContext' | 'task'; id: string }
  | { kind: 'syscallThread'; id: string; input: { pid: number } }
  | { kind: 'sysmsgThread'; id: string; input: { slot: number } }
  | { kind: 'process'; id: string; input: { pid: number; parent?: string } };

/** Spawns an actor (see {@link SpawnSpec}). */
export type SpawnEvent = { type: 'SPAWN' } & SpawnSpec;

/** Events of the subprocess pool. */
export type PoolEvent =
  | { type: 'SOURCE_READY'; pid: number }
  | { type: 'SOURCE_FAILED'; reason: string }
  | { type: 'MARK_AVAILABLE'; id: string }
  | { type: 'FETCH'; id: string }
  | { type: 'FORGET'; id: string }
  | SpawnEvent
  | { type: 'STOP_CHILD'; id: string }
  | ChildDone
  | { type: 'CLOSE' }
  | { type: 'CLOSED' };

/**
 * A child reached its final state (xstate sends it to the parent). The pool lets go of it then:
 * a platform that runs programs for days spawns an actor per stub, thread and context, and every
 * spawn copies the map of live children (a leak that also made each spawn slower).
 */
export type ChildDone = { type: `xstate.done.actor.${string}`; actorId: string };

export interface PoolContext {
  /** Pid of the source stub every other stub is cloned from. */
  sourcePid?: number;
  /** Released subprocesses ready for reuse, most recent last (LIFO, as gVisor's pool). */
  available: string[];
  /** Most subprocesses kept; 0 disables pooling. */
  maxAvailable: number;
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
  actors: ACTOR_LOGIC,
  actions: {
    // The spawned actors are the pool's children in its snapshot (xstate's registry, which the
    // inspector shows): no copy of them in the context, which each spawn and stop would copy again.
    spawnActor: enqueueActions(({ event, enqueue }) => {
      if (event.type !== 'SPAWN') return;
      // The system id is the actor's name ('subprocess:3'): one system per platform, so ids
      // are unique per platform.
      const options = { id: event.id, systemId: event.id };
      switch (event.kind) {
        case 'syscallThread':
          return enqueue.spawnChild('syscallThread', { ...options, input: event.input });
        case 'sysmsgThread':
          return enqueue.spawnChild('sysmsgThread', { ...options, input: event.input });
        case 'process':
          return enqueue.spawnChild('process', { ...options, input: event.input });
        default:
          return enqueue.spawnChild(event.kind, options);
      }
    }),
    recordSource: assign({ sourcePid: ({ event }) => (event.type === 'SOURCE_READY' ? event.pid : undefined) }),
    recordFailure: assign({ reason: ({ event }) => (event.type === 'SOURCE_FAILED' ? event.reason : undefined) }),
    addAvailable: assign({ available: ({ context, event }) => (event.type === 'MARK_AVAILABLE' ? [...context.available, event.id] : context.available) }),
    removeAvailable: assign({
      available: ({ context, event }) => ('id' in event ? context.available.filter((id) => id !== event.id) : context.available),
    }),
    emptyPool: assign({ available: [] }),
  },
  guards: {
    hasRoom: ({ context }) => context.available.length < context.maxAvailable,
    isAvailable: ({ context, event }) => 'id' in event && context.available.includes(event.id),
  },
}).createMachine({
  id: 'pool',
  context: ({ input }) => ({ available: [], maxAvailable: input.maxAvailable }),
  initial: 'starting',
  on: {
    SPAWN: { actions: 'spawnActor' },
    STOP_CHILD: { actions: stopChild(({ event }) => event.id) },
    'xstate.done.actor.*': { actions: stopChild(({ event }) => (event as ChildDone).actorId) },
  },
  states: {
    starting: {
      on: {
        SOURCE_READY: { target: 'running', actions: 'recordSource' },
        SOURCE_FAILED: { target: 'closed', actions: 'recordFailure' },
        CLOSE: 'closing',
      },
    },
    running: {
      on: {
        MARK_AVAILABLE: { guard: 'hasRoom', actions: 'addAvailable' },
        FETCH: { guard: 'isAvailable', actions: 'removeAvailable' },
        FORGET: { actions: 'removeAvailable' },
        CLOSE: 'closing',
      },
    },
    closing: {
      entry: 'emptyPool',
      on: { CLOSED: 'closed' },
    },
    closed: { type: 'final' },
  },
});
