import type { ActorRefFrom } from 'xstate';
import type { subprocessMachine } from '../machines/subprocess.js';
import type { syscallThreadMachine } from '../machines/syscallThread.js';
import { SyscallThread, type BatchCall } from './syscallThread.js';
import type { LiveStub, Runtime } from './runtime.js';
import type { InjectResult, TransactionFault } from '../tracer/protocol.js';
import { native } from '../native.js';
import { Errors, checkStubReply, toSystrapError } from '../errors.js';
import { MAP_FIXED, MAP_SHARED, PROT_READ, PROT_WRITE, SIG } from '../abi/linux.js';
import { SYS } from '../abi/syscalls.js';
import { WNOHANG, __WALL } from '../abi/ptrace.js';
import { PER_THREAD, SYSCALL_SCRATCH, SYSCALL_THREAD_SLOT, abi, contextSlotAddr, queueAddr, rulesAddr, threadSlotAddr } from '../abi/stub.js';
import { writeSockFprog } from '../abi/seccomp.js';
import type { FileRange } from '../memoryFile.js';
import { BUDGETS } from '../shm/budgets.js';
import { ContextQueue } from '../shm/contextQueue.js';
import { ContextDispatcher } from './contextDispatcher.js';
import { SysmsgThreads } from './sysmsgThreads.js';
import { receiveFds } from './fdChannel.js';
import { ControlMemory } from './controlMemory.js';
import { SandboxInit } from './sandboxInit.js';

/** The private setup steps of a stub being made (see Subprocess.make). */
export interface CreationHooks {
  /** The stub process exists: its actors, exit watch and syscall thread object. */
  forked(pid: number): void;
  /** initStub: the syscall thread's message and rules mapped, its loop started. */
  initSyscallThread(): Promise<void>;
  /** The stub is in a sandbox of its own, whose init is `initPid`. */
  sandbox(initPid: number): void;
  /** The stub is a fork of `parent` (see stubCreation.ts forkStub). */
  forkedFrom(parent: Subprocess): void;
  /** Its syscall thread's message is at `msgAddr` in its control memory (mapped already). */
  setMessage(msgAddr: bigint): FileRange;
}

/**
 * A stub process and its effects (gVisor's subprocess). Its lifecycle lives in a subprocess
 * machine actor (`ref`) in the platform's actor system; this class performs what the machine
 * records. Its parts: the syscall thread (`thread`), the sysmsg threads (`sysmsgThreads`), and,
 * once a context ran here, the context queue and the dispatcher that waits for their traps.
 *
 * Reaping rule (no zombie, no pid reuse hazard): a stub is reaped by the tracer worker when it
 * dies during a transaction, otherwise here on the event loop after its pidfd reports the exit
 * and only when no operation is in flight on its syscall thread.
 *
 * @example
 * ```ts
 * const sp = await Subprocess.create(rt, source);
 * await sp.mapShared(addr, range, PROT_READ | PROT_WRITE);
 * await sp.kill();
 * ```
 */
export class Subprocess implements LiveStub {
  readonly id: string;
  readonly ref: ActorRefFrom<typeof subprocessMachine>;
  /** Set once forked. */
  pid = 0;
  /** Set once forked; every operation on the stub goes through it. */
  thread!: SyscallThread;
  /** References of address spaces: 1 while one uses it (pooled stubs have none). */
  refs = 0;
  readonly isSource: boolean;
  readonly sysmsgThreads = new SysmsgThreads(this);
  /** The stub's control memory (see ControlMemory); allocated when its syscall thread starts. */
  readonly control: ControlMemory;
  /** The context queue and its dispatcher, once a context ran here. */
  queue?: ContextQueue;
  dispatcher?: ContextDispatcher;
  #queueReady?: Promise<ContextQueue>;
  /** A fork child's queue, set up before its loop ran (see forkStub). Set at construction. */
  readonly #presetQueue?: ContextQueue;
  /**
   * Never pooled: the stub carries a program's own seccomp filter (see {@link installRules}), or
   * ran a program that may have changed it. Protected by: the event loop.
   */
  noPool = false;
  /** The fd channel (STUB_FDCHAN) is closed in this stub. */
  #fdChannelClosed = false;
  #watch?: { close(): void };
  /**
   * The host process's own status, which the machine does not hold: its lifecycle can end
   * (`dead`: released without pooling) while the process still runs until killed, and reaping
   * is an effect. `#exited`: its pidfd reported the exit; `#reaped`: waitpid was done (by us or
   * by a tracer), the pid is no longer ours to signal.
   */
  #exited = false;
  #reaped = false;
  /** A sandboxed stub's init (see createSandbox, SandboxInit): the stub is the init's child. */
  #sandboxInit?: SandboxInit;
  #onReaped: Array<() => void> = [];

