import type { MessagePort } from 'node:worker_threads';
import type { FileRange, MemoryFileRef } from './memoryFile.js';

/**
 * What a host worker is started with (see HostPool): the memory file, the word in it the main
 * thread bumps and wakes when it posts to the host (the host may sleep on futexes only, never
 * on its event loop), and the port for tasks and their results.
 *
 * @example
 * ```ts
 * const host = new SentryHost(workerData as HostData);
 * ```
 */
export interface HostData {
  memory: MemoryFileRef;
  wake: FileRange;
  port: MessagePort;
}

/**
 * Main thread → host: a task to run (its id is the main thread's), or the end of the host
 * (every task still running ends with an error result first).
 */
export type HostMessage<T> = { type: 'run'; id: number; task: T } | { type: 'close' };

/** Host → main thread: how a task ended. */
export interface HostReply {
  type: 'result';
  id: number;
  result: unknown;
}
