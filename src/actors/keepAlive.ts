import type { Worker } from 'node:worker_threads';

// The platform's half (KeepAlive, and the addon's exit watches it drives) is in
// platformKeepAlive.ts: the pools' half is loaded before the addon is (the CLI's early bundle).

/** A pool whose idle workers may keep Node alive (TracerPool, RunnerPool). */
export interface KeepAlivePool {
  keepAlive: boolean;
}

/**
 * The worker threads of a pool (piscina's `threads`), kept ref()ed while a task of theirs runs
 * (its caller awaits it) or while the platform keeps Node alive, unref()ed otherwise.
 *
 * @example
 * ```ts
 * const alive = new WorkerKeepAlive(() => piscina.threads);
 * return alive.track(piscina.run(task));
 * ```
 */
export class WorkerKeepAlive implements KeepAlivePool {
  /** Protected by: the event loop. */
  #keepAlive = true;
  #busy = 0;

  constructor(private readonly threads: () => readonly Worker[]) {}

  get keepAlive(): boolean {
    return this.#keepAlive;
  }

  set keepAlive(on: boolean) {
    this.#keepAlive = on;
    this.#apply();
  }

  /** Holds Node while `p` runs; returns it. */
  track<T>(p: Promise<T>): Promise<T> {
    this.#busy++;
    this.#apply();
    const done = () => {
      this.#busy--;
      this.#apply();
    };
    p.then(done, done);
    return p;
  }

  #apply(): void {
    const on = this.#keepAlive || this.#busy > 0;
    for (const w of this.threads()) {
      if (on) w.ref();
      else w.unref();
    }
  }
}
