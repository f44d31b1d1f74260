import type { Subprocess } from './actors/subprocess.js';
import type { FileRange } from './memoryFile.js';
import type { InjectResult } from './tracer/protocol.js';
import { Errors, checkStubReply } from './errors.js';
import { SYS } from './abi/syscalls.js';
import { MAP_POPULATE, PAGE_SIZE, PROT_EXEC, PROT_READ, PROT_WRITE } from './abi/linux.js';
import { abi } from './abi/stub.js';

/** Access of a mapping: read, read-write, read-execute, or all three. */
export type Access = 'r' | 'rw' | 'rx' | 'rwx';

const PROT: Record<Access, bigint> = {
  r: PROT_READ,
  rw: PROT_READ | PROT_WRITE,
  rx: PROT_READ | PROT_EXEC,
  rwx: PROT_READ | PROT_WRITE | PROT_EXEC,
};

/** The subprocess behind each address space (platform-internal: see {@link subprocessOf}). */
const subprocesses = new WeakMap<AddressSpace, Subprocess>();

/**
 * The stub behind an address space, for the platform's own modules (and white-box tests).
 * Not part of the public API: sentries use `platform.port.stub(as)`.
 *
 * @example
 * ```ts
 * const sp = subprocessOf(as); sp.kick();
 * ```
 */
export function subprocessOf(as: AddressSpace): Subprocess {
  const sp = subprocesses.get(as);
  if (!sp) throw Errors.InvalidArg('not an address space of this platform');
  return sp;
}

/** Internal hooks of the platform an address space reports to. */
export interface AddressSpaceOwner {
  /** First byte of the stub region (the same in every stub of the platform). */
  readonly regionStart: bigint;
  release(sp: Subprocess): Promise<void>;
  importFds(sp: Subprocess, fds: number[]): Promise<number[]>;
  fork(sp: Subprocess): Promise<AddressSpace>;
}

/**
 * An application address space: one stub process (gVisor's platform.AddressSpace). Memory comes
 * from the platform's memory file and is mapped at fixed addresses below the stub region.
 *
 * @example
 * ```ts
 * const as = await platform.newAddressSpace();
 * const range = platform.memoryFile.allocate(4096);
 * await as.mapFile(0x10000n, range, 'rw');
 * console.log(await as.syscall(SYS.getpid) === BigInt(as.pid)); // true
 * await as.release();
 * ```
 */
export class AddressSpace {
  readonly #sp: Subprocess;
  readonly #owner: AddressSpaceOwner;
  #released = false;

  /** Private: address spaces come from `platform.newAddressSpace()`. */
  private constructor(sp: Subprocess, owner: AddressSpaceOwner) {
    this.#sp = sp;
    this.#owner = owner;
    subprocesses.set(this, sp);
  }

  /** @internal The platform's way to make one over a stub it made or took from its pool. */
  static wrap(sp: Subprocess, owner: AddressSpaceOwner): AddressSpace {
    return new AddressSpace(sp, owner);
  }

  /** The stub's pid (its thread group id on the host). */
  get pid(): number {
    return this.#sp.pid;
  }

  /** Highest address (exclusive) the application may use (gVisor's maxStubUserAddress). */
  static readonly maxUserAddress: bigint = abi.STUB_MAX_USER_ADDRESS;

  /**
   * Highest address (exclusive) a program loaded into this stub may use: below both
   * {@link AddressSpace.maxUserAddress} and the stub region (which sits inside the user range
   * when Node's own address space put it there).
   *
   * @example
   * ```ts
   * const stackTop = as.userLimit - (1n << 20n);
   * ```
   */
  get userLimit(): bigint {
    const start = this.#owner.regionStart;
    return start < AddressSpace.maxUserAddress ? start : AddressSpace.maxUserAddress;
  }


