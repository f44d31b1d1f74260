import { abi, SYSCALL_SCRATCH } from '../../abi/stub.js';
import type { NativeMemoryFile } from '../../native.js';
import type { SyscallCall } from '../../addressSpace.js';
import { Errors, toSystrapError } from '../../errors.js';
import { BUDGETS } from '../../shm/budgets.js';
import { SyscallThreadLock, SyscallThreadOwner } from '../../shm/syscallThreadLock.js';
import { readBatch, writeBatch } from '../../shm/syscallBatch.js';
import type { StubSyscalls } from '../exec/stubIO.js';
import type { SyscallMsg } from '../protocol.js';

export type { SyscallMsg };

/**
 * How long a request to the stub blocks the sentry's thread before its answer is awaited off it
 * (see StubCalls.#later); the wait is cut in 20 ms slices, so it ends within about 60 ms.
 */
const BLOCK_MS = 50;
/** Each off-thread wait for a slow answer (it wakes as soon as the answer is written). */
const LATER_SLICE_MS = 20;
/**
 * `SYSTRAP_SLOW_STUB=1` (tests): every request is taken for a slow one, its answer awaited off
 * the thread, so that the path a stub stuck in a file system takes is exercised end to end.
 */
const ALWAYS_LATER = process.env.SYSTRAP_SLOW_STUB === '1';

/**
 * The sentry's own client of a stub's syscall thread (gVisor's syscallThread, as the sentry's
 * task goroutine drives it): requests posted in the stub's message and waited for on this
 * worker thread (spin, then futex; never the event loop thread), with no hop through the main
 * thread. Used while it holds the loop ({@link hold}): an execve's check and load, some ten
 * round trips that each cost the main thread's event loop and libuv's pool tens of µs.
 *
 * What the stub answers is untrusted (its reply page is program-writable), as on the main
 * thread: the loader checks every answer. A stub that dies under a request is ESTUBDEAD.
 *
 * Protected by: the lock (SYSMSG_OWNER) for everything it writes in the message.
 *
 * @example
 * ```ts
 * const calls = new StubCalls(file, { offset, addr }, hostPid, userLimit);
 * if (calls.hold()) try { await loadProgram(calls, opts); } finally { calls.release(); }
 * ```
 */
export class StubCalls implements StubSyscalls {
  readonly #lock: SyscallThreadLock;
  readonly #msg: DataView;
  readonly #args = new BigUint64Array(6);
  #held = false;

  constructor(
    private readonly file: NativeMemoryFile,
    private readonly message: SyscallMsg,
    readonly pid: number,
    readonly userLimit: bigint,
  ) {
    this.#lock = new SyscallThreadLock(file, message.offset);
    const b = file.buffer(message.offset, abi.SYSMSG_SIZE);
    this.#msg = new DataView(b, 0, abi.SYSMSG_SIZE);
  }

