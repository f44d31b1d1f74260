import type { ProcessEvent } from './machines/process.js';
import type { MessagePort } from 'node:worker_threads';
import type { AddressSpace, SyscallCall } from './addressSpace.js';
import type { FileRange } from './memoryFile.js';
import type { MemoryFileRef } from './shm/sharedFile.js';
import type { StubRegion } from './abi/stub.js';
import type { TaskEvent } from './machines/task.js';
import type { TracerRequestBody, TransactionFault } from './tracer/protocol.js';
import type { PlatformContext } from './actors/platformContext.js';
import type { ForkedBySentry } from './actors/stubCreation.js';

/**
 * The one interface through which a sentry (src/sentry, workers/sentry.ts, or an embedder's
 * own) uses the platform: what gVisor's Sentry gets from its platform.Platform, plus what a
 * sentry running on a worker thread needs to reach stub memory from there. Get it from
 * `platform.port`. Everything here is main-thread only unless said otherwise.
 *
 * @example
 * ```ts
 * const port = platform.port;
 * const as = await port.newAddressSpace({ seccomp });
 * const main = await port.adoptContext(as);         // the program's first thread
 * await port.stub(as).ensureThread();
 * const end = await port.runWorker('sentry', task);  // a sentry on a sentry host
 * ```
 */
export interface PlatformPort {
  /** The stub region, the same in every stub of the platform. */
  readonly region: StubRegion;
  /** Most sysmsg threads (host threads running program threads) per stub. */
  readonly maxSysmsgThreads: number;
  /** The memory file as another thread maps it (`workerFile(memory, need)`). */
  readonly memory: MemoryFileRef;
  /** True when an inspection observer watches the platform: mirror lifecycles then. */
  readonly inspecting: boolean;
  /** A new address space (see Platform.newAddressSpace: `seccomp`, `sandbox`). */
  newAddressSpace(options?: { seccomp?: Uint8Array | ((sandboxed: boolean) => Uint8Array); sandbox?: boolean }): Promise<AddressSpace>;
  /** Whether a stub is sandboxed (its pids are its namespace's: see README "Safety"). */
  sandboxed(as: AddressSpace): boolean;
  /** The stub behind an address space, as a sentry drives it. */
  stub(as: AddressSpace): StubPort;
  /**
   * A platform context handed to a sentry for one thread of the program in `as`: its slot is
   * mapped in the stub, its actor is `running`; from then on the sentry queues and handles it
   * and reports its lifecycle through {@link AdoptedContext.report}.
   */
  adoptContext(as: AddressSpace): Promise<AdoptedContext>;
  /**
   * A fork of `as` for a sentry: the child as the sentry adopts it (it runs already, its first
   * thread's context bound), before its actors are made; `made` brings its address space and
   * that context once they are (a failure kills the child: the sentry sees it die).
   */
  forkEarly(as: AddressSpace): Promise<EarlyFork>;
  /**
   * A fork of `as` the sentry made itself (src/sentry/kernel/localFork.ts), taken over as
   * forkEarly's: its actors, address space and first context to come in `made`. Throws when the
   * platform is closing (the caller kills the child).
   */
  adoptFork(as: AddressSpace, f: ForkedBySentry): EarlyFork;
  /**
   * Runs a task until it ends: `sentry`, the sentry of one program, on a sentry host (a worker
   * running many programs' sentries, workers/sentry.ts); `runner`, with the default export of
   * workers/runner.ts on a runner worker. `warmWorker` starts one ahead of time.
   */
  runWorker<R>(name: 'sentry' | 'runner', task: unknown, transferList?: MessagePort[]): Promise<R>;
  warmWorker(name: 'sentry' | 'runner'): void;
  /**
   * A mirror actor in the platform's actor system for one thread of a program (`task:…` ids),
   * fed with the task events the sentry reports (see src/machines/task.ts).
   */
  mirrorTask(id: string): { send(event: TaskEvent): void };
  /** A `process` actor for a program's process (see machines/process.ts), under its parent's. */
  mirrorProcess(id: string, input: { pid: number; parent?: string }): { send(event: ProcessEvent): void };
  /** The next number for an id of this kind (`program`, …), counted per platform. */
  nextId(kind: string): number;
  /** Scenario harness: a fault for each transaction the runtime starts (undefined: none). */
  setFaultHook(hook: ((body: TracerRequestBody) => TransactionFault | undefined) | undefined): void;
  /** Scenario harness: a fault for a program's process at fork, exec or exit (undefined: none). */
  processFault(point: ProcessFaultPoint, pid: number): ProcessFault | undefined;
  /** Whether a process fault hook is set (a sentry then asks the main thread for each exec, where faults apply). */
  processFaultsArmed(): boolean;
  setProcessFaultHook(hook: ((point: ProcessFaultPoint, pid: number) => ProcessFault | undefined) | undefined): void;
  /** Scenario harness: the memory-file range of a context's ThreadContext slot. */
  contextSlot(ctx: PlatformContext): FileRange;
}

/** Where a scenario can fault a program's process (see Scenario.fault). */
export type ProcessFaultPoint = 'fork' | 'exec' | 'exit';