  /**
   * Duplicates Node's file descriptors `fds` into the stub (SCM_RIGHTS on the stub's fd channel:
   * the same open file descriptions, as fork would share them) and returns their numbers there.
   * Only before the first context runs in this stub (the channel is closed then).
   *
   * @example
   * ```ts
   * const [out] = await as.importFds([1]);
   * await as.syscall(SYS.dup2, BigInt(out), 1n);
   * ```
   */
  async importFds(fds: number[]): Promise<number[]> {
    this.#check();
    if (!Array.isArray(fds) || fds.length < 1 || fds.length > 16 || !fds.every((f) => Number.isInteger(f) && f >= 0))
      throw Errors.InvalidArg('fds must be an array of 1 to 16 file descriptors');
    return this.#owner.importFds(this.#sp, fds);
  }

  /**
   * A new address space holding a copy-on-write copy of this one (fork's half in the platform:
   * gVisor's `mm.Fork` plus `NewAddressSpace`, here the kernel's own fork of the stub): every
   * mapping, private memory copied on write, shared mappings shared; the fds of the stub copied
   * as fork copies them. No context runs in the copy until one is adopted or run there. The
   * copy is in the same sandbox as this one, and is never pooled.
   *
   * Precondition (gVisor's PreFork/PostFork): nothing half-written in memory the copy will
   * keep. Run it while no context of this address space is running, or accept what a native
   * fork accepts: the other threads' memory as it is at that instant.
   *
   * @example
   * ```ts
   * const child = await as.fork();
   * await child.syscall(SYS.getpid); // another process
   * await child.release();
   * ```
   */
  async fork(): Promise<AddressSpace> {
    this.#check();
    return this.#owner.fork(this.#sp);
  }

  /** Lifecycle state of the stub ('ready', 'dead', 'faulted', …). */
  get state(): string {
    return this.#sp.state;
  }

  /**
   * Maps a range of the memory file at `addr` (MAP_SHARED|MAP_FIXED; MAP_POPULATE when
   * `precommit`). Runs mmap through the stub's syscall thread. A reply other than `addr` or an
   * errno is a forged one: EPROTOCOL, and the stub is faulted (never trusted or pooled again).
   */
  async mapFile(addr: bigint, range: FileRange, access: Access, precommit = false): Promise<void> {
    this.#check();
    const len = checkRange(range);
    checkAddr(addr, BigInt(len));
    const prot = PROT[access];
    if (prot === undefined) throw Errors.InvalidArg(`access must be one of r, rw, rx, rwx (got ${String(access)})`);
    await this.#sp.mapShared(addr, range, prot, precommit ? MAP_POPULATE : 0n);
  }