  /**
   * Takes the loop, waiting at most `waitMs` on this thread while the main thread holds it
   * (0: never waits); false when it could not.
   */
  hold(waitMs = 0): boolean {
    if (this.#held) throw Errors.Protocol(`the sentry holds stub ${this.pid}'s syscall thread already`, this.pid);
    this.#held = this.#lock.acquireWithin(SyscallThreadOwner.Sentry, waitMs);
    if (this.#held) this.#msg.setBigUint64(abi.SYSMSG_SPIN, BigInt(BUDGETS.stubSyscallBurstSpinCycles), true);
    return this.#held;
  }

  /** Gives the loop back (the main thread's queue goes on). */
  release(): void {
    if (!this.#held) return;
    this.#held = false;
    this.#msg.setBigUint64(abi.SYSMSG_SPIN, BigInt(BUDGETS.stubSyscallSpinCycles), true);
    this.#lock.release();
  }

  /**
   * One syscall, its raw result (negative: -errno), waited for on this thread: ETIMEDOUT when
   * it took longer than {@link BLOCK_MS} (it is still under way then). Precondition: held.
   */
  call(sysno: number, args: readonly bigint[]): bigint {
    const r = this.#request(sysno, args);
    if (r === undefined) throw Errors.Timeout(`stub ${this.pid}'s syscall ${sysno} took longer than ${BLOCK_MS} ms`);
    return r;
  }

  syscall(sysno: number, ...args: bigint[]): Promise<bigint> {
    try {
      const r = this.#request(sysno, args);
      return r !== undefined ? Promise.resolve(r) : this.#later();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Posts a request and waits for its answer on this thread, {@link BLOCK_MS} at most (undefined then). */
  #request(sysno: number, args: readonly bigint[]): bigint | undefined {
    this.#check();
    for (let i = 0; i < 6; i++) this.#args[i] = BigInt.asUintN(64, args[i] ?? 0n);
    try {
      if (ALWAYS_LATER) {
        // Posted, not waited for here: #later waits. The call's own wait on the pool is dropped,
        // and bounded (timeout 0: it gives its pool thread back within one 20 ms slice): it
        // looks for this request's answer only, so once the next request is answered it could
        // never end, and four such waits took every thread of libuv's pool, #later's included.
        const r = this.file.syscallThreadCall(this.message.offset, this.pid, sysno, this.#args, 0, 0);
        if (typeof r === 'bigint') return BigInt.asIntN(64, r);
        r.catch(() => undefined);
        return undefined;
      }
      return BigInt.asIntN(64, this.file.syscallThreadCallSync(this.message.offset, this.pid, sysno, this.#args, BLOCK_MS));
    } catch (e) {
      const err = toSystrapError(e);
      if (err.code === 'ETIMEDOUT') return undefined;
      if (err.code === 'ESTUBDEAD') throw Errors.StubDead(this.pid, 'while serving a syscall');
      throw err;
    }
  }

  /**
   * The answer to the request under way, awaited off this thread (libuv's pool: the host yields
   * to its event loop while a kernel has such work, see SentryHost.run), for a stub that takes
   * long (a file system that does not answer its open): the host serves every other program
   * meanwhile. Precondition: held, a request posted.
   */
  async #later(): Promise<bigint> {
    const next = this.#msg.getUint32(abi.SYSMSG_STATE, true);
    for (;;) {
      const done = this.#msg.getUint32(abi.SYSMSG_DONE, true);
      if (done === next) return this.#msg.getBigInt64(abi.SYSMSG_REPLY, true);
      try {
        await this.file.waitWordChange(this.message.offset + abi.SYSMSG_DONE, done, this.pid, LATER_SLICE_MS);
      } catch (e) {
        const err = toSystrapError(e);
        if (err.code === 'ESTUBDEAD') throw Errors.StubDead(this.pid, 'while serving a syscall');
        throw err;
      }
    }
  }

  /** Several syscalls in one round trip (see AddressSpace.syscalls). Precondition: held. */
  syscalls(calls: readonly SyscallCall[]): Promise<bigint[]> {
    try {
      if (calls.length === 0) return Promise.resolve([]);
      if (calls.length > abi.SYSMSG_BATCH_MAX) throw Errors.InvalidArg(`a batch holds at most ${abi.SYSMSG_BATCH_MAX} calls (got ${calls.length})`);
      this.#check();
      writeBatch(this.#msg, calls);
      const ran = this.#request(abi.STUB_REQUEST_BATCH, [BigInt(calls.length)]);
      if (ran !== undefined) return Promise.resolve(readBatch(this.#msg, ran, calls.length, this.pid));
      return this.#later().then((n) => readBatch(this.#msg, n, calls.length, this.pid));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * The message's scratch (see SYSCALL_SCRATCH): memory the loop's calls can point to, the
   * program's too (it is checked where read back). Precondition: held.
   */
  scratch(): { addr: bigint; bytes: Uint8Array } {
    this.#check();
    const bytes = new Uint8Array(this.#msg.buffer, this.#msg.byteOffset + SYSCALL_SCRATCH.offset, SYSCALL_SCRATCH.end - SYSCALL_SCRATCH.offset);
    return { addr: this.message.addr + BigInt(SYSCALL_SCRATCH.offset), bytes };
  }

  #check(): void {
    if (!this.#held) throw Errors.Protocol(`the sentry does not hold stub ${this.pid}'s syscall thread`, this.pid);
  }
}
