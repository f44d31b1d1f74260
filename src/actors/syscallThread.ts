import type { ActorRefFrom } from 'xstate';
import type { syscallThreadMachine, SyscallThreadEvent } from '../machines/syscallThread.js';
import type { TracerPool } from './tracerPool.js';
import type { ThreadRef, TracerRequestBody, TracerResponse, TransactionStep } from '../tracer/protocol.js';
import type { MemoryFile, FileRange } from '../memoryFile.js';
import { deserializeError, Errors, toSystrapError } from '../errors.js';
import { abi } from '../abi/stub.js';
import { BUDGETS } from '../shm/budgets.js';
import { SyscallThreadLock, SyscallThreadOwner } from '../shm/syscallThreadLock.js';
import { readBatch, writeBatch, type BatchCall } from '../shm/syscallBatch.js';

export type { BatchCall };

/** One operation's hold of the loop: `released` once let go of early (see SyscallThread.#call). */
interface Held {
  released: boolean;
}

/**
 * The effects of a syscall thread: ptrace transactions through the tracer pool, and
 * shared-memory syscalls through its service loop. Its state lives in a syscallThread machine
 * actor (`ref`); this class sends that actor the steps the tracer reports.
 *
 * Every operation is serialised on `#queue` (gVisor's syscallThreadMu): a transaction attaches
 * the thread, which stops its loop, so a shared-memory request must never overlap one.
 */
export class SyscallThread {
  /** Promise of the last queued operation. Protected by: the event loop. */
  #queue: Promise<unknown> = Promise.resolve();
  /** Operations queued or running. */
  #pending = 0;
  /** Registers captured at the stub's first stop; set once the stub exists. */
  initRegs?: BigUint64Array;
  /** The 2-page message of the service loop, once it runs one (the source stub has none). */
  msg?: { range: FileRange; addr: bigint; state: DataView };
  /** Shared-memory request arguments (reused: requests are serialised). */
  #args = new BigUint64Array(6);
  /** The lock shared with a sentry worker that may post to the same loop (made with `msg`). */
  #lock?: SyscallThreadLock;

  constructor(
    readonly ref: ActorRefFrom<typeof syscallThreadMachine>,
    readonly pid: number,
    private readonly tracers: TracerPool,
    private readonly memoryFile: MemoryFile,
    /** The stub's `syscall` instruction (StubRegion.syscallAddr). */
    private readonly syscallAddr: bigint,
  ) {}

  /** True while an operation is queued or running (a tracer may be attached). */
  get busy(): boolean {
    return this.#pending > 0;
  }

  /** Current machine state ('detached', 'attached', 'dead', …). */
  get state(): string {
    return String(this.ref.getSnapshot().value);
  }

  /** A thread reference for tracer requests (without initRegs: the tracer takes them, see ThreadRef). */
  threadRef(): ThreadRef {
    return { tgid: this.pid, tid: this.pid, syscallAddr: this.syscallAddr, ...(this.initRegs ? { initRegs: this.initRegs } : {}) };
  }

  /** The loop position to detach back into, when the thread serves one. */
  loop(): { msgAddr: bigint; state: number } | undefined {
    return this.msg && { msgAddr: this.msg.addr, state: this.msg.state.getUint32(abi.SYSMSG_STATE, true) };
  }

  /**
   * Runs one ptrace transaction on this thread. The request is built when its turn comes, so
   * it sees the loop state as it is then.
   */
  transact<T>(build: () => TracerRequestBody, onOther?: (step: TransactionStep) => void): Promise<T> {
    return this.#serialise(async () => {
      this.#checkAlive();
      this.ref.send({ type: 'ATTACH' });
      let res: TracerResponse<T>;
      try {
        res = await this.tracers.run<T>(build(), (step) => (step.tid === this.pid ? this.#apply(step) : onOther?.(step)));
      } catch (e) {
        this.ref.send({ type: 'FAILED', error: String(e) });
        throw toSystrapError(e);
      }
      if (res.ok) return res.value;
      const err = deserializeError(res.error);
      if (this.state === 'attaching') this.ref.send({ type: 'FAILED', error: err.message });
      throw err;
    });
  }

