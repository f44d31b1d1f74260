import type { Piscina } from 'piscina';
import type { MessagePort } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { resolveWorker } from '../workerFile.js';
import { WorkerKeepAlive } from './keepAlive.js';
import { piscinaClass } from './piscinaModule.js';

/**
 * The runner workers: each runs one long task at a time (a context's fast path,
 * workers/runner.ts, or a program's whole sentry, workers/sentry.ts). Unlike tracers they trace
 * nothing, so piscina may end idle ones.
 *
 * @example
 * ```ts
 * const res = await runners.run(resolveWorker('runner').file, task);
 * ```
 */
export class RunnerPool {
  readonly #piscina: Piscina;

  constructor(threads = Math.max(2, availableParallelism())) {
    const w = resolveWorker('runner');
    const Piscina = piscinaClass();
    this.#piscina = new Piscina({ filename: w.file, execArgv: w.execArgv, minThreads: 0, maxThreads: threads, idleTimeout: 30_000 });
  }

  /** Idle workers keep Node alive unless the platform is unref()ed. */
  readonly #alive = new WorkerKeepAlive(() => this.#piscina.threads);

  /** Runs `task` on a runner worker with the module `filename`'s default export. */
  run<R>(filename: string, task: unknown, transferList?: MessagePort[]): Promise<R> {
    return this.#alive.track(this.#piscina.run(task, { filename, transferList }) as Promise<R>);
  }

  /** Whether idle workers keep Node alive (platform.unref()); a running task always does. */
  set keepAlive(on: boolean) {
    this.#alive.keepAlive = on;
  }

  /**
   * Starts a worker and loads `filename` in it ahead of its first task (a worker's start and
   * the module's imports take ~100 ms; `systrap run` overlaps them with the platform's start).
   * The module's default export must answer `{ warm: true }` at once.
   */
  warm(filename: string): void {
    this.#piscina.run({ warm: true }, { filename }).catch(() => undefined);
  }

  close(): Promise<void> {
    return this.#piscina.destroy();
  }
}
