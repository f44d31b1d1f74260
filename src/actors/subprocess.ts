import type { ActorRefFrom } from 'xstate';
import { subprocessMachine } from '../machines/subprocess.js';
import { syscallThreadMachine } from '../machines/syscallThread.js';
import { SyscallThread } from './syscallThread.js';
import type { Runtime } from './runtime.js';
import type { CreateSourceResult, InjectResult, TransactionFault } from '../tracer/protocol.js';
import { availableParallelism } from 'node:os';
import { native } from '../native.js';
import { Errors, SystrapError, toSystrapError } from '../errors.js';
import { SIG } from '../abi/linux.js';
import { SYS } from '../abi/syscalls.js';
import { WNOHANG, __WALL } from '../abi/ptrace.js';
import { PER_THREAD, SYSCALL_THREAD_SLOT, abi, queueAddr, rulesAddr, threadSlotAddr } from '../abi/stub.js';
import { SysmsgThread } from './sysmsgThread.js';
import { ContextQueue } from './contextQueue.js';
import { MAP_FIXED, MAP_SHARED, PROT_READ, PROT_WRITE } from '../abi/linux.js';
import { sysmsgThreadMachine } from '../machines/sysmsgThread.js';

let nextId = 1;

/** A context running longer than this while others wait is preempted (gVisor: 10 ms). */
const PREEMPT_MS = 10;

/**
 * A stub process and its effects (gVisor's subprocess). State lives in a subprocess machine
 * actor (`ref`) in the platform's actor system; this class performs what the machine records.
 *
 * Reaping rule (no zombie, no pid reuse hazard): a stub is reaped by the tracer worker when it
 * dies during a transaction, otherwise here on the event loop after its pidfd reports the exit
 * and only when no operation is in flight on its syscall thread.
 */
export class Subprocess {
  readonly id: string;
  readonly ref: ActorRefFrom<typeof subprocessMachine>;
  /** Set once forked. */
  pid = 0;
  thread?: SyscallThread;
  /** References: 1 for the address space using it, +1 per context (gVisor's refcount). */
  refs = 0;
  readonly isSource: boolean;
  #watch?: { close(): void };
  /** The stub exited and was not reaped yet. */
  #exitSeen = false;
  /** The runtime killed it on purpose (release without pool, close). */
  #killed = false;
  #reaped = false;
  #onReaped: Array<() => void> = [];

  private constructor(
    readonly rt: Runtime,
    isSource: boolean,
  ) {
    this.isSource = isSource;
    this.id = isSource ? 'subprocess:source' : `subprocess:${nextId++}`;
    rt.spawn(this.id, subprocessMachine);
    this.ref = rt.get(this.id) as ActorRefFrom<typeof subprocessMachine>;
  }

  /** Machine state: 'ready', 'pooled', 'dead', … ('creating' while being made). */
  get state(): string {
    const v = this.ref.getSnapshot().value;
    return typeof v === 'string' ? v : Object.keys(v)[0];
  }

  get alive(): boolean {
    return this.state !== 'dead';
  }

  /**
   * Creates the source stub (gVisor's createStub): forked by the addon's forker thread, cleaned
   * by a tracer, then parked. Every other stub is cloned from it.
   */
  static async createSource(rt: Runtime): Promise<Subprocess> {
    const sp = new Subprocess(rt, true);
    try {
      const res = await rt.tracers.run<CreateSourceResult>({
        op: 'createSource',
        memfd: rt.memoryFile.fd,
        regionStart: rt.region.start,
        regionRoEnd: rt.region.roEnd,
        taskSize: abi.STUB_TASK_SIZE,
      });
      if (!res.ok) throw toSystrapError(res.error);
      sp.#forked(res.value.pid);
      sp.thread!.initRegs = res.value.initRegs;
      sp.ref.send({ type: 'CREATED' });
      return sp;
    } catch (e) {
      sp.#fail(e);
      throw toSystrapError(e);
    }
  }

