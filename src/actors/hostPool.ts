import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import type { FileRange, MemoryFile } from '../memoryFile.js';
import type { HostData, HostMessage, HostReply } from '../hostProtocol.js';
import { Errors } from '../errors.js';

/** How long close() lets hosts end their tasks before it terminates them. */
const CLOSE_GRACE_MS = 2000;

/** One host worker and what the main thread knows of it. */
interface Host {
  readonly worker: Worker;
  readonly port: MessagePort;
  /** The host's wake word (a page of the memory file): bumped and woken on every post. */
  readonly wake: FileRange;
  readonly wakeWord: Uint32Array;
  /** Tasks running there. */
  running: number;
  /** Set when the worker died or failed to start. */
  failed?: Error;
}

/**
 * Long-lived host workers, each running many tasks at once (a sentry host runs the kernels of
 * many programs: see src/sentry/host.ts), so that no task waits for a worker while others run:
 * a new task goes to the host with the fewest, and a new host starts while there are fewer
 * than CPUs. Unlike piscina's workers, a host never finishes a task to take the next one: tasks
 * come and go on a port, and the host, asleep on futexes, is woken through a word of the memory
 * file.
 *
 * @example
 * ```ts
 * const hosts = new HostPool(memoryFile, resolveWorker('sentry'));
 * const result = await hosts.run(task, [task.port]);
 * await hosts.close();
 * ```
 */
export class HostPool {
  readonly #hosts: Host[] = [];
  readonly #pending = new Map<number, { host: Host; resolve(r: unknown): void; reject(e: unknown): void }>();
  #nextId = 1;
  #closed = false;

  constructor(
    private readonly memoryFile: MemoryFile,
    private readonly worker: { file: string; execArgv: string[] },
    private readonly maxHosts = Math.max(1, availableParallelism()),
  ) {}

