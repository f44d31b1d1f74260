import { Piscina } from 'piscina';
import { availableParallelism } from 'node:os';
import type { RunTask, RunResult } from '../../workers/runner.js';
import { resolveWorker } from './tracerPool.js';

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

  close(): Promise<void> {
    return this.#piscina.destroy();
  }
}