  /**
   * Creates a stub cloned from the source (requestStub on the source's syscall thread), then
   * prepares its syscall thread: message pages mapped, detached into its service loop.
   */
  static async create(rt: Runtime, source: Subprocess, fault?: TransactionFault): Promise<Subprocess> {
    const sp = new Subprocess(rt, false);
    try {
      const src = source.thread!;
      const pid = await src.transact<number>(() => ({ op: 'requestStub', source: src.threadRef(), fault }));
      sp.#forked(pid);
      const range = rt.memoryFile.allocate(abi.SYSMSG_SIZE);
      const view = rt.memoryFile.view(range);
      const msgAddr = threadSlotAddr(rt.region, SYSCALL_THREAD_SLOT);
      const t = sp.thread!;
      const dv = new DataView(view.buffer, view.byteOffset, view.byteLength);
      // On one CPU a spinning loop only delays the sentry: let it sleep at once.
      dv.setBigUint64(abi.SYSMSG_SPIN, availableParallelism() > 1 ? BigInt(abi.SYSMSG_SPIN_CYCLES) : 0n, true);
      t.msg = { range, addr: msgAddr, state: dv };
      t.initRegs = await t.transact<BigUint64Array>(() => ({
        op: 'initStub',
        tgid: pid,
        msgAddr,
        msgFileOffset: range.start,
        rulesAddr: rulesAddr(rt.region),
        rulesFileOffset: rt.rules.start,
        rulesSize: rt.rules.end - rt.rules.start,
      }));
      sp.ref.send({ type: 'CREATED' });
      return sp;
    } catch (e) {
      sp.#fail(e);
      throw toSystrapError(e);
    }
  }

  /** Runs a syscall in the stub through its syscall thread (shared memory, no ptrace). */
  syscall(sysno: number, args: readonly bigint[]): Promise<bigint> {
    return this.#guard(() => this.thread!.syscall(sysno, args));
  }