  /** Unmaps `[addr, addr + length)`. */
  async unmap(addr: bigint, length: bigint): Promise<void> {
    this.#check();
    checkAddr(addr, length);
    checkStubReply(await this.#sp.syscall(SYS.munmap, [addr, length]), { syscall: 'munmap', expect: 0n, pid: this.pid });
  }

  /**
   * Runs a host syscall inside the stub through its syscall thread and returns the raw result
   * (negative values are -errno). The result is written by the stub: treat it as untrusted.
   *
   * @example
   * ```ts
   * const pid = await as.syscall(SYS.getpid);
   * ```
   */
  async syscall(sysno: number, ...args: bigint[]): Promise<bigint> {
    this.#check();
    checkSyscall(sysno, args);
    return this.#sp.syscall(sysno, args);
  }

  /**
   * Runs several host syscalls inside the stub, in order, in one round trip to its syscall
   * thread (at most {@link AddressSpace.MAX_BATCH}). A call with `expect` ends the batch when it
   * returns anything else. Returns the raw results of the calls that ran (a shorter array when
   * one stopped it), written by the stub: treat them as untrusted.
   *
   * @example
   * ```ts
   * const [a, b] = await as.syscalls([
   *   { sysno: SYS.mmap, args: [addr, 4096n, 3n, 0x100022n, -1n, 0n], expect: addr },
   *   { sysno: SYS.getpid },
   * ]);
   * ```
   */
  async syscalls(calls: readonly SyscallCall[]): Promise<bigint[]> {
    this.#check();
    if (!Array.isArray(calls)) throw Errors.InvalidArg('calls must be an array');
    if (calls.length > AddressSpace.MAX_BATCH) throw Errors.InvalidArg(`at most ${AddressSpace.MAX_BATCH} calls per batch (got ${calls.length})`);
    for (const c of calls) {
      if (c === null || typeof c !== 'object') throw Errors.InvalidArg('each call must be an object { sysno, args?, expect? }');
      checkSyscall(c.sysno, c.args ?? []);
      if (c.expect !== undefined && typeof c.expect !== 'bigint') throw Errors.InvalidArg('expect must be a bigint');
    }
    return this.#sp.batch(calls.map((c) => ({ sysno: c.sysno, args: c.args ?? [], expect: c.expect })));
  }

  /** Most calls one {@link AddressSpace.syscalls} batch holds. */
  static readonly MAX_BATCH: number = abi.SYSMSG_BATCH_MAX;

  /**
   * Runs a host syscall inside the stub by ptrace injection: one whole tracer transaction
   * (attach, inject, detach). Slower than {@link AddressSpace.syscall}; for calls that must not
   * depend on the stub's loop, and to compare the two mechanisms.
   */
  async injectSyscall(sysno: number, ...args: bigint[]): Promise<InjectResult> {
    this.#check();
    checkSyscall(sysno, args);
    return this.#sp.inject(sysno, args);
  }

  /**
   * Unmaps all application memory and gives the stub back to the pool (or kills it when the
   * pool is off or full). The address space is unusable afterwards.
   */
  async release(): Promise<void> {
    if (this.#released) throw Errors.Released('address space');
    this.#released = true;
    await this.#owner.release(this.#sp);
  }

  /** True once release() was called. */
  get released(): boolean {
    return this.#released;
  }

  #check(): void {
    if (this.#released) throw Errors.Released('address space');
  }
}

function checkRange(range: FileRange): number {
  if (!range || !Number.isSafeInteger(range.start) || !Number.isSafeInteger(range.end) || range.end <= range.start)
    throw Errors.InvalidArg('range must be a FileRange from memoryFile.allocate()');
  return range.end - range.start;
}

function checkAddr(addr: bigint, length: bigint): void {
  if (typeof addr !== 'bigint' || typeof length !== 'bigint') throw Errors.InvalidArg('addr and length must be bigints');
  if (addr % BigInt(PAGE_SIZE) !== 0n || length % BigInt(PAGE_SIZE) !== 0n || length <= 0n)
    throw Errors.InvalidArg('addr and length must be page aligned and length positive');
  if (addr < 0n || addr + length > abi.STUB_MAX_USER_ADDRESS)
    throw Errors.InvalidArg(`[${addr.toString(16)}, +${length.toString(16)}) is outside the application range`);
}

/**
 * One call of {@link AddressSpace.syscalls}.
 *
 * @example
 * ```ts
 * const call: SyscallCall = { sysno: SYS.close, args: [5n], expect: 0n };
 * ```
 */
export interface SyscallCall {
  sysno: number;
  /** Up to six arguments (missing ones are 0). */
  args?: readonly bigint[];
  /** The batch goes on past this call only if it returns this. */
  expect?: bigint;
}

function checkSyscall(sysno: number, args: readonly bigint[]): void {
  if (!Number.isInteger(sysno) || sysno < 0 || sysno > 1023) throw Errors.InvalidArg('sysno must be a syscall number');
  if (args.length > 6) throw Errors.InvalidArg('a syscall takes at most 6 arguments');
  for (const a of args) if (typeof a !== 'bigint') throw Errors.InvalidArg('syscall arguments must be bigints');
}
