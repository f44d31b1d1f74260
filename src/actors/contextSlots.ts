import type { FileRange, MemoryFile } from '../memoryFile.js';
import { MAX_CONTEXTS } from '../abi/stub.js';
import { THREAD_CONTEXT } from '../abi/sysmsg.js';
import { Errors } from '../errors.js';

/**
 * Context ids (0..4094, gVisor's threadContextPool) and their ThreadContext slots in the memory
 * file. A slot lives as long as the platform: a stub thread may still sleep on a released
 * context's state word, so its memory is never handed to anything else.
 */
export class ContextSlots {
  readonly #slots: FileRange[] = [];
  readonly #free: number[] = [];

  constructor(private readonly memoryFile: MemoryFile) {}

  /** Takes an id (the lowest free one) and its slot. */
  alloc(): { id: number; slot: FileRange } {
    const id = this.#free.length ? this.#free.pop()! : this.#slots.length;
    if (id >= MAX_CONTEXTS) throw Errors.InvalidArg(`too many contexts (at most ${MAX_CONTEXTS})`);
    this.#slots[id] ??= this.memoryFile.allocate(THREAD_CONTEXT.allocatedSize);
    return { id, slot: this.#slots[id] };
  }

  /** Gives an id back. */
  free(id: number): void {
    this.#free.push(id);
  }

  /** The slot of an id. */
  slot(id: number): FileRange {
    return this.#slots[id];
  }
}
