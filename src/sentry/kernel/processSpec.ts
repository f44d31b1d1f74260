import type { FileRange } from '../../memoryFile.js';
import type { MemoryFileRef } from '../../shm/sharedFile.js';
import type { SyscallMsg } from '../protocol.js';

/**
 * What a process is made of, from the main thread: its stub, its control memory, its first
 * thread (a ThreadGroup is made of one).
 *
 * @example
 * ```ts
 * const p = new ThreadGroup(tree, { pid, nsPid, memory, queue, main, brkStart, exe }, parent);
 * ```
 */
export interface ProcessSpec {
  /** The stub's pid as Node sees it. */
  pid: number;
  /** Its pid in its own namespace: what the program sees. */
  nsPid: number;
  /** The file its queue and its contexts' slots are in. */
  memory: MemoryFileRef;
  queue: FileRange;
  main: { id: number; slot: FileRange }; // its first thread's context
  brkStart: bigint;
  exe: string;
  /** Its syscall thread's message in `memory` (the sentry's own execve, see localExec.ts). */
  syscallMsg?: SyscallMsg;
  /** Its rules area in `memory` (its program filter and trace spec): a fork by the sentry copies it (see localFork.ts). */
  rules?: FileRange;
  /** `memory` is the process's own (a fork child's control memory): unmapped here once it ended (see Kernel.processEnded). */
  ownMemory?: boolean;
}
