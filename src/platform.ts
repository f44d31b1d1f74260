import type { ProcessFault, ProcessFaultPoint } from './platformPort.js';
import type { ProcessEvent } from './machines/process.js';
import { availableParallelism } from 'node:os';
import type { MessagePort } from 'node:worker_threads';
import { createActor, type AnyActorRef } from 'xstate';
import { poolMachine } from './machines/pool.js';
import type { TaskEvent } from './machines/task.js';
import { SubprocessPool } from './actors/pool.js';
import type { Subprocess } from './actors/subprocess.js';
import { buildRules, cloneSource, createSandbox, createSource, forkStub, isSandboxUnavailable } from './actors/stubCreation.js';
import { stubPort } from './actors/stubPort.js';
import { adoptForSentry, forkForSentry, type SentryForkHost } from './actors/sentryFork.js';
import { TracerPool, takeEarlyTracers } from './actors/tracerPool.js';
import type { LiveStub, Runtime } from './actors/runtime.js';
import { AddressSpace, subprocessOf } from './addressSpace.js';
import { PlatformContext } from './actors/platformContext.js';
import { RunnerPool } from './actors/runnerPool.js';
import { HostPool } from './actors/hostPool.js';
import { KeepAlive } from './actors/platformKeepAlive.js';
import { MemoryFile } from './memoryFile.js';
import { stubRegion, type StubRegion } from './abi/stub.js';
import { Errors, toSystrapError } from './errors.js';
import { native } from './native.js';
import { SIG } from './abi/linux.js';
import { resolveWorker } from './workerFile.js';
import type { AdoptedContext, PlatformPort } from './platformPort.js';
import type { NewAddressSpaceOptions, PlatformOptions } from './platformOptions.js';

export type { NewAddressSpaceOptions, PlatformOptions } from './platformOptions.js';

/**
 * The systrap platform (gVisor's systrap.Systrap): stub processes traced from worker threads,
 * a shared memory file, and the actor system whose machines record every lifecycle step.
 *
 * @example
 * ```ts
 * const platform = await createPlatform();
 * const as = await platform.newAddressSpace();
 * console.log(await as.syscall(SYS.getpid), as.pid);
 * await as.release();
 * await platform.close();
 * ```
 */
export class Platform {
  readonly memoryFile: MemoryFile;
  readonly maxSysmsgThreads: number;
  /** The actor system's root (the pool machine): `platform.actor.system.get('subprocess:1')`. */
  readonly actor: AnyActorRef;
  readonly #rt: Runtime;
  readonly #pool: SubprocessPool;
  readonly #tracers: TracerPool;
  /** Stubs alive (not yet reaped), source included. Protected by: the event loop. */
  readonly #live = new Set<LiveStub>();
  #processFaultHook?: (point: ProcessFaultPoint, pid: number) => ProcessFault | undefined; // scenario faults (setProcessFaultHook)
  /** Per-platform counters of actor ids (`subprocess:N`). Protected by: the event loop. */
  readonly #ids = new Map<string, number>();
  readonly #inspecting: boolean;
  #closing?: Promise<void>;
  readonly #sandboxMode: 'auto' | 'require' | 'off';
  /** Why sandboxes cannot be made here, once a first attempt failed (auto mode). */
  #sandboxUnavailable?: string;
  #runners?: RunnerPool;
  /** Whether this platform keeps Node alive (see unref()). */
  readonly #keep: KeepAlive;
  #hosts?: HostPool;
  #port?: PlatformPort;
  readonly #lazySource: boolean;

