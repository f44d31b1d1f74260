import type { AnyActorRef } from 'xstate';
import type { TracerPool } from './tracerPool.js';
import type { MemoryFile, FileRange } from '../memoryFile.js';
import type { StubRegion } from '../abi/stub.js';
import type { RunnerPool } from './runnerPool.js';
import type { HostPool } from './hostPool.js';
import type { SpawnSpec } from '../machines/pool.js';

/** A stub the platform must kill on close (a Subprocess). */
export interface LiveStub {
  readonly id: string;
  readonly pid: number;
  /** Kills it and resolves once it is reaped. */
  kill(): Promise<void>;
}

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
  /** PlatformOptions.syscallPatching. */
  readonly syscallPatching?: boolean;
  /** Runner workers for the contexts' fast path (created on first use). */
  runners(): RunnerPool;
  /** Sentry hosts: workers that run many programs' sentries each (created on first use). */
  hosts(): HostPool;
  /**
   * Spawns a machine actor of a kind into the platform's actor system under its system id
   * (`{ kind: 'subprocess', id: 'subprocess:3' }`) and returns it.
   */
  spawn(spec: SpawnSpec): AnyActorRef;
  /** The next number for an actor id of this kind (`subprocess:N`): counted per platform. */
  nextId(kind: string): number;
  /** A live stub the platform must kill on close. */
  track(sp: LiveStub): void;
  /** A stub that is gone (reaped). */
  untrack(sp: LiveStub): void;
  /** True when `pid` is a live stub of this platform (tracked). */
  tracks(pid: number): boolean;
  /** A stub that died: drop it from the pool if it waited there. */
  forget(sp: LiveStub): void;
}