  /**
   * A forked stub (see fork): in its parent's sandbox (it does not own the init), its control
   * memory in a file of its own and mapped whole at the fork, holding neither the memory file
   * nor the fd channel. Set once, before the stub is used.
   */
  #forkOf?: { sandboxed: boolean };
  /** The program filter this stub's sysmsg threads install (installRules), for its forks. */
  #rulesProg?: Uint8Array;
  /** Its syscall patching table for runner contexts, once asked for (PlatformContext.run): where, or undefined if it could not be mapped. */
  usertrapTable?: Promise<bigint | undefined>;

  private constructor(readonly rt: Runtime, isSource: boolean, control?: ControlMemory, queue?: ContextQueue) {
    this.isSource = isSource;
    this.id = isSource ? 'subprocess:source' : `subprocess:${rt.nextId('subprocess')}`;
    this.ref = rt.spawn({ kind: 'subprocess', id: this.id }) as ActorRefFrom<typeof subprocessMachine>;
    this.control = control ?? new ControlMemory(rt.memoryFile, rt.region);
    this.#presetQueue = queue;
  }

  /** Machine state: 'ready', 'pooled', 'dead', … ('creating' while being made). */
  get state(): string {
    const v = this.ref.getSnapshot().value;
    return typeof v === 'string' ? v : Object.keys(v)[0];
  }

  get alive(): boolean {
    return this.state !== 'dead';
  }

  /** The runtime asked for its death (see the machine's KILL). */
  get killRequested(): boolean {
    return this.ref.getSnapshot().context.killRequested;
  }

  /**
   * Makes a stub (for src/actors/stubCreation.ts, where every way to create one lives): `build`
   * forks or clones it and sets it up through `hooks`, the private setup steps. A failure kills
   * what was made and rejects with a SystrapError.
   */
  static async make(rt: Runtime, opts: { source?: boolean; control?: ControlMemory; queue?: ContextQueue }, build: (sp: Subprocess, hooks: CreationHooks) => Promise<void>): Promise<Subprocess> {
    const sp = new Subprocess(rt, opts.source ?? false, opts.control, opts.queue);
    const hooks: CreationHooks = {
      forked: (pid) => sp.#forked(pid),
      initSyscallThread: () => sp.#initSyscallThread(),
      sandbox: (initPid) => {
        sp.#sandboxInit = new SandboxInit(initPid);
      },
      forkedFrom: (parent) => {
        sp.#forkOf = { sandboxed: parent.sandboxed };
        sp.noPool = true;
        sp.#fdChannelClosed = true;
        sp.#rulesProg = parent.#rulesProg;
      },
      setMessage: (msgAddr) => sp.#setMessage(msgAddr),
    };
    try {
      await build(sp, hooks);
      sp.ref.send({ type: 'CREATED' });
      return sp;
    } catch (e) {
      sp.#fail(e);
      throw toSystrapError(e);
    }
  }

  /** The program filter its sysmsg threads install, if it has its own (see installRules). */
  get rulesProg(): Uint8Array | undefined {
    return this.#rulesProg;
  }

  /** True for a stub in a sandbox (its own, or its parent's when forked). */
  get sandboxed(): boolean {
    return this.#sandboxInit !== undefined || this.#forkOf?.sandboxed === true;
  }

  /** The pid whose fd channel reaches this stub: its own in a sandbox, else the source's. */
  fdChannelOwner(sourcePid: number): number {
    return this.#sandboxInit ? this.pid : sourcePid;
  }

