import { releaseWorkerFile, type MemoryFileRef } from '../../shm/sharedFile.js';

/**
 * The sentry's mappings of ended processes' own control memory (a fork child's memfd, mapped
 * here when the child was adopted), let go once nothing on this thread reads them: at the
 * host's next idle moment with none of the sentry's execves under way (their promises may
 * still read a process's message), or at the program's end. The main thread frees the memory
 * itself; without this the sentry kept one fd and one mapping per fork child until its host
 * closed. Protected by: the worker's turn.
 *
 * @example
 * ```ts
 * const ended = new EndedMemory(() => kernel.localExec?.pending ?? 0);
 * ended.add(p.ownMemory); // p ended
 * ended.release();        // idle: unmapped unless an execve is under way
 * ```
 */
export class EndedMemory {
  #refs: MemoryFileRef[] = [];

  /** @param pending how many of the sentry's execves are under way (see LocalExecState). */
  constructor(private readonly pending: () => number) {}

  /** A process ended; `ref` is its own memory (undefined: it has none, nothing to do). */
  add(ref: MemoryFileRef | undefined): void {
    if (ref) this.#refs.push(ref);
  }

  /** Unmaps what ended, unless an execve is under way (`programEnded`: whatever is). */
  release(programEnded = false): void {
    if (this.#refs.length === 0 || (this.pending() > 0 && !programEnded)) return;
    for (const ref of this.#refs) releaseWorkerFile(ref);
    this.#refs = [];
  }
}