/**
 * A process fault: `fail` the fork or the execve with `errno` (EAGAIN, ENOMEM by default), `kill`
 * the process's stub there (the new child's at fork; during the load at exec; before its
 * release at exit), or `delay` that step `ms`.
 */
export interface ProcessFault {
  action: 'fail' | 'kill' | 'delay';
  errno?: number;
  ms?: number;
}

/**
 * One stub as a sentry drives it: its syscall thread for setup calls, its context queue and
 * sysmsg threads for running program threads.
 *
 * @example
 * ```ts
 * const stub = platform.port.stub(as);
 * const { addr, bytes } = stub.scratch();
 * bytes.set(Buffer.from('/tmp\0'));
 * await as.syscall(SYS.chdir, addr);
 * ```
 */
export interface StubPort {
  readonly pid: number;
  /**
   * The file the stub's control memory is in (its queue and its contexts' slots): the
   * platform's memory file, or a forked process's own (see AddressSpace.fork).
   */
  readonly memory: MemoryFileRef;
  /**
   * Scratch memory the stub's syscall thread can pass to the kernel (a path, a struct), at
   * `addr` in the stub. Stub-writable: check what is read back. One user at a time.
   */
  scratch(): { addr: bigint; view: DataView; bytes: Uint8Array };
  /**
   * Unmaps everything the program mapped (execve's point of no return), then runs `then` (at
   * most AddressSpace.MAX_BATCH - 2 calls, results unchecked) in the same round trip.
   */
  unmapApplication(then?: readonly SyscallCall[]): Promise<void>;
  /** Maps the context queue and makes sure one sysmsg thread serves it. */
  ensureThread(): Promise<void>;
  /** Asks for a sysmsg thread for what is queued: wakes one, or creates one up to the limit. */
  kick(): void;
  /** The context queue's range in the memory file. Precondition: ensureThread() resolved. */
  queueRange(): FileRange;
  /**
   * The range of its rules area in the memory file, when the stub has a program filter of its
   * own (read-only in the stub; the sentry writes the trace ring's spec at its end).
   */
  rulesRange(): FileRange | undefined;
  /**
   * Rings the stub's doorbell (mail for a sentry thread that may sleep on it); with `wake`
   * false, only bumps it (a sleeper woken through another doorbell sees the change). True when
   * it woke a sleeper.
   */
  ringDoorbell(wake?: boolean): boolean;
  /** Host tids of the stub's sysmsg threads, by slot (ThreadContext.threadId names a slot). */
  sysmsgThreadTids(): Array<[slot: number, tid: number]>;
  /** Where its syscall thread's message is in `memory` (undefined: it serves no loop). */
  syscallMsg(): SyscallMsg | undefined;
  /**
   * Takes its syscall thread back from a sentry that held it and ended without letting go (a
   * worker terminated in the middle of an execve; see SyscallThreadLock).
   */
  reclaimSyscallThread(): void;
}

/**
 * Where a process's syscall-thread message is: its offset in its control memory's file, and
 * its address in the stub.
 *
 * @example
 * ```ts
 * const msg: SyscallMsg = { offset: range.start, addr: msgAddr };
 * ```
 */
export interface SyscallMsg {
  offset: number;
  addr: bigint;
}

/**
 * A fork made for a sentry (see {@link PlatformPort.forkEarly}): what the sentry adopts the
 * child with at once, and the rest to come.
 *
 * @example
 * ```ts
 * const f = await port.forkEarly(parent);
 * reply({ hostPid: f.hostPid, memory: f.memory, queue: f.queue, main: f.main });
 * const { as, main } = await f.made;
 * ```
 */
export interface EarlyFork {
  readonly hostPid: number;
  /** Its pid in its pid namespace (a sandbox's own; the host's otherwise). */
  readonly nsPid: number;
  /** Its control memory, as another thread maps it. */
  readonly memory: MemoryFileRef;
  readonly queue: FileRange;
  /** The context slot bound for its first thread. */
  readonly main: { id: number; slot: FileRange };
  readonly syscallMsg: SyscallMsg;
  readonly made: Promise<{ as: AddressSpace; main: AdoptedContext }>;
  /**
   * The sentry is done with the child's memory (its end was reported, or the program's): until
   * then the memory's fd stays open, whatever becomes of the child (the sentry maps it by that
   * number when it takes the reply).
   */
  letGo(): void;
}

/**
 * A platform context adopted by a sentry (see {@link PlatformPort.adoptContext}).
 *
 * @example
 * ```ts
 * const ctx = await port.adoptContext(as);
 * ctx.report('TRAPPED_SYSCALL', SYS.openat); // its actor shows the trap
 * ctx.release();
 * ```
 */
export interface AdoptedContext {
  /** The context id (its slot's index; what the stub's queue carries). */
  readonly id: number;
  /** Its ThreadContext slot in the memory file. */
  readonly slot: FileRange;
  /** A lifecycle step the sentry saw, for the context's actor. */
  report(type: 'TRAPPED_SYSCALL' | 'SWITCH' | 'RUNNING' | 'FAULTED', sysno?: number): void;
  /** The thread is gone: the context's id can be reused. */
  release(): void;
}