  /**
   * One syscall run by the stub's service loop (no ptrace). Returns the raw result (negative:
   * -errno); it is written by the stub, so it is untrusted (gVisor's rule: use this only for
   * calls with a single legitimate success value). `releaseOnAnswer`: the loop is let go of as
   * soon as the stub answers, before this thread's event loop hears it (a sentry's execve waits
   * for it no longer), for a caller that reads nothing more of the message afterwards.
   */
  syscall(sysno: number, args: readonly bigint[], prepare?: () => void, releaseOnAnswer = false): Promise<bigint> {
    return this.#serialise(async (held) => {
      this.#checkAlive();
      prepare?.();
      return this.#call(sysno, args, releaseOnAnswer ? held : undefined);
    });
  }

  /**
   * The answer to a request posted before this queue served anything (a fork child's first
   * thread, see postFirstThread), awaited as an operation of the queue: what comes after it
   * waits for it. The poster took the loop for the main thread; the answer lets go of it
   * natively (as {@link syscall}'s releaseOnAnswer), or this operation's end does. Returns the
   * raw, untrusted result. Precondition: the first operation of the queue.
   */
  adoptPosted(next: number): Promise<bigint> {
    return this.#serialise(async (held) => {
      this.#checkAlive();
      const msg = this.msg;
      if (!msg) throw Errors.Protocol(`stub ${this.pid} has no syscall loop`, this.pid);
      return this.#answer(this.memoryFile.shared.syscallThreadAwait(msg.range.start, this.pid, next, -1, BUDGETS.syscallThreadSpinNs, true), held);
    }, true);
  }

  /**
   * Several syscalls run by the service loop in one round trip (STUB_REQUEST_BATCH), in order:
   * the loop stops after the first whose `expect` is given and not what it returned. Returns the
   * raw results of those that ran, untrusted as {@link syscall}'s: a count the stub could not
   * have run is EPROTOCOL. Why: a program's exec is some thirty calls, each a round trip that
   * costs tens of µs when the stub and Node share a CPU.
   */
  batch(calls: readonly BatchCall[]): Promise<bigint[]> {
    if (calls.length === 0) return Promise.resolve([]);
    if (calls.length > abi.SYSMSG_BATCH_MAX) throw Errors.InvalidArg(`a batch holds at most ${abi.SYSMSG_BATCH_MAX} calls (got ${calls.length})`);
    return this.#serialise(async () => {
      this.#checkAlive();
      const msg = this.msg;
      if (!msg) throw Errors.Protocol(`stub ${this.pid} has no syscall loop`, this.pid);
      // Written when this request's turn comes: page 0 serves every request in turn.
      const page = this.memoryFile.view(msg.range);
      const dv = new DataView(page.buffer, page.byteOffset, page.byteLength);
      writeBatch(dv, calls);
      return readBatch(dv, await this.#call(abi.STUB_REQUEST_BATCH, [BigInt(calls.length)]), calls.length, this.pid);
    });
  }

  /**
   * Runs `fn` as one operation of this thread's queue: nothing else reaches the thread until
   * it settles. `call` is {@link syscall} inside it (see {@link lastState} for its request's state).
   */
  exclusive<T>(fn: (call: (sysno: number, args: readonly bigint[]) => Promise<bigint>) => Promise<T>): Promise<T> {
    return this.#serialise(async () => {
      this.#checkAlive();
      return fn((sysno, args) => this.#call(sysno, args));
    });
  }

  /** The state of the last request posted (page 0, written by Node only). */
  get lastState(): number {
    if (!this.msg) throw Errors.Protocol(`stub ${this.pid} has no syscall loop`, this.pid);
    return this.msg.state.getUint32(abi.SYSMSG_STATE, true);
  }

  /**
   * The fork child's answer to request `state` (STUB_REQUEST_FORK, see stub.S): the fd number
   * of its memfd, which it writes in this (its parent's) message. Spins a little (the child
   * answers within microseconds), then sleeps; ESTUBDEAD if the child `pid` dies first.
   * Precondition: inside {@link exclusive}, right after the fork request.
   */
  async forkReply(state: number, pid: number): Promise<bigint> {
    const msg = this.msg!;
    const page = this.memoryFile.view(msg.range);
    const dv = new DataView(page.buffer, page.byteOffset, page.byteLength);
    const until = process.hrtime.bigint() + BigInt(BUDGETS.syscallThreadSpinNs);
    for (;;) {
      const done = dv.getUint32(abi.SYSMSG_FORK_DONE, true);
      if (done === state) return dv.getBigUint64(abi.SYSMSG_FORK_REPLY, true);
      if (process.hrtime.bigint() < until) continue;
      try {
        await this.memoryFile.shared.waitWordChange(msg.range.start + abi.SYSMSG_FORK_DONE, done, pid, -1);
      } catch (e) {
        const err = toSystrapError(e);
        if (err.code === 'ESTUBDEAD') throw Errors.StubDead(pid, 'the fork child died before it answered');
        throw err;
      }
    }
  }

  /** Tells the fork child of request `state` that Node adopted its memfd (SYSMSG_FORK_ACK). */
  ackFork(state: number): void {
    const msg = this.msg!;
    const page = this.memoryFile.view(msg.range);
    new DataView(page.buffer, page.byteOffset, page.byteLength).setUint32(abi.SYSMSG_FORK_ACK, state, true);
    this.memoryFile.shared.futexWake(msg.range.start + abi.SYSMSG_FORK_ACK, 1);
  }

  /**
   * One request and its answer. With `held`, the loop is let go of as soon as the stub answers
   * (natively, on the pool thread that saw it: see native syscallThreadCall), not once this
   * thread's event loop hears of it: for a caller that reads nothing more of the message.
   */
  async #call(sysno: number, args: readonly bigint[], held?: Held): Promise<bigint> {
    {
      const msg = this.msg;
      if (!msg) throw Errors.Protocol(`stub ${this.pid} has no syscall loop`, this.pid);
      const a = this.#args;
      for (let i = 0; i < 6; i++) a[i] = BigInt.asUintN(64, args[i] ?? 0n);
      let r: bigint | Promise<bigint>;
      try {
        r = this.memoryFile.shared.syscallThreadCall(msg.range.start, this.pid, sysno, a, -1, BUDGETS.syscallThreadSpinNs, held !== undefined);
      } catch (e) {
        throw toSystrapError(e);
      }
      return this.#answer(r, held);
    }
  }

  /** A native call's answer: at once, or from libuv's pool (then `held` was let go of natively). */
  async #answer(r: bigint | Promise<bigint>, held?: Held): Promise<bigint> {
    if (typeof r === 'bigint') return BigInt.asIntN(64, r);
    try {
      const ret = await r;
      if (held) held.released = true;
      return BigInt.asIntN(64, ret);
    } catch (e) {
      const err = toSystrapError(e);
      if (err.code === 'ESTUBDEAD') throw Errors.StubDead(this.pid, 'while serving a syscall');
      throw err;
    }
  }

  /**
   * Takes the loop back from a sentry worker that held it and ended without letting go (it was
   * terminated in the middle of an execve): the queue's operations wait for it otherwise.
   * Precondition: no sentry uses this stub any more.
   */
  reclaimFromSentry(): void {
    this.#lockOf()?.reclaim(SyscallThreadOwner.Sentry);
  }

  #lockOf(): SyscallThreadLock | undefined {
    if (!this.msg) return undefined;
    return (this.#lock ??= new SyscallThreadLock(this.memoryFile.shared, this.msg.range.start));
  }

  /** Records the thread's death (reported by its subprocess). */
  exited(reason: string): void {
    if (this.state !== 'dead') this.ref.send({ type: 'EXITED', reason });
  }

  #apply(s: TransactionStep): void {
    if (s.type === 'STACK_MAPPED' || s.type === 'SECCOMP_INSTALLED' || s.type === 'STARTED') return; // sysmsg-thread steps
    const ev: SyscallThreadEvent = s.type === 'EXITED' ? { type: 'EXITED', reason: 'died during a transaction' } : { type: s.type };
    this.ref.send(ev);
  }

  #checkAlive(): void {
    if (this.state === 'dead') throw Errors.StubDead(this.pid, this.ref.getSnapshot().context.reason ?? 'dead');
  }

  /** `taken`: the loop is held for the main thread already (see adoptPosted). */
  #serialise<T>(fn: (held: Held) => Promise<T>, taken = false): Promise<T> {
    this.#pending++;
    // Once the thread serves a loop, a sentry worker may post to it too (an execve it loads
    // itself): each operation holds the loop as a whole (see SyscallThreadLock).
    const locked = async (): Promise<T> => {
      const lock = this.#lockOf();
      if (lock && !taken) await lock.acquireAsync(SyscallThreadOwner.Main, this.pid);
      const held: Held = { released: false };
      try {
        return await fn(held);
      } finally {
        if (!held.released) lock?.release();
      }
    };
    const run = this.#queue.then(locked, locked);
    const settle = () => {
      this.#pending--;
      this.onIdle?.();
    };
    this.#queue = run.then(settle, settle);
    return run;
  }

  /** Called whenever an operation settles (the subprocess reaps a dead stub when idle). */
  onIdle?: () => void;
}

