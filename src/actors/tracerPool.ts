import type { Piscina } from 'piscina';
import { piscinaClass } from './piscinaModule.js';
import { resolveWorker } from '../workerFile.js';
import type { StepMessage, TracerRequestBody, TracerResponse, TransactionFault, TransactionStep } from '../tracer/protocol.js';
import { Errors } from '../errors.js';
import { WorkerKeepAlive } from './keepAlive.js';

/**
 * The tracer workers: a piscina pool whose threads never exit while the platform lives.
 *
 * Why these settings: PTRACE_O_EXITKILL kills a tracee when its tracer *thread* exits, and
 * piscina ends threads on idle timeout, on abort of a running task and on close. So min = max
 * threads, idleTimeout Infinity, no AbortSignal ever, and close only once every transaction has
 * ended (each ends with its tracee detached).
 *
 * @example
 * ```ts
 * const tracers = new TracerPool(2);
 * const res = await tracers.run({ op: 'inject', thread, sysno: SYS.getpid, args: [] });
 * ```
 */
export class TracerPool {
  /**
   * Started at the first transaction (or by startTracersEarly): a sandboxed program's stub
   * needs none (see createSandbox), and a worker's start is a third of a short run's start-up.
   */
  #piscina?: Piscina;
  /** Transactions started and not finished. Protected by: the event loop (single thread). */
  #inFlight = new Set<Promise<unknown>>();
  #closed = false;
  /** Idle threads keep Node alive unless the platform is unref()ed. */
  readonly #alive: WorkerKeepAlive;
  /** Step listeners of running transactions, by transaction id. */
  readonly #listeners = new Map<number, (seq: number, step: TransactionStep) => void>();
  #nextTxn = 1;

  /** The number of threads asked for. */
  readonly size: number;

  constructor(threads: number) {
    this.size = threads;
    this.#alive = new WorkerKeepAlive(() => this.#piscina?.threads ?? []);
  }

  /** The workers, started now if they are not yet. */
  #pool(): Piscina {
    if (this.#piscina) return this.#piscina;
    const worker = resolveWorker('tracer');
    const threads = this.size;
    const Piscina = piscinaClass();
    this.#piscina = new Piscina({
      filename: worker.file,
      execArgv: worker.execArgv,
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: Infinity,
      // Tasks are short (one transaction); a queue bound would only turn load into errors.
      maxQueue: Infinity,
    });
    this.#piscina.on('message', (m: StepMessage) => this.#listeners.get(m.txn)?.(m.seq, m.step));
    return this.#piscina;
  }

  /** Starts the workers ahead of the first transaction. */
  start(): void {
    this.#pool();
  }

  /** Number of tracer threads (0 before the first transaction). */
  get threads(): number {
    return this.#piscina?.threads.length ?? 0;
  }

  /**
   * Runs one transaction on some tracer thread. `onStep` sees each step once, in order, as soon
   * as it is known (live, or from the final response if that comes first).
   */
  /**
   * Scenario hook: a fault for a transaction that carries none (tests inject faults into the
   * transactions the runtime starts on its own). Protected by: the event loop.
   */
  faultHook?: (body: TracerRequestBody) => TransactionFault | undefined;

  run<T>(body: TracerRequestBody, onStep?: (step: TransactionStep) => void): Promise<TracerResponse<T>> {
    if (this.#closed) return Promise.reject(Errors.Closed());
    if (this.faultHook && body.op !== 'createSource' && (body as { fault?: TransactionFault }).fault === undefined) {
      const fault = this.faultHook(body);
      if (fault) body = { ...body, fault } as TracerRequestBody;
    }
    const txn = this.#nextTxn++;
    let applied = 0;
    const apply = (seq: number, step: TransactionStep) => {
      if (seq !== applied) return; // already applied, or a gap filled by the final response
      applied++;
      onStep?.(step);
    };
    this.#listeners.set(txn, apply);
    const p = (this.#pool().run({ ...body, txn }) as Promise<TracerResponse<T>>).then((res) => {
      for (let i = applied; i < res.steps.length; i++) apply(i, res.steps[i]);
      return res;
    });
    this.#inFlight.add(p);
    this.#alive.track(p);
    const done = () => {
      this.#inFlight.delete(p);
      this.#listeners.delete(txn);
    };
    p.then(done, done);
    return p;
  }

  /**
   * Whether idle threads keep Node alive (platform.unref() turns it off). A running transaction
   * always does: its caller awaits it.
   */
  set keepAlive(on: boolean) {
    this.#alive.keepAlive = on;
  }

  /** Waits for running transactions, then ends the threads (nothing is attached by then). */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#inFlight]);
    await this.#piscina?.destroy();
  }
}

/** A pool started ahead of its platform (see startTracersEarly). Protected by: the main thread. */
let early: TracerPool | undefined;

/**
 * Starts the tracer workers before the platform's modules load: a CLI that will create a
 * platform at once overlaps the workers' start (tens of ms) with its own imports. The next
 * platform asking for as many threads takes the pool.
 *
 * @example
 * ```ts
 * startTracersEarly(1); // then: await createPlatform({ tracerThreads: 1 })
 * ```
 */
export function startTracersEarly(threads: number): void {
  early ??= new TracerPool(threads);
  early.start();
}

/**
 * The pool started early, if it has `threads` threads (it is handed out once).
 *
 * @example
 * ```ts
 * const tracers = takeEarlyTracers(1) ?? new TracerPool(1);
 * ```
 */
export function takeEarlyTracers(threads: number): TracerPool | undefined {
  const pool = early;
  if (!pool || pool.size !== threads) return undefined;
  early = undefined;
  return pool;
}