  /** Private: use {@link createPlatform} (or {@link Platform.create}). */
  private constructor(options: PlatformOptions, region: StubRegion) {
    const maxAvailable = options.pool === false ? 0 : (options.pool?.maxAvailable ?? 16);
    if (!Number.isInteger(maxAvailable) || maxAvailable < 0)
      throw Errors.InvalidArg('options.pool.maxAvailable must be a non-negative integer');
    const threads = options.tracerThreads ?? Math.max(2, availableParallelism());
    if (!Number.isInteger(threads) || threads < 1 || threads > 64)
      throw Errors.InvalidArg('options.tracerThreads must be an integer in 1..64');
    this.maxSysmsgThreads = options.maxSysmsgThreads ?? availableParallelism();
    if (!Number.isInteger(this.maxSysmsgThreads) || this.maxSysmsgThreads < 1 || this.maxSysmsgThreads > 64)
      throw Errors.InvalidArg('options.maxSysmsgThreads must be an integer in 1..64');

    const actor = createActor(poolMachine, {
      input: { maxAvailable },
      id: 'pool',
      systemId: 'pool',
      ...(options.inspect ? { inspect: options.inspect } : {}),
    });
    this.actor = actor;
    this.#inspecting = options.inspect !== undefined;
    this.#sandboxMode = options.sandbox ?? 'auto';
    if (!['auto', 'require', 'off'].includes(this.#sandboxMode)) throw Errors.InvalidArg("options.sandbox must be 'auto', 'require' or 'off'");
    this.#pool = new SubprocessPool(actor);
    this.memoryFile = new MemoryFile(options.memoryFile);
    this.#tracers = takeEarlyTracers(threads) ?? new TracerPool(threads);
    const live = this.#live;
    const pool = this.#pool;
    this.#rt = {
      tracers: this.#tracers,
      memoryFile: this.memoryFile,
      region,
      rules: buildRules(this.memoryFile, region),
      maxSysmsgThreads: this.maxSysmsgThreads,
      syscallPatching: options.syscallPatching === true,
      runners: () => (this.#runners ??= Object.assign(new RunnerPool(), { keepAlive: this.#keep.on })),
      hosts: () => (this.#hosts ??= new HostPool(this.memoryFile, resolveWorker('sentry'))),
      spawn: (spec) => {
        actor.send({ type: 'SPAWN', ...spec });
        return actor.system.get(spec.id) as AnyActorRef;
      },
      nextId: (kind) => this.#nextId(kind),
      track: (sp) => live.add(sp),
      untrack: (sp) => live.delete(sp),
      tracks: (pid) => [...live].some((sp) => sp.pid === pid),
      forget: (sp) => pool.forget(sp),
    };
    actor.start();
    if (options.warmSentry) this.#rt.hosts().warm();
    this.#lazySource = options.lazySource ?? false;
    this.#keep = new KeepAlive(() => [this.#tracers, ...(this.#runners ? [this.#runners] : [])]);
  }

  /**
   * Creates a platform and its source stub (what {@link createPlatform} does).
   *
   * @example
   * ```ts
   * const platform = await Platform.create({ pool: false });
   * ```
   */
  static async create(options: PlatformOptions = {}): Promise<Platform> {
    const platform = new Platform(options, stubRegion());
    await platform.#start();
    return platform;
  }

  #nextId(kind: string): number {
    const n = (this.#ids.get(kind) ?? 0) + 1;
    this.#ids.set(kind, n);
    return n;
  }

  /** Creates the source stub (unless it is made on demand). */
  async #start(): Promise<void> {
    if (this.#lazySource) return;
    try {
      await this.#source();
    } catch (e) {
      await this.#shutdown();
      throw toSystrapError(e);
    }
  }

  /** A clone of the source stub; none once a close has begun (it could outlive the close's kill). */
  async #cloneSource(): Promise<Subprocess> {
    const source = await this.#source();
    if (this.#closing) throw Errors.Closed();
    return cloneSource(this.#rt, source);
  }

  /** The source stub, made the first time it is needed (see PlatformOptions.lazySource). */
  #source(): Promise<Subprocess> {
    return this.#pool.sourceStub(() => createSource(this.#rt));
  }

  /**
   * The platform port: what a sentry (src/sentry, or an embedder's own) uses of the platform,
   * and the scenario harness's hooks. See {@link PlatformPort}.
   *
   * @example
   * ```ts
   * const stub = platform.port.stub(as);
   * await stub.ensureThread();
   * ```
   */
  get port(): PlatformPort {
    return (this.#port ??= this.#makePort());
  }

  #makePort(): PlatformPort {
    const rt = this.#rt;
    const forkHost: SentryForkHost = { closing: () => this.#closing !== undefined, wrap: (sp) => ((sp.refs = 1), this.#wrap(sp)), adopt: (a) => this.#adoptContext(a) };
    return {
      region: rt.region,
      maxSysmsgThreads: rt.maxSysmsgThreads,
      memory: rt.memoryFile.ref,
      inspecting: this.#inspecting,
      newAddressSpace: (options) => this.newAddressSpace(options),
      stub: (as) => stubPort(subprocessOf(as)),
      sandboxed: (as) => subprocessOf(as).sandboxed,
      adoptContext: (as) => this.#adoptContext(as),
      forkEarly: (as) => forkForSentry(rt, subprocessOf(as), forkHost),
      adoptFork: (as, f) => adoptForSentry(rt, subprocessOf(as), f, forkHost),
      runWorker: <R>(name: 'sentry' | 'runner', task: unknown, transferList?: MessagePort[]) =>
        name === 'sentry' ? rt.hosts().run<R>(task, transferList) : rt.runners().run<R>(resolveWorker(name).file, task, transferList),
      warmWorker: (name) => (name === 'sentry' ? rt.hosts().warm() : rt.runners().warm(resolveWorker(name).file)),
      mirrorTask: (id) => rt.spawn({ kind: 'task', id }) as { send(event: TaskEvent): void },
      mirrorProcess: (id, input) => rt.spawn({ kind: 'process', id, input }) as { send(event: ProcessEvent): void },
      nextId: (kind) => this.#nextId(kind),
      setFaultHook: (hook) => void (this.#tracers.faultHook = hook),
      contextSlot: (ctx) => ctx.slotRange,
      processFault: (point, pid) => this.#processFaultHook?.(point, pid),
      processFaultsArmed: () => this.#processFaultHook !== undefined,
      setProcessFaultHook: (hook) => void (this.#processFaultHook = hook),
    };
  }

  async #adoptContext(as: AddressSpace): Promise<AdoptedContext> {
    if (this.#closing) throw Errors.Closed();
    const ctx = new PlatformContext(this.#rt);
    try {
      const { id, slot } = await ctx.adopt(as);
      return { id, slot, report: (type, sysno) => ctx.report(type, sysno), release: () => ctx.release() };
    } catch (e) {
      ctx.release();
      throw e;
    }
  }

  /**
   * Whether programs get sandboxes here (see NewAddressSpaceOptions.sandbox): `available`
   * false with the reason once an attempt failed (or the platform was made with 'off').
   *
   * @example
   * ```ts
   * if (!platform.sandbox.available) console.warn(`no sandbox: ${platform.sandbox.reason}`);
   * ```
   */
  get sandbox(): { available: boolean; reason?: string } {
    if (this.#sandboxMode === 'off') return { available: false, reason: "the platform was made with sandbox: 'off'" };
    return this.#sandboxUnavailable ? { available: false, reason: this.#sandboxUnavailable } : { available: true };
  }

  /** Pid of the source stub that new stubs are cloned from (0 while a lazy source is not made). */
  get sourcePid(): number {
    return this.#pool.source?.pid ?? 0;
  }

  /** Addresses of the stub region (the same in Node and in every stub). */
  get stubRegion(): StubRegion {
    return this.#rt.region;
  }

  /** Stubs currently alive, source included. */
  get liveStubs(): number[] {
    return [...this.#live].map((sp) => sp.pid);
  }

  /** Number of stubs waiting in the pool. */
  get pooled(): number {
    return this.#pool.size;
  }

  /**
   * A new address space: a pooled stub if one is available (emptied on release), else a stub
   * freshly cloned from the source.
   */
  async newAddressSpace(options: NewAddressSpaceOptions = {}): Promise<AddressSpace> {
    if (this.#closing) throw Errors.Closed();
    const badFilter = (p: unknown) => !(p instanceof Uint8Array && p.length % 8 === 0 && p.length > 0);
    if (options.seccomp !== undefined && typeof options.seccomp !== 'function' && badFilter(options.seccomp))
      throw Errors.InvalidArg('options.seccomp must be a compiled BPF program (a Uint8Array of sock_filter entries)');
    // A stub with its own filter, or one that will receive fds, must be fresh.
    let sp = options.seccomp || options.sandbox ? undefined : this.#pool.fetchAvailable();
    if (sp) {
      sp.ref.send({ type: 'REUSE' });
    } else {
      sp = options.sandbox ? await this.#sandboxOrPlain() : await this.#cloneSource();
      if (this.#closing) {
        await sp.kill();
        throw Errors.Closed();
      }
    }
    sp.refs = 1;
    const as = this.#wrap(sp);
    if (options.seccomp) {
      try {
        const prog = typeof options.seccomp === 'function' ? options.seccomp(sp.sandboxed) : options.seccomp;
        if (badFilter(prog)) throw Errors.InvalidArg('options.seccomp must give a compiled BPF program (a Uint8Array of sock_filter entries)');
        await sp.installRules(prog);
      } catch (e) {
        await as.release();
        throw toSystrapError(e);
      }
    }
    return as;
  }

  /** The address space over a stub just made or taken from the pool. */
  #wrap(sp: Subprocess): AddressSpace {
    return AddressSpace.wrap(sp, {
      regionStart: this.#rt.region.start,
      release: (s) => this.#release(s),
      importFds: (s, fds) => this.#importFds(s, fds),
      fork: (s) => this.#fork(s),
    });
  }

  /** AddressSpace.fork: the stub forked, the copy wrapped. */
  async #fork(parent: Subprocess): Promise<AddressSpace> {
    if (this.#closing) throw Errors.Closed();
    const sp = await forkStub(this.#rt, parent);
    if (this.#closing) {
      await sp.kill();
      throw Errors.Closed();
    }
    sp.refs = 1;
    return this.#wrap(sp);
  }

  /** A sandboxed stub, or (auto mode, where the machine cannot make one) a plain one. */
  async #sandboxOrPlain(): Promise<Subprocess> {
    if (this.#sandboxMode === 'off' || this.#sandboxUnavailable) return this.#cloneSource();
    try {
      return await createSandbox(this.#rt);
    } catch (e) {
      const err = toSystrapError(e);
      // Only the namespaces' own failures mean "not here"; a dying stub is the caller's error.
      if (this.#sandboxMode === 'require' || !isSandboxUnavailable(err)) throw err;
      this.#sandboxUnavailable = err.message;
      return this.#cloneSource();
    }
  }

  /** Serialises fd passing: every stub cloned from the source shares its fd channel. */
  #fdLock: Promise<unknown> = Promise.resolve();

  #importFds(sp: Subprocess, fds: number[]): Promise<number[]> {
    const run = async () => {
      native.sendFds(sp.fdChannelOwner(this.sourcePid), fds);
      return sp.receiveFds(fds.length);
    };
    const p = this.#fdLock.then(run, run);
    this.#fdLock = p.catch(() => undefined);
    return p;
  }

  /**
   * A new platform context (one application thread's registers), for switchToApp.
   *
   * @example
   * ```ts
   * const ctx = platform.newContext();
   * const ev = await ctx.switchToApp(as, regs);
   * ```
   */
  newContext(): PlatformContext {
    if (this.#closing) throw Errors.Closed();
    return new PlatformContext(this.#rt);
  }

  /**
   * Ends everything: every stub is killed and reaped, every tracer worker ends. Safe to call
   * twice (the second call waits for the first).
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  /**
   * Lets Node exit while the platform is idle: its idle workers and the watches on its stubs no
   * longer keep the event loop alive (a running transaction or program still does). `ref()`
   * undoes it. At Node's exit the stubs die with it, as always.
   *
   * @example
   * ```ts
   * const platform = (await createPlatform()).unref(); // a tool that exits when its own work is done
   * ```
   */
  unref(): this {
    this.#keep.set(false);
    return this;
  }

  /** Undoes {@link unref}: the platform keeps Node alive again until closed. */
  ref(): this {
    this.#keep.set(true);
    return this;
  }

  /**
   * `await using platform = await createPlatform()`: closed when the scope ends, thrown or not
   * (an open platform keeps Node alive: close it, let a scope do it, or unref() it).
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #release(sp: Subprocess): Promise<void> {
    if (!sp.alive) return;
    sp.ref.send({ type: 'RELEASE' });
    // A stub that is never pooled dies now: emptying it first would only cost time (a forked
    // process's copy of a large program).
    if (!sp.noPool) {
      try {
        await sp.unmapApplication();
      } catch (e) {
        sp.fault(`release: ${(e as Error).message}`);
      }
    }
    sp.refs--;
    if (sp.refs > 0) return;
    if (sp.state === 'releasing' && !this.#closing && !sp.noPool && this.#pool.markAvailable(sp)) {
      sp.ref.send({ type: 'RELEASED', pooled: true });
      return;
    }
    if (sp.state === 'releasing') sp.ref.send({ type: 'RELEASED', pooled: false });
    await sp.kill();
  }

  async #shutdown(): Promise<void> {
    // A closed platform keeps nothing alive (its watches end as its stubs are reaped).
    this.#keep.end();
    if (this.actor.getSnapshot().value !== 'closed') this.actor.send({ type: 'CLOSE' });
    this.#pool.drain();
    // A source stub being made is killed with the rest once it is (never left behind).
    await this.#pool.sourceSettled();
    // Kill first: a transaction blocked on a stub ends as soon as that stub dies.
    await Promise.all([...this.#live].map((sp) => sp.kill()));
    // Every stub of this platform is in the source stub's process group (it called setsid),
    // but for one whose program called setsid (sys_process.ts: it died with its subprocess
    // above): one kill catches anything that escaped its own stub's death.
    if (this.#pool.source) {
      try {
        native.kill(-this.#pool.source.pid, SIG.SIGKILL);
      } catch {
        // the group is empty
      }
    }
    await this.#hosts?.close();
    await this.#tracers.close();
    await this.#runners?.close();
    if (this.#pool.source) native.closeFdChannel(this.#pool.source.pid);
    this.memoryFile.close();
    this.actor.send({ type: 'CLOSED' });
  }
}

/**
 * Creates a platform: maps the stub region (once per process), creates the memory file, starts
 * the tracer workers and the source stub.
 *
 * @example
 * ```ts
 * const events: string[] = [];
 * const platform = await createPlatform({ inspect: (e) => events.push(e.type), pool: { maxAvailable: 4 } });
 * ```
 */
export function createPlatform(options: PlatformOptions = {}): Promise<Platform> {
  return Platform.create(options);
}