  /** Runs a syscall in the stub by ptrace injection (a whole tracer transaction). */
  inject(sysno: number, args: readonly bigint[], fault?: TransactionFault): Promise<InjectResult> {
    return this.#guard(() => {
      const t = this.thread!;
      return t.transact<InjectResult>(() => ({ op: 'inject', thread: t.threadRef(), sysno, args: [...args], loop: t.loop(), fault }));
    });
  }

  /** Sysmsg threads of this stub, by slot. Protected by: the event loop. */
  readonly sysmsgThreads = new Map<number, SysmsgThread>();
  /** Context ids whose slot is mapped in this stub (at its fixed address). */
  readonly mappedContexts = new Set<number>();
  /** The context queue, once a context ran here. */
  queue?: ContextQueue;
  #queueReady?: Promise<ContextQueue>;
  /** Sysmsg threads being created (counted against maxSysmsgThreads). */
  #creating = 0;
  /** Contexts running here that wait for their trap, and how to tell and resolve it. */
  readonly #waiters = new Map<
    object,
    { done(): boolean; resolve(): void; reject(e: unknown): void; since: number; preempt?: () => void }
  >();
  #dispatching = false;

  /**
   * Waits until `done()` holds for a context running here (its state left NONE). One wait per
   * stub, on the queue's doorbell, serves all its contexts (gVisor's dispatcher role): the libuv
   * pool, where the wait blocks, is small and shared, so it must not hold a thread per context.
   */
  waitContext(key: object, done: () => boolean, preempt?: () => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#waiters.set(key, { done, resolve, reject, since: performance.now(), preempt });
      void this.#dispatch();
    });
  }

  /**
   * gVisor's preemption: a context that has run longer than PREEMPT_MS while others wait in the
   * queue (every thread busy) is interrupted, so that it goes back to the end of the queue.
   */
  #preemptLongest(): void {
    const q = this.queue!;
    if (q.waiting === 0) return;
    let oldest: { since: number; preempt?: () => void } | undefined;
    for (const w of this.#waiters.values()) if (w.preempt && (!oldest || w.since < oldest.since)) oldest = w;
    if (!oldest || performance.now() - oldest.since < PREEMPT_MS) return;
    oldest.since = performance.now();
    oldest.preempt!();
  }

  async #dispatch(): Promise<void> {
    if (this.#dispatching) return;
    this.#dispatching = true;
    const q = this.queue!;
    try {
      while (this.#waiters.size > 0) {
        // Read the doorbell before looking: a trap published after the look moves it, and the
        // wait below then returns at once.
        const seen = q.published;
        for (const [key, w] of this.#waiters) {
          if (w.done()) {
            this.#waiters.delete(key);
            w.resolve();
          }
        }
        if (this.#waiters.size === 0) break;
        await this.rt.memoryFile._file.waitWordChange(q.doorbellOffset, seen, this.pid, PREEMPT_MS, q.doorbellOffset + 4);
        this.#preemptLongest();
      }
    } catch (e) {
      const err = toSystrapError(e);
      const out = err.code === 'ESTUBDEAD' ? Errors.StubDead(this.pid, 'while running a context') : err;
      for (const w of this.#waiters.values()) w.reject(out);
      this.#waiters.clear();
    } finally {
      this.#dispatching = false;
    }
  }

  /**
   * Never pooled: the stub carries a program's own seccomp filter (see {@link installRules}), or
   * ran a program that may have changed it. Protected by: the event loop.
   */
  noPool = false;
  /** The fd channel (STUB_FDCHAN) is closed in this stub. */
  #fdChannelClosed = false;

  /**
   * Scratch memory the syscall thread can pass to the kernel: the tail of its reply page (the
   * reply itself uses the first 16 bytes). Precondition: one user at a time (the caller's
   * sequence of syscalls is serialised by the syscall thread's queue and by the caller).
   */
  scratch(): { addr: bigint; view: DataView; bytes: Uint8Array } {
    const t = this.thread!;
    const v = this.rt.memoryFile.view(t.msg!.range);
    const off = 4096 + 512;
    const bytes = v.subarray(off, 8192);
    return { addr: t.msg!.addr + BigInt(off), view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), bytes };
  }

  /**
   * Replaces the seccomp rules sysmsg threads of this stub install (gVisor has one filter; a
   * program run by the sentry brings its own: what traps, what the kernel refuses). The stub is
   * then never pooled. Precondition: no sysmsg thread exists yet (filters cannot be removed).
   */
  async installRules(prog: Uint8Array): Promise<void> {
    if (this.sysmsgThreads.size > 0 || this.#creating > 0) throw Errors.InvalidArg('the seccomp rules of a stub can change only before its first sysmsg thread');
    if (16 + prog.length > abi.STUB_RULES_SIZE) throw Errors.InvalidArg(`the seccomp filter is too long (${prog.length / 8} instructions)`);
    this.noPool = true;
    const range = this.rt.memoryFile.allocate(abi.STUB_RULES_SIZE);
    const v = this.rt.memoryFile.view(range);
    const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
    const addr = rulesAddr(this.rt.region);
    dv.setUint16(0, prog.length / 8, true);
    dv.setBigUint64(8, addr + 16n, true);
    v.set(prog, 16);
    const ret = await this.syscall(SYS.mmap, [addr, BigInt(abi.STUB_RULES_SIZE), PROT_READ, MAP_SHARED | MAP_FIXED, BigInt(abi.STUB_MEMFD), BigInt(range.start)]);
    if (ret !== addr) throw Errors.Syscall('mmap', Number(-ret), this.pid);
  }

  /**
   * Receives the fds Node sent on the fd channel (native.sendFds) and returns their numbers in
   * the stub. Precondition: the caller sent exactly `count` fds just before and serialises
   * send/receive across stubs of the same source (they share the channel).
   */
  async receiveFds(count: number): Promise<number[]> {
    if (this.#fdChannelClosed) throw Errors.InvalidArg('fds can be passed only into a stub that has not run contexts yet');
    const { addr, view } = this.scratch();
    for (let i = 0; i < 256; i += 8) view.setBigUint64(i, 0n, true);
    const CONTROL = 16 + 4 * 16;
    view.setBigUint64(16, addr + 64n, true); // msg_iov
    view.setBigUint64(24, 1n, true); // msg_iovlen
    view.setBigUint64(32, addr + 128n, true); // msg_control
    view.setBigUint64(40, BigInt(CONTROL), true); // msg_controllen
    view.setBigUint64(64, addr + 96n, true); // iov_base
    view.setBigUint64(72, 1n, true); // iov_len
    const MSG_DONTWAIT = 0x40n;
    const ret = await this.syscall(SYS.recvmsg, [BigInt(abi.STUB_FDCHAN), addr, MSG_DONTWAIT]);
    if (ret < 0n) throw Errors.Syscall('recvmsg', Number(-ret), this.pid);
    // The control message: cmsg_len (u64), level (i32), type (i32), then the fds.
    const len = Number(view.getBigUint64(128, true));
    const level = view.getInt32(136, true);
    const type = view.getInt32(140, true);
    const n = (len - 16) / 4;
    if (level !== 1 || type !== 1 || n !== count) throw Errors.Protocol(`fd channel: expected ${count} fds, got a control message of ${len} bytes`);
    return Array.from({ length: n }, (_, i) => view.getInt32(144 + 4 * i, true));
  }

  /** Closes the stub's end of the fd channel (before any application code runs in it). */
  async closeFdChannel(): Promise<void> {
    if (this.#fdChannelClosed) return;
    this.#fdChannelClosed = true;
    await this.syscall(SYS.close, [BigInt(abi.STUB_FDCHAN)]);
  }

  /** Maps and initialises the context queue (once). */
  ensureQueue(): Promise<ContextQueue> {
    this.#queueReady ??= this.#guard(async () => {
      // Application code may run from now on: it must not reach the channel other stubs share.
      await this.closeFdChannel();
      const range = this.rt.memoryFile.allocate(abi.STUB_QUEUE_SIZE);
      const q = new ContextQueue(range, this.rt.memoryFile);
      const addr = queueAddr(this.rt.region);
      const ret = await this.syscall(SYS.mmap, [addr, BigInt(abi.STUB_QUEUE_SIZE), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, BigInt(abi.STUB_MEMFD), BigInt(range.start)]);
      if (ret !== addr) throw Errors.Syscall('mmap', Number(-ret), this.pid);
      this.queue = q;
      return q;
    });
    return this.#queueReady;
  }

  /** Makes sure at least one sysmsg thread runs (the fast path wakes threads, never makes them). */
  async ensureThread(): Promise<void> {
    for (const t of this.sysmsgThreads.values()) if (t.state === 'running') return;
    const q = await this.ensureQueue();
    q.threadStarting();
    this.#creating++;
    try {
      await this.createSysmsgThread(undefined, 0n);
    } finally {
      this.#creating--;
    }
  }

  /**
   * Makes sure a sysmsg thread will pick up what is queued (gVisor's kickSysmsgThread): when
   * fewer threads are active than contexts, wake a sleeping thread, or create one lazily up to
   * maxSysmsgThreads. With all threads busy, the next one to trap takes the context.
   */
  kick(): void {
    const q = this.queue!;
    let running = 0;
    for (const t of this.sysmsgThreads.values()) if (t.state === 'running') running++;
    const active = Math.min(q.numActiveThreads, running + this.#creating); // stub-written: a hint, clamped
    if (active >= q.numActiveContexts) return;
    if (active < running) {
      q.wakeOne();
    } else if (this.sysmsgThreads.size + this.#creating < this.rt.maxSysmsgThreads) {
      q.threadStarting();
      this.#creating++;
      this.createSysmsgThread(undefined, 0n)
        .catch(() => {
          // the stub is dead or faulted: waiting contexts see it through their own wait
        })
        .finally(() => {
          this.#creating--;
          // Contexts queued while it was being made were not kicked (it counted as coming):
          // look again now that it runs.
          if (this.alive) this.kick();
        });
    }
  }

  /**
   * Creates one sysmsg thread (gVisor's createSysmsgThread): a ptrace transaction on the
   * syscall thread clones it and prepares it; it is left parked.
   */
  createSysmsgThread(fault?: TransactionFault, startWith?: bigint): Promise<SysmsgThread> {
    // startWith: the Msg.context to start with (0n: none, look in the queue); undefined: park.
    return this.#guard(async () => {
      let slot = 1;
      while (this.sysmsgThreads.has(slot)) slot++;
      if (this.sysmsgThreads.size >= this.rt.maxSysmsgThreads) throw Errors.InvalidArg(`stub ${this.pid} has its ${this.rt.maxSysmsgThreads} sysmsg threads`);
      const id = `${this.id.replace('subprocess:', 'sysmsgThread:')}/${slot}`;
      this.rt.spawn(id, sysmsgThreadMachine, { slot });
      const ref = this.rt.get(id) as ActorRefFrom<typeof sysmsgThreadMachine>;
      const shared = this.rt.memoryFile.allocate(PER_THREAD.sharedSize);
      const smt = new SysmsgThread(ref, slot, shared, this.rt.memoryFile);
      this.sysmsgThreads.set(slot, smt);
      const slotAddr = threadSlotAddr(this.rt.region, slot);
      const sharedAddr = slotAddr + BigInt(PER_THREAD.sharedOffset);
      // stack_t for sigaltstack, written where the new thread can read it but (mapped read-only
      // at that moment) no application thread can change it: the start of the Msg page.
      const stackTAddr = smt.writeStackT(sharedAddr);
      const sigactionAddr = smt.writeSigaction(sharedAddr, this.rt.region.sighandlerAddr, this.rt.region.restorerAddr);
      if (startWith !== undefined) smt.writeMsg(sharedAddr, startWith);
      const t = this.thread!;
      try {
        smt.tid = await t.transact<number>(
          () => ({
            op: 'requestThread',
            thread: t.threadRef(),
            loop: t.loop(),
            slotAddr,
            sharedFileOffset: shared.start,
            stackTAddr,
            fprogAddr: rulesAddr(this.rt.region),
            sigactionAddr,
            start: startWith !== undefined,
            fault,
          }),
          (step) => smt.apply(step),
        );
        if (this.#killed && smt.tid > 0) {
          try {
            native.kill(smt.tid, SIG.SIGKILL); // made while the stub was being killed
          } catch {
            // gone
          }
        }
        return smt;
      } catch (e) {
        smt.failed(String((e as Error).message ?? e));
        this.sysmsgThreads.delete(slot);
        throw e;
      }
    });
  }

  /** Unmaps everything the application may have mapped (gVisor's subprocess.unmap). */
  async unmapApplication(): Promise<void> {
    const r = this.rt.region;
    const a = await this.syscall(SYS.munmap, [0n, r.start]);
    const b = await this.syscall(SYS.munmap, [r.end, abi.STUB_TASK_SIZE - r.end]);
    if (a < 0n || b < 0n) throw Errors.Syscall('munmap', Number(-(a < 0n ? a : b)), this.pid);
  }

  /** Marks the stub faulted: alive but untrusted, never pooled. */
  fault(reason: string): void {
    if (this.state === 'ready' || this.state === 'releasing') this.ref.send({ type: 'FAULT', reason });
  }

  /** Kills the stub (SIGKILL) and resolves once it is reaped. */
  kill(): Promise<void> {
    if (this.#reaped || this.pid === 0) return Promise.resolve();
    const done = new Promise<void>((resolve) => this.#onReaped.push(resolve));
    if (!this.#killed) {
      this.#killed = true;
      // Sysmsg threads are processes of their own (no CLONE_THREAD): PDEATHSIG ends them when
      // the stub dies, but they are killed first all the same, so that none can outlive it.
      for (const t of this.sysmsgThreads.values()) {
        try {
          if (t.tid > 0) native.kill(t.tid, SIG.SIGKILL);
        } catch {
          // already gone
        }
      }
      try {
        native.kill(this.pid, SIG.SIGKILL);
      } catch {
        // already gone: the exit watch or a tracer reaps it
      }
    }
    this.#maybeReap();
    return done;
  }

  /** Resolves once the stub is reaped. */
  reaped(): Promise<void> {
    if (this.#reaped || this.pid === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.#onReaped.push(resolve));
  }

  async #guard<T>(fn: () => Promise<T>): Promise<T> {
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
    this.rt.spawn(this.threadId, syscallThreadMachine, { pid });
    this.thread = new SyscallThread(
      this.rt.get(this.threadId) as ActorRefFrom<typeof syscallThreadMachine>,
      pid,
      this.rt.tracers,
      this.rt.memoryFile,
    );
    this.thread.onIdle = () => this.#maybeReap();
    this.ref.send({ type: 'FORKED', pid });
    this.rt.track(this);
    try {
      this.#watch = new native.ExitWatch(pid, () => {
        this.#exitSeen = true;
        this.#maybeReap();
      });
    } catch {
      // pidfd_open failed: the stub is already gone
      this.#exitSeen = true;
      this.#maybeReap();
    }
  }

  get threadId(): string {
    return this.id.replace('subprocess:', 'syscallThread:');
  }

  /** Reaps the exited stub unless a tracer may hold it (then the tracer reaps, see class doc). */
  #maybeReap(): void {
    if (this.#reaped || !this.#exitSeen || this.thread?.busy) return;
    try {
      native.wait4(this.pid, WNOHANG | __WALL);
    } catch {
      // ECHILD: a tracer worker reaped it
    }
    this.#reaped = true;
    this.#watch?.close();
    this.#died(this.#killed ? 'killed by the runtime' : 'the stub process exited');
    for (const f of this.#onReaped.splice(0)) f();
    this.rt.untrack(this);
  }

  #died(reason: string): void {
    this.thread?.exited(reason);
    for (const smt of this.sysmsgThreads.values()) smt.exited(reason);
    if (this.state === 'dead') return;
    this.ref.send(this.#killed ? { type: 'DESTROY' } : { type: 'EXITED', reason });
    this.rt.forget(this);
  }

  #fail(e: unknown): void {
    const err = e instanceof SystrapError ? e : toSystrapError(e);
    if (this.state !== 'dead') this.ref.send({ type: 'FAILED', reason: err.message });
    if (this.pid) void this.kill();
  }
}
