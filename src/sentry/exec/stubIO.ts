import { AddressSpace, type SyscallCall } from '../../addressSpace.js';
import { Errors, checkStubReply } from '../../errors.js';
import { native } from '../../native.js';
import { SYS } from '../../abi/syscalls.js';
import {
  MAP_ANONYMOUS,
  MAP_FIXED_NOREPLACE,
  MAP_PRIVATE,
  MAX_ERRNO,
  PATH_MAX,
  PROT_READ,
  PROT_WRITE,
  STAT_LAYOUT,
  errnoName,
} from '../../abi/linux.js';
import { hex, rangeText, type AddressRange } from './addresses.js';
import { LoaderErrors } from './loaderErrors.js';

/**
 * Syscalls and memory access in one stub while a program is loaded. Everything the stub answers
 * is checked: its memory and its replies are writable by whatever runs there, so an impossible
 * answer (mmap at another address, a read longer than asked) is an `EPROTOCOL` SystrapError,
 * never trusted.
 *
 * The stub's syscalls need their pointer arguments in the stub's memory: a scratch area, mapped
 * for the duration of the load, holds the path being opened, a struct stat and a read buffer.
 */

/**
 * Size of the scratch area; layout.ts places it in a gap where nothing else goes.
 *
 * @example
 * ```ts
 * const scratch: AddressRange = { start: at, end: at + SCRATCH_SIZE };
 * ```
 */
export const SCRATCH_SIZE = 64n * 1024n;

/*
 * Scratch layout: the path being opened at offset 0 (up to PATH_MAX bytes), a struct stat at
 * SCRATCH_STAT, and from SCRATCH_BUF to the end the buffer pread64 reads into (so at most
 * SCRATCH_BUF_SIZE bytes per call).
 */
const SCRATCH_STAT = BigInt(PATH_MAX);
const SCRATCH_BUF = 8192n;
const SCRATCH_BUF_SIZE = Number(SCRATCH_SIZE - SCRATCH_BUF);

/**
 * What fstat says about an opened file, as far as execve cares.
 *
 * @example
 * ```ts
 * const { mode, size }: FileStat = await io.fstat(fd);
 * ```
 */
export interface FileStat {
  /** st_mode: file type and permission bits. */
  mode: number;
  /** st_size in bytes. */
  size: bigint;
}

/**
 * Whether a raw syscall result is -errno (Linux returns -4095..-1 for errors).
 *
 * @example
 * ```ts
 * if (isError(fd)) throw Errors.Syscall('openat', Number(-fd), pid);
 * ```
 */
export function isError(r: bigint): boolean {
  return r < 0n && r >= -MAX_ERRNO;
}

/**
 * What the loader needs of a stub: its pid, where user memory ends, and syscalls run by its
 * syscall thread, one at a time or in a batch. An AddressSpace on the main thread; in a sentry
 * worker, the worker's own client of the same loop (src/sentry/kernel/stubCalls.ts).
 *
 * @example
 * ```ts
 * const target: StubSyscalls = as; // or new StubCalls(...) in the sentry
 * const [r] = await target.syscalls([{ sysno: SYS.getpid }]);
 * ```
 */
export type StubSyscalls = Pick<AddressSpace, 'pid' | 'userLimit' | 'syscall' | 'syscalls'>;

/**
 * One stub's syscalls and memory, with its answers validated, plus the scratch area at `scratch`.
 *
 * Preconditions: nothing else uses the address space while this is in use.
 *
 * @example
 * ```ts
 * const io = new StubIO(as, scratchAddr);
 * await io.mapScratch();
 * try { const fd = await io.raw(SYS.openat, AT_FDCWD, io.putPath('/bin/ls'), O_RDONLY, 0n); }
 * finally { io.unmapScratchLater(); await io.flush(); }
 * ```
 */
export class StubIO {
  /**
   * Calls queued by {@link later} and steps by {@link afterFlush}, run by {@link flush}.
   * Protected by: the load's one caller (nothing else uses the address space meanwhile).
   */
  readonly #queue: Array<{ call: SyscallCall; check: (r: bigint) => void }> = [];
  readonly #after: Array<() => void> = [];

  constructor(
    readonly as: StubSyscalls,
    readonly scratch: bigint,
  ) {}

