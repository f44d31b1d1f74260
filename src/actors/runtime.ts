import type { AnyActorLogic, AnyActorRef } from 'xstate';
import type { TracerPool } from './tracerPool.js';
import type { MemoryFile, FileRange } from '../memoryFile.js';
import type { StubRegion } from '../abi/stub.js';
import type { Subprocess } from './subprocess.js';
import type { ContextSlots } from './contextSlots.js';
import type { RunnerPool } from './runnerPool.js';

/**
 * What the actors of one platform share. Built by createPlatform(); internal.
 * Protected by: the event loop (all fields are touched on the main thread only).
 */
export interface Runtime {
  readonly tracers: TracerPool;
  readonly memoryFile: MemoryFile;
  readonly region: StubRegion;
  /** The seccomp rules area (sock_fprog + sysmsg-thread filter), mapped read-only in stubs. */
  readonly rules: FileRange;
  /** Most sysmsg threads per stub. */
  readonly maxSysmsgThreads: number;
  /** Runner workers for the contexts' fast path (created on first use). */
  runners(): RunnerPool;
  /** Context ids and their ThreadContext slots (a slot is kept for its id's next user). */
  readonly contexts: ContextSlots;
  /** Spawns a machine actor into the platform's actor system under this system id. */
  spawn(id: string, logic: AnyActorLogic, input?: unknown): void;
  /** Looks up an actor of the system. */
  get(id: string): AnyActorRef | undefined;
  /** A live stub the platform must kill on close. */
  track(sp: Subprocess): void;
  /** A stub that is gone (reaped). */
  untrack(sp: Subprocess): void;
  /** A stub that died: drop it from the pool if it waited there. */
  forget(sp: Subprocess): void;
}
