import { MAX_CONTEXTS } from '../abi/stub.js';
import { Errors } from '../errors.js';

/**
 * Context ids of one stub (0..4094, gVisor's threadContextPool per subprocess): an id names a
 * ThreadContext slot in that stub's control memory, mapped once with the rest of it. A slot
 * lives as long as its stub: a stub thread may still sleep on a released context's state word,
 * so an id is handed out again only for a context of the same stub.
 *
 * @example
 * ```ts
 * const ids = new ContextIds();
 * const id = ids.alloc(); // the lowest free id
 * ids.free(id);
 * ```
 */
export class ContextIds {
  #next = 0;
  readonly #free: number[] = [];

  /** Takes an id (a freed one first). */
  alloc(): number {
    if (this.#free.length) return this.#free.pop()!;
    if (this.#next >= MAX_CONTEXTS) throw Errors.InvalidArg(`too many contexts in one stub (at most ${MAX_CONTEXTS})`);
    return this.#next++;
  }

  /** The id the next alloc() takes. */
  peek(): number {
    return this.#free.length ? this.#free[this.#free.length - 1] : this.#next;
  }

  /** Gives an id back. */
  free(id: number): void {
    this.#free.push(id);
  }
}
