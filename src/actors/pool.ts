import type { ActorRefFrom } from 'xstate';
import type { poolMachine } from '../machines/pool.js';
import type { Subprocess } from './subprocess.js';

/**
 * The effects of the subprocess pool (gVisor's globalPool): holds the source stub and hands out
 * released subprocesses for reuse. Which subprocesses are available, and in which order, is the
 * pool machine's (`ref`, the root of the platform's actor system); this class only maps their
 * ids to the objects.
 *
 * @example
 * ```ts
 * const sp = pool.fetchAvailable() ?? (await cloneSource(rt, pool.source));
 * ```
 */
export class SubprocessPool {
  /** Subprocesses offered to the pool, by id (the machine says which are still available). */
  readonly #offered = new Map<string, Subprocess>();
  /** The source stub, once made. */
  source?: Subprocess;
  /** The source stub being made, or made (or failed): made once, by whoever asks first. */
  #making?: Promise<Subprocess>;

  constructor(readonly ref: ActorRefFrom<typeof poolMachine>) {}

  /** Number of subprocesses waiting for reuse. */
  get size(): number {
    return this.#available().length;
  }

  #available(): readonly string[] {
    return this.ref.getSnapshot().context.available;
  }

  /** Takes the most recently released live subprocess, if any (LIFO, as gVisor). */
  fetchAvailable(): Subprocess | undefined {
    for (let ids = this.#available(); ids.length > 0; ids = this.#available()) {
      const id = ids[ids.length - 1];
      this.ref.send({ type: 'FETCH', id });
      const sp = this.#offered.get(id);
      this.#offered.delete(id);
      if (sp && sp.state === 'pooled') return sp;
    }
    return undefined;
  }

  /** Offers a released subprocess to the pool; false when pooling is off or the pool is full. */
  markAvailable(sp: Subprocess): boolean {
    this.ref.send({ type: 'MARK_AVAILABLE', id: sp.id });
    if (!this.#available().includes(sp.id)) return false;
    this.#offered.set(sp.id, sp);
    return true;
  }

  /** Drops a subprocess that died while pooled. */
  forget(sp: { id: string }): void {
    if (!this.#offered.delete(sp.id)) return;
    this.ref.send({ type: 'FORGET', id: sp.id });
  }

  /**
   * The source stub, made by `make` the first time it is asked for (every later caller gets the
   * same stub, or the same failure); the pool machine hears SOURCE_READY or SOURCE_FAILED.
   *
   * @example
   * ```ts
   * const source = await pool.sourceStub(() => createSource(rt));
   * ```
   */
  sourceStub(make: () => Promise<Subprocess>): Promise<Subprocess> {
    return (this.#making ??= make().then(
      (sp) => {
        this.source = sp;
        this.ref.send({ type: 'SOURCE_READY', pid: sp.pid });
        return sp;
      },
      (e: unknown) => {
        this.ref.send({ type: 'SOURCE_FAILED', reason: String(e) });
        throw e;
      },
    ));
  }

  /** Resolves once a source stub being made is made or has failed (at once if none is). */
  async sourceSettled(): Promise<void> {
    await this.#making?.catch(() => undefined);
  }

  /** Empties the pool (on close). */
  drain(): void {
    this.#offered.clear();
  }
}
