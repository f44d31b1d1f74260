import type { ActorRefFrom } from 'xstate';
import type { poolMachine } from '../machines/pool.js';
import type { Subprocess } from './subprocess.js';

/**
 * The effects of the subprocess pool (gVisor's globalPool): holds the source stub and the
 * released subprocesses waiting for reuse. Its state is the pool machine actor (`ref`), the root
 * of the platform's actor system.
 *
 * @example
 * ```ts
 * const sp = pool.fetchAvailable() ?? (await Subprocess.create(rt, pool.source));
 * ```
 */
export class SubprocessPool {
  /** Subprocesses waiting in the pool, by id. Mirrors ref's `available`. */
  readonly #available = new Map<string, Subprocess>();
  source?: Subprocess;

  constructor(readonly ref: ActorRefFrom<typeof poolMachine>) {}

  get enabled(): boolean {
    return this.ref.getSnapshot().context.maxAvailable > 0;
  }

  /** Number of subprocesses waiting for reuse. */
  get size(): number {
    return this.#available.size;
  }

  /** Takes the most recently released live subprocess, if any (LIFO, as gVisor). */
  fetchAvailable(): Subprocess | undefined {
    const ids = this.ref.getSnapshot().context.available;
    for (let i = ids.length - 1; i >= 0; i--) {
      const sp = this.#available.get(ids[i]);
      this.ref.send({ type: 'FETCH', id: ids[i] });
      this.#available.delete(ids[i]);
      if (sp && sp.state === 'pooled') return sp;
    }
    return undefined;
  }

  /** Offers a released subprocess to the pool; false when pooling is off or the pool is full. */
  markAvailable(sp: Subprocess): boolean {
    this.ref.send({ type: 'MARK_AVAILABLE', id: sp.id });
    if (!this.ref.getSnapshot().context.available.includes(sp.id)) return false;
    this.#available.set(sp.id, sp);
    return true;
  }

  /** Drops a subprocess that died while pooled. */
  forget(sp: Subprocess): void {
    if (!this.#available.delete(sp.id)) return;
    this.ref.send({ type: 'FORGET', id: sp.id });
  }

  /** Empties the pool (on close); returns what it held. */
  drain(): Subprocess[] {
    const all = [...this.#available.values()];
    this.#available.clear();
    return all;
  }
}