  /** Starts a host ahead of the first task (a worker's start and its imports take ~100 ms). */
  warm(): void {
    if (this.#hosts.length === 0 && !this.#closed) this.#start();
  }

  /** Runs `task` on a host; resolves with its result. `transferList`: ports the task carries. */
  run<R>(task: unknown, transferList: MessagePort[] = []): Promise<R> {
    if (this.#closed) return Promise.reject(Errors.Closed());
    const host = this.#choose();
    const id = this.#nextId++;
    return new Promise<R>((resolve, reject) => {
      this.#pending.set(id, { host, resolve: resolve as (r: unknown) => void, reject });
      host.running++;
      host.port.ref();
      const msg: HostMessage<unknown> = { type: 'run', id, task };
      host.port.postMessage(msg, transferList);
      this.#ring(host);
    });
  }

  /** Ends every host: running tasks end with an error result, then the workers exit. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    livePools.delete(this);
    for (const h of this.#hosts) {
      h.port.postMessage({ type: 'close' } satisfies HostMessage<unknown>);
      this.#ring(h);
    }
    // Running tasks end first (their hosts abort them and answer); a host that does not answer
    // in time is terminated all the same.
    const settled = [...this.#pending.values()].map(
      (p) =>
        new Promise<void>((done) => {
          const { resolve, reject } = p;
          p.resolve = (v) => (resolve(v), done());
          p.reject = (e) => (reject(e), done());
        }),
    );
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(settled), new Promise<void>((r) => (timer = setTimeout(r, CLOSE_GRACE_MS)))]);
    clearTimeout(timer);
    for (const [id, p] of this.#pending) this.#settle(p.host, id, (q) => q.reject(Errors.Closed()));
    await Promise.all(this.#hosts.map((h) => h.worker.terminate()));
    for (const h of this.#hosts) {
      h.port.close();
      this.memoryFile.free(h.wake);
    }
  }

  /** The host with the fewest tasks; a new one while there are fewer hosts than CPUs and all are busy. */
  #choose(): Host {
    const live = this.#hosts.filter((h) => !h.failed);
    const best = live.reduce<Host | undefined>((a, h) => (!a || h.running < a.running ? h : a), undefined);
    if (best && (best.running === 0 || live.length >= this.maxHosts)) return best;
    return this.#start();
  }

  #start(): Host {
    const wake = this.memoryFile.allocate(4096);
    const v = this.memoryFile.view(wake);
    const { port1, port2 } = new MessageChannel();
    const data: HostData = { memory: this.memoryFile.ref, wake, port: port2 };
    const early = takeEarlyHost(this.worker.file);
    let worker: Worker;
    if (early) {
      worker = early;
      worker.postMessage(data, [port2]);
    } else worker = new Worker(this.worker.file, { workerData: data, transferList: [port2], execArgv: this.worker.execArgv });
    const host: Host = { worker, port: port1, wake, wakeWord: new Uint32Array(v.buffer, v.byteOffset, 1), running: 0 };
    // Neither keeps Node alive by itself: a pending task's port does (see run).
    worker.unref();
    port1.unref();
    port1.on('message', (r: HostReply) => this.#settle(host, r.id, (p) => p.resolve(r.result)));
    const fail = (e: Error) => {
      host.failed = e;
      for (const [id, p] of this.#pending) if (p.host === host) this.#settle(host, id, (q) => q.reject(e));
    };
    worker.on('error', fail);
    worker.on('exit', (code) => {
      if (!this.#closed) fail(Errors.Protocol(`a sentry host exited (${code})`));
    });
    this.#hosts.push(host);
    livePools.add(this);
    return host;
  }

  /**
   * Node's exit: every host told to end, and woken. Why: Node ends its workers at exit and
   * waits for each to stop, and a host asleep in futex_waitv sees the termination only when the
   * sleep returns (its doorbell timeout: 20 ms added to a `systrap run` one time in five).
   */
  endForExit(): void {
    for (const h of this.#hosts) {
      h.port.postMessage({ type: 'close' } satisfies HostMessage<unknown>);
      this.#ring(h);
    }
  }

  #settle(host: Host, id: number, how: (p: { resolve(r: unknown): void; reject(e: unknown): void }) => void): void {
    const p = this.#pending.get(id);
    if (!p) return;
    this.#pending.delete(id);
    host.running--;
    if (host.running === 0) host.port.unref();
    how(p);
  }

  /** Bumps the host's wake word and wakes it (it may sleep on futexes only). */
  #ring(host: Host): void {
    Atomics.add(host.wakeWord, 0, 1);
    this.memoryFile.shared.futexWake(host.wake.start, 1);
  }
}

/** Pools with hosts, ended at Node's exit (see HostPool.endForExit). Protected by: the main thread. */
const livePools = new Set<HostPool>();
process.on('exit', () => {
  for (const p of livePools) p.endForExit();
});

/**
 * A host worker started ahead of its pool: it loads its modules, then waits on its parent
 * port for its HostData. Protected by: the main thread.
 */
let early: EarlyHost | undefined;

/** Global key of a host worker bin/systrap.js started (an EarlyHost), for startHostEarly. */
const LAUNCHED_HOST = Symbol.for('systrap.earlyHost');

/** The early host worker, the file it runs, and whether it died before a pool took it. */
interface EarlyHost {
  worker: Worker;
  file: string;
  failed: boolean;
}

/**
 * Starts a sentry host worker before the platform exists: a CLI that will run a program at
 * once overlaps the host's start (a worker's bootstrap and the sentry's code, tens of ms) with
 * its own. The first HostPool for the same worker file takes it.
 *
 * @example
 * ```ts
 * startHostEarly(resolveWorker('sentry')); // then: createPlatform({ warmSentry: true })
 * ```
 */
export function startHostEarly(worker: { file: string; execArgv: string[] }): void {
  if (early) return;
  // One the launcher started (bin/systrap.js) for the same file, before this module loaded.
  const launched = (globalThis as Record<symbol, EarlyHost | undefined>)[LAUNCHED_HOST];
  (globalThis as Record<symbol, EarlyHost | undefined>)[LAUNCHED_HOST] = undefined;
  if (launched?.file === worker.file) {
    early = launched;
    return;
  }
  if (launched) void launched.worker.terminate();
  const w = new Worker(worker.file, { execArgv: worker.execArgv });
  const e: EarlyHost = { worker: w, file: worker.file, failed: false };
  early = e;
  // Until a pool takes it, a failed start only means the pool starts a host of its own.
  w.on('error', () => (e.failed = true));
  w.on('exit', () => (e.failed = true));
  w.unref();
}

/** The early host, if it runs `file` and has not failed (it is handed out once). */
function takeEarlyHost(file: string): Worker | undefined {
  const e = early;
  if (!e || e.file !== file) return undefined;
  early = undefined;
  if (e.failed) {
    void e.worker.terminate();
    return undefined;
  }
  return e.worker;
}