  /**
   * Queues a syscall for the next {@link flush}, which runs queued calls in batches (one round
   * trip each, see AddressSpace.syscalls) and gives each result to its `check`, in order; a
   * check that throws ends the flush with its error. With `expect`, nothing queued after the
   * call runs unless it returns that: its check must throw for any other result.
   */
  later(sysno: number, args: readonly bigint[], expect: bigint | undefined, check: (r: bigint) => void): void {
    this.#queue.push({ call: { sysno, args, ...(expect !== undefined ? { expect } : {}) }, check });
  }

  /**
   * Queues a step of Node's own (a write into memory that queued calls map) to run once the
   * next {@link flush} has run every call, before it returns.
   */
  afterFlush(step: () => void): void {
    this.#after.push(step);
  }

  /** Drops what is queued and not run yet (a load that failed before its flush). */
  discard(): void {
    this.#queue.length = 0;
    this.#after.length = 0;
  }

  /**
   * Runs what {@link later} and {@link afterFlush} queued. On an error the rest is dropped:
   * what ran is what the checks saw (they keep the caller's undo log).
   */
  async flush(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, AddressSpace.MAX_BATCH);
        const results = await this.as.syscalls(batch.map((b) => b.call));
        results.forEach((r, i) => batch[i].check(r));
        // A batch ends early only at a call whose check refused its result (and threw above).
        if (results.length < batch.length) throw Errors.Protocol(`the stub stopped a batch after ${results.length} of ${batch.length} calls`, this.pid);
      }
      for (const step of this.#after) step();
    } finally {
      this.discard();
    }
  }

  get pid(): number {
    return this.as.pid;
  }

  /** Maps the scratch area (read-write, refusing to replace anything there). */
  async mapScratch(): Promise<void> {
    const flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;
    await this.mmap(this.scratch, SCRATCH_SIZE, PROT_READ | PROT_WRITE, flags, -1n, 0n, '[scratch]');
  }

  /** Unmaps the scratch area at the next flush (its result ignored: the stub may be gone). */
  unmapScratchLater(): void {
    this.later(SYS.munmap, [this.scratch, SCRATCH_SIZE], undefined, () => undefined);
  }


  /** Runs a syscall; returns the result, or -errno as a negative number. */
  raw(sysno: number, ...args: bigint[]): Promise<bigint> {
    return this.as.syscall(sysno, ...args);
  }

  /**
   * Runs a syscall whose success is a non-negative value and throws a SystrapError for any
   * failure not handled by the caller; a value no call returns (below -4095) is EPROTOCOL.
   */
  async call(name: string, sysno: number, ...args: bigint[]): Promise<bigint> {
    return checkStubReply(await this.raw(sysno, ...args), { syscall: name, expect: 'nonneg', pid: this.pid });
  }

  /**
   * mmap at a fixed address; any other answer than that address is a failure. `name` (the file,
   * or '[stack]'…) is what a LoaderError names when there is no room.
   */
  async mmap(addr: bigint, len: bigint, prot: bigint, flags: bigint, fd: bigint, off: bigint, name: string): Promise<void> {
    this.#checkMmap(await this.raw(SYS.mmap, addr, len, prot, flags, fd, off), addr, len, name);
  }

  /** {@link mmap} queued for the next {@link flush}; `then` runs once it succeeded. */
  mmapLater(addr: bigint, len: bigint, prot: bigint, flags: bigint, fd: bigint, off: bigint, name: string, then?: () => void): void {
    this.later(SYS.mmap, [addr, len, prot, flags, fd, off], addr, (r) => {
      this.#checkMmap(r, addr, len, name);
      then?.();
    });
  }

  /** {@link call} queued for the next {@link flush}: the call must return `expect`. */
  callLater(name: string, sysno: number, args: readonly bigint[], expect: bigint): void {
    this.later(sysno, args, expect, (r) => void checkStubReply(r, { syscall: name, expect, pid: this.pid }));
  }

  #checkMmap(r: bigint, addr: bigint, len: bigint, name: string): void {
    if (r === addr) return;
    if (isError(r)) {
      const errno = Number(-r);
      const code = errnoName(errno);
      if (code === 'EEXIST')
        throw LoaderErrors.NoRoom(name, `${rangeText({ start: addr, end: addr + len })} is already mapped in the stub`);
      if (code === 'ENOMEM') throw LoaderErrors.NoRoom(name, 'the stub is out of memory or mappings');
      if (code === 'EPERM' || code === 'EACCES')
        throw LoaderErrors.Access(name, 'cannot be mapped executable (noexec mount?)', -errno, 'mmap');
      throw Errors.Syscall('mmap', errno, this.pid);
    }
    checkStubReply(r, { syscall: 'mmap', expect: addr, pid: this.pid });
  }

  /** munmap, ignoring errors: for undoing, where the first error is the one to report. */
  async unmap(r: AddressRange): Promise<void> {
    await this.raw(SYS.munmap, r.start, r.end - r.start).catch(() => undefined);
  }

  /** close, ignoring errors, for the same reason. */
  async close(fd: bigint): Promise<void> {
    await this.raw(SYS.close, fd).catch(() => undefined);
  }

  /** Writes into the stub's memory (honouring its page protections). */
  write(addr: bigint, data: Uint8Array): void {
    const n = native.processVmWritev(this.pid, addr, data);
    if (n !== data.length) throw Errors.Protocol(`short write into the stub at ${hex(addr)}`, this.pid);
  }

  /** Reads from the stub's memory. */
  read(addr: bigint, len: number): Buffer {
    const b = native.processVmReadv(this.pid, addr, len);
    if (b.length !== len) throw Errors.Protocol(`short read from the stub at ${hex(addr)}`, this.pid);
    return b;
  }

  /**
   * Copies a path into the scratch area; returns its address there.
   *
   * @throws SystrapError `EINVALIDARG` when it is longer than PATH_MAX.
   */
  putPath(path: string): bigint {
    const bytes = Buffer.from(path + '\0', 'utf8');
    if (bytes.length > PATH_MAX) throw Errors.InvalidArg(`path is longer than PATH_MAX: ${path.slice(0, 64)}…`);
    this.write(this.scratch, bytes);
    return this.scratch;
  }

  /** fstat through the scratch area. */
  async fstat(fd: bigint): Promise<FileStat> {
    const at = this.scratch + SCRATCH_STAT;
    await this.call('fstat', SYS.fstat, fd, at);
    const st = this.read(at, STAT_LAYOUT.size);
    return { mode: st.readUInt32LE(STAT_LAYOUT.st_mode), size: st.readBigInt64LE(STAT_LAYOUT.st_size) };
  }

  /**
   * {@link fstat} queued for the next flush; the function returned gives its answer after it
   * (and throws the call's error then, not during the flush: the caller orders the errors).
   */
  fstatLater(fd: bigint): () => FileStat {
    const at = this.scratch + SCRATCH_STAT;
    let r = 0n;
    this.later(SYS.fstat, [fd, at], undefined, (got) => void (r = got));
    return () => {
      checkStubReply(r, { syscall: 'fstat', expect: 0n, pid: this.pid });
      const st = this.read(at, STAT_LAYOUT.size);
      return { mode: st.readUInt32LE(STAT_LAYOUT.st_mode), size: st.readBigInt64LE(STAT_LAYOUT.st_size) };
    };
  }

  /**
   * One pread64 of at most a scratch buffer, queued as {@link fstatLater} is: the bytes read (short
   * at EOF), or the call's error, after the flush. Precondition: nothing queued after it in the
   * same flush uses the scratch buffer.
   */
  preadLater(fd: bigint, offset: bigint, length: number): () => Uint8Array {
    if (length > SCRATCH_BUF_SIZE) throw Errors.InvalidArg(`preadLater reads at most ${SCRATCH_BUF_SIZE} bytes`);
    const buf = this.scratch + SCRATCH_BUF;
    let n = 0n;
    this.later(SYS.pread64, [fd, buf, BigInt(length), offset], undefined, (got) => void (n = got));
    return () => {
      checkStubReply(n, { syscall: 'pread64', expect: 'nonneg', pid: this.pid });
      if (n > BigInt(length)) throw Errors.Protocol(`pread64 returned ${n} for ${length} bytes`, this.pid);
      return new Uint8Array(this.read(buf, Number(n)));
    };
  }

  /** pread64 through the scratch buffer, as many chunks as needed; short only at EOF. */
  async pread(fd: bigint, offset: bigint, length: number): Promise<Uint8Array> {
    const buf = this.scratch + SCRATCH_BUF;
    const out = Buffer.alloc(length);
    let got = 0;
    while (got < length) {
      const want = Math.min(length - got, SCRATCH_BUF_SIZE);
      const n = await this.call('pread64', SYS.pread64, fd, buf, BigInt(want), offset + BigInt(got));
      if (n > BigInt(want)) throw Errors.Protocol(`pread64 returned ${n} for ${want} bytes`, this.pid);
      if (n === 0n) break;
      this.read(buf, Number(n)).copy(out, got);
      got += Number(n);
    }
    return out.subarray(0, got);
  }
}
