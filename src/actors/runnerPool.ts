import { Piscina } from 'piscina';
import { availableParallelism } from 'node:os';
import type { RunTask, RunResult } from '../../workers/runner.js';
import { resolveWorker } from './tracerPool.js';
import type { SentryResult, SentryTask } from '../sentry/protocol.js';

/**
 * The runner workers: each runs one context's fast path at a time (workers/runner.ts). Unlike
 * tracers they trace nothing, so piscina may end idle ones.
 */
export class RunnerPool {
  readonly #piscina: Piscina;

  constructor(threads = Math.max(2, availableParallelism())) {
    const w = resolveWorker('runner');
    this.#piscina = new Piscina({ filename: w.file, execArgv: w.execArgv, minThreads: 0, maxThreads: threads, idleTimeout: 30_000 });
  }

  run(task: RunTask): Promise<RunResult> {
    return this.#piscina.run(task) as Promise<RunResult>;
  }

  /** Runs a program's sentry (workers/sentry.ts) until the program ends. */
  runSentry(task: SentryTask): Promise<SentryResult> {
    return this.#piscina.run(task, { filename: this.#sentryFile, transferList: [task.port as never] }) as Promise<SentryResult>;
  }

  readonly #sentryFile = resolveWorker('sentry').file;

  /**
   * Starts a worker and loads the sentry in it ahead of the first program (a worker's start and
   * the sentry's imports take ~100 ms; `systrap run` overlaps them with the platform's start).
   */
  warmSentry(): void {
    this.#piscina.run({ warm: true }, { filename: this.#sentryFile }).catch(() => undefined);
  }

  close(): Promise<void> {
    return this.#piscina.destroy();
  }
}