  /** initStub: the syscall thread's message mapped, the rules area too, the loop started. */
  async #initSyscallThread(): Promise<void> {
    const rt = this.rt;
    this.control.allocate();
    const msgAddr = threadSlotAddr(rt.region, SYSCALL_THREAD_SLOT);
    const range = this.#setMessage(msgAddr);
    const t = this.thread;
    t.initRegs = await t.transact<BigUint64Array>(() => ({
      op: 'initStub',
      tgid: this.pid,
      msgAddr,
      msgFileOffset: range.start,
      rulesAddr: rulesAddr(rt.region),
      rulesFileOffset: rt.rules.start,
      rulesSize: rt.rules.end - rt.rules.start,
    }));
  }

  /** The syscall thread's message at `msgAddr` in the control memory: its view, its spin. */
  #setMessage(msgAddr: bigint): FileRange {
    const range = this.control.rangeAt(msgAddr, abi.SYSMSG_SIZE);
    const view = this.control.file.view(range);
    const dv = new DataView(view.buffer, view.byteOffset, view.byteLength);
    dv.setBigUint64(abi.SYSMSG_SPIN, BigInt(BUDGETS.stubSyscallSpinCycles), true);
    this.thread.msg = { range, addr: msgAddr, state: dv };
    return range;
  }

  /** Runs a syscall in the stub through its syscall thread (shared memory, no ptrace). */
  syscall(sysno: number, args: readonly bigint[]): Promise<bigint> {
    return this.guard(() => this.thread.syscall(sysno, args));
  }

  /** Runs syscalls through the service loop in one round trip (see SyscallThread.batch). */
  batch(calls: readonly BatchCall[]): Promise<bigint[]> {
    return this.guard(() => this.thread.batch(calls));
  }

  /** Runs a syscall in the stub by ptrace injection (a whole tracer transaction). */
  inject(sysno: number, args: readonly bigint[], fault?: TransactionFault): Promise<InjectResult> {
    return this.guard(() => {
      const t = this.thread;
      return t.transact<InjectResult>(() => ({ op: 'inject', thread: t.threadRef(), sysno, args: [...args], loop: t.loop(), fault }));
    });
  }

  /**
   * Maps `range` of the memory file at `addr` in the stub (MAP_SHARED|MAP_FIXED, plus `flags`).
   * Any answer but `addr` fails: an errno as that error, anything else as EPROTOCOL, and then
   * the stub is faulted (its reply memory was forged: it is no longer trusted).
   */
  async mapShared(addr: bigint, range: FileRange, prot: bigint, flags = 0n): Promise<void> {
    const len = BigInt(range.end - range.start);
    const ret = await this.syscall(SYS.mmap, [addr, len, prot, MAP_SHARED | MAP_FIXED | flags, BigInt(abi.STUB_MEMFD), BigInt(range.start)]);
    try {
      checkStubReply(ret, { syscall: 'mmap', expect: addr, pid: this.pid });
    } catch (e) {
      if ((e as { code?: string }).code === 'EPROTOCOL') this.fault((e as Error).message);
      throw e;
    }
  }

  /** The shared part (signal stack and Msg page) of sysmsg thread slot `slot`. */
  threadShared(slot: number): FileRange {
    return this.control.threadShared(slot);
  }

  /** The syscall thread's request page (read-only in the stub), for transaction arguments. */
  argumentPage(): { view: DataView; addr: bigint } {
    const msg = this.thread.msg;
    if (!msg) throw Errors.Protocol(`${this.id} has no syscall loop`, this.pid);
    const v = this.control.file.view(msg.range);
    return { view: new DataView(v.buffer, v.byteOffset, 4096), addr: msg.addr };
  }

  /**
   * Scratch memory the syscall thread can pass to the kernel: the tail of its reply page.
   * Precondition: one user at a time (the caller's sequence of syscalls is serialised by the
   * syscall thread's queue and by the caller).
   */
  scratch(): { addr: bigint; view: DataView; bytes: Uint8Array } {
    const msg = this.thread.msg;
    if (!msg) throw Errors.Protocol(`${this.id} has no syscall loop`, this.pid);
    const bytes = this.control.file.view(msg.range).subarray(SYSCALL_SCRATCH.offset, SYSCALL_SCRATCH.end);
    return { addr: msg.addr + BigInt(SYSCALL_SCRATCH.offset), view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), bytes };
  }

  /**
   * Replaces the seccomp rules sysmsg threads of this stub install (gVisor has one; a program run
   * by the sentry brings its own: what traps, what the kernel refuses; the area's last 2 KiB are
   * the trace ring spec). Never pooled then. Precondition: no sysmsg thread yet (filters stay).
   */
  async installRules(prog: Uint8Array): Promise<void> {
    if (this.sysmsgThreads.size > 0) throw Errors.InvalidArg('the seccomp rules of a stub can change only before its first sysmsg thread');
    if (16 + prog.length > abi.STUB_TRACE_SPEC_OFFSET) throw Errors.InvalidArg(`the seccomp filter is too long (${prog.length / 8} instructions)`);
    this.noPool = true;
    this.#rulesProg = prog;
    const range = this.control.allocateRules();
    const addr = rulesAddr(this.rt.region);
    writeSockFprog(this.control.file.view(range), prog, addr);
    await this.mapShared(addr, range, PROT_READ);
  }

  /**
   * Receives the fds Node sent on the fd channel (native.sendFds) and returns their numbers in
   * the stub. See {@link receiveFds} for the preconditions.
   */
  receiveFds(count: number): Promise<number[]> {
    if (this.#fdChannelClosed) throw Errors.InvalidArg('fds can be passed only into a stub that has not run contexts yet');
    return receiveFds(this, count);
  }

  /** Closes the stub's end of the fd channel (before any application code runs in it). */
  async closeFdChannel(): Promise<void> {
    if (this.#fdChannelClosed) return;
    this.#fdChannelClosed = true;
    await this.syscall(SYS.close, [BigInt(abi.STUB_FDCHAN)]);
  }

  /**
   * Maps the rest of the control memory and initialises the context queue (once), before the
   * first context runs: the queue, every ThreadContext slot, the signal stacks and Msg pages of
   * every sysmsg thread the stub may have. From then on the stub needs no fd to map anything:
   * it closes the fd channel (other stubs of the source share it), and a stub running a program
   * (its own filter, see installRules) closes its memory file too, so that no program holds a
   * way to the file: it sees its own control memory through these mappings and nothing else.
   */
  ensureQueue(): Promise<ContextQueue> {
    this.#queueReady ??= this.guard(async () => {
      const { region, maxSysmsgThreads } = this.rt;
      const rw = PROT_READ | PROT_WRITE;
      const queueRange = this.control.rangeAt(queueAddr(region), abi.STUB_QUEUE_SIZE);
      const q = this.#presetQueue ?? new ContextQueue(queueRange, this.control.file.shared);
      // A forked stub mapped all of its control memory at the fork, and holds no fd to close.
      if (!this.#forkOf) {
        await this.mapShared(queueAddr(region), queueRange, rw);
        // The slots, then the trace ring (one mapping; the file is sparse: an unused ring costs nothing).
        const slots = contextSlotAddr(region, 0);
        await this.mapShared(slots, this.control.rangeAt(slots, abi.STUB_TRACE_RING_OFFSET + abi.STUB_TRACE_RING_SIZE - abi.STUB_CONTEXTS_OFFSET), rw);
        for (let slot = 1; slot <= maxSysmsgThreads; slot++) {
          const at = threadSlotAddr(region, slot) + BigInt(PER_THREAD.sharedOffset);
          await this.mapShared(at, this.threadShared(slot), rw);
        }
        // Application code may run from now on.
        await this.closeFdChannel();
        if (this.noPool) checkStubReply(await this.syscall(SYS.close, [BigInt(abi.STUB_MEMFD)]), { syscall: 'close', expect: 0n, pid: this.pid });
      }
      this.queue = q;
      this.dispatcher = new ContextDispatcher(this.pid, q);
      return q;
    });
    return this.#queueReady;
  }

  /** Makes sure a sysmsg thread will pick up what is queued (see SysmsgThreads.kick). */
  kick(): void {
    if (this.queue) this.sysmsgThreads.kick(this.queue);
  }

  /** Unmaps all the application may have mapped (gVisor's subprocess.unmap), then runs `then` (≤ 30 calls, unchecked) in the same round trip. */
  async unmapApplication(then: readonly BatchCall[] = []): Promise<void> {
    const { start, end } = this.rt.region;
    const unmap = [{ sysno: SYS.munmap, args: [0n, start], expect: 0n }, { sysno: SYS.munmap, args: [end, abi.STUB_TASK_SIZE - end], expect: 0n }];
    for (const r of (await this.batch([...unmap, ...then])).slice(0, 2)) checkStubReply(r, { syscall: 'munmap', expect: 0n, pid: this.pid });
  }

  /** Marks the stub faulted: alive but untrusted, never pooled. */
  fault(reason: string): void {
    if (this.state === 'ready' || this.state === 'releasing') this.ref.send({ type: 'FAULT', reason });
  }

  /** Kills the stub (SIGKILL) and resolves once it is reaped (in a sandbox: once the sandbox is empty). */
  kill(): Promise<void> {
    if (this.#reaped || this.pid === 0) {
      this.#sandboxInit?.kill(); // its sysmsg threads may be left inside
      return this.#sandboxInit?.gone ?? Promise.resolve();
    }
    const done = new Promise<void>((resolve) => this.#onReaped.push(resolve));
    if (!this.killRequested) {
      this.ref.send({ type: 'KILL' });
      // A sandbox ends with its init: the kernel kills everything inside.
      this.#sandboxInit?.kill();
      // Sysmsg threads first: none may outlive the stub (see SysmsgThreads.killAll).
      this.sysmsgThreads.killAll();
      try {
        native.kill(this.pid, SIG.SIGKILL);
      } catch {
        // already gone: the exit watch or a tracer reaps it
      }
    }
    this.#maybeReap();
    return this.#sandboxInit ? Promise.all([done, this.#sandboxInit.gone]).then(() => undefined) : done;
  }

  /** Resolves once the stub is reaped (and, in a sandbox, everything else inside). */
  reaped(): Promise<void> {
    const done = this.#reaped || this.pid === 0 ? Promise.resolve() : new Promise<void>((resolve) => this.#onReaped.push(resolve));
    return this.#sandboxInit ? Promise.all([done, this.#sandboxInit.gone]).then(() => undefined) : done;
  }

  /**
   * Runs `fn` unless the stub is dead or faulted (then ESTUBDEAD / EFAULTED at once); a death
   * `fn` meets becomes the stub's.
   */
  async guard<T>(fn: () => Promise<T>): Promise<T> {
    const st = this.state;
    if (st === 'dead') throw Errors.StubDead(this.pid, this.ref.getSnapshot().context.reason ?? 'dead');
    if (st === 'faulted') throw Errors.Faulted(this.pid, this.ref.getSnapshot().context.reason ?? '');
    try {
      return await fn();
    } catch (e) {
      const err = toSystrapError(e);
      if (err.code === 'ESTUBDEAD') this.#died(err.message);
      throw err;
    }
  }

  #forked(pid: number): void {
    this.pid = pid;
    const ref = this.rt.spawn({ kind: 'syscallThread', id: this.threadId, input: { pid } }) as ActorRefFrom<typeof syscallThreadMachine>;
    this.thread = new SyscallThread(ref, pid, this.rt.tracers, this.control.file, this.rt.region.syscallAddr);
    this.thread.onIdle = () => this.#maybeReap();
    // Not Node's child: the waits that tell a slow stub from a dead one need its pidfd.
    if (this.sandboxed) native.trackExit(pid);
    this.ref.send({ type: 'FORKED', pid });
    this.rt.track(this);
    try {
      this.#watch = new native.ExitWatch(pid, () => this.#exitSeen());
    } catch {
      this.#exitSeen(); // pidfd_open failed: the stub is already gone
    }
  }

  get threadId(): string {
    return this.id.replace('subprocess:', 'syscallThread:');
  }

  #exitSeen(): void {
    this.#exited = true;
    this.sysmsgThreads.reapOrphans();
    this.#died('the stub process exited');
    this.#maybeReap();
  }

  /** Reaps the dead stub unless a tracer may hold it (then the tracer reaps, see class doc). */
  #maybeReap(): void {
    if (this.#reaped || !this.#exited || this.thread?.busy) return;
    try {
      native.wait4(this.pid, WNOHANG | __WALL);
    } catch {
      // ECHILD: a tracer worker reaped it
    }
    this.#reaped = true;
    this.#watch?.close();
    if (this.#sandboxInit) native.closeFdChannel(this.pid);
    if (this.sandboxed) native.untrackExit(this.pid);
    this.control.ownerReaped();
    for (const f of this.#onReaped.splice(0)) f();
    this.rt.untrack(this);
  }

  /** The stub's death is known: the machine decides whether the runtime caused it. */
  #died(reason: string): void {
    this.thread?.exited(reason);
    this.sysmsgThreads.exited(reason);
    if (!this.alive) return;
    this.ref.send({ type: 'EXITED', reason });
    this.rt.forget(this);
  }

  #fail(e: unknown): void {
    const err = toSystrapError(e);
    if (this.alive) this.ref.send({ type: 'FAILED', reason: err.message });
    if (this.pid) void this.kill();
  }
}
