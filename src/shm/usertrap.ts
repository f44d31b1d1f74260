import { closeSync, openSync, writeSync } from 'node:fs';
import { CONTEXT_QUEUE, MSG, ThreadState } from '../abi/sysmsg.js';
import { native } from '../native.js';

/**
 * Syscall patching (gVisor's usertrap, x86-64): a call site the program traps from (twice:
 * see tryPatch) is rewritten so that later calls from it jump into the stub's syshandler with no
 * signal at all (native/stub/stub.S `systrap_syshandler`). The site `mov $N, %eax; syscall`
 * (7 bytes: `b8 N32 0f 05`) becomes `jmp *ENTRY` (`ff 24 25 ENTRY32`), an absolute indirect
 * jump through the first 8 bytes of a trampoline entry, which hold the address of its code:
 *
 *   movl $PREP, %gs:state        interrupts postponed (the handler sees the syshandler path)
 *   mov %rsp, %gs:app_stack      the program's stack, untouched (no push: its red zone)
 *   rdgsbase %rsp                its Msg's address, the top of its signal stack (or, without
 *                                FSGSBASE, mov %gs:syshandler_stack, %rsp)
 *   movabs $SITE+7, %rax         the return address...
 *   mov %rax, %gs:ret_addr
 *   movabs $SYSHANDLER, %rcx     (RCX is `syscall`'s to clobber)
 *   mov $N, %eax                 ...and the number, as the site had them
 *   jmp *%rcx
 *
 * GS base is the sysmsg thread's Msg (set when the thread is made). The entries live in a
 * table the loader maps at a random page of [0x60000, 0x70000), so that the third byte of an
 * entry's address, which lands where the site's `0f` was, is always 0x06: an invalid opcode.
 * The patch is written in three steps (site+5, then +1..+6, then +0), each a store the other
 * threads see whole; a thread that ran the old `mov` before the jump was complete hits the 0x06
 * and traps (SIGILL at site+5), and the sentry sends it back to the site ({@link rewind}).
 *
 * Only calls that always trap are patched (see patchableCalls in src/sentry/filter.ts): a site
 * whose call the kernel passes without a trap (most of them) must keep passing without one.
 *
 * Limits (documented in the README): code that is checksummed, or shared and read-only (a
 * MAP_SHARED text mapping: the force write fails and the site stays as it is), is left alone;
 * a program that changes its GS base, unmaps the table or maps over it breaks its own patched
 * sites; `mov $N,%eax` recognised at the wrong boundary (the 5 bytes being the tail of a longer
 * instruction, not preceded by a REX prefix) is refused only when its number differs.
 *
 * @example
 * ```ts
 * const ut = new UserTrap(0x64000n, new Set([SYS.getppid]), region.syshandlerAddr, fsgsbaseAllowed());
 * ut.tryPatch(mem, rip, sysno); // after a SIGSYS trap from rip
 * ut.rewind(mem, rip);          // a SIGILL at site+5: the site, else undefined
 * ```
 */
export class UserTrap {
  /** Bytes of a table (8 pages, 408 entries) and of an entry (8-byte pointer + up to 72 of code). */
  static readonly TABLE_SIZE = 8 * 4096;
  static readonly ENTRY_SIZE = 80;
  /** The lowest and the highest+1 table address (see the class note: the 0x06 byte). */
  static readonly RANGE = { start: 0x60000n, end: 0x70000n } as const;

  /**
   * Patched sites by their return address (site + 7): their number and trampoline entry. The
   * program may since have put other code there (a new mapping, a rewrite): what is in memory
   * is checked before a site is taken as patched. Protected by: the sentry thread.
   */
  readonly #sites: Map<bigint, { sysno: number; entry: bigint }>;
  /** Return addresses found not patchable: never looked at again. */
  readonly #refused = new Set<bigint>();
  /** Return addresses that trapped once (see tryPatch). */
  readonly #seen = new Set<bigint>();
  /** Forks of the address space under way (gVisor's PreFork): no patch may be half-copied. */
  #held = 0;

  /**
   * A fork of the address space starts (the kernel copies its memory at some point before it
   * is answered): no patch until {@link release}, so that the child never gets a half-written
   * site. Calls nest.
   */
  hold(): void {
    this.#held++;
  }

  /** A fork {@link hold} bracketed is answered (made or failed). */
  release(): void {
    if (this.#held > 0) this.#held--;
  }
  /** The next free entry. */
  #next: number;
  /** Sites patched (in this process, or in its parent before the fork). */
  get patched(): number {
    return this.#sites.size;
  }

  /**
   * `table`: where the loader mapped the table (page aligned, inside {@link UserTrap.RANGE}).
   * `from`: the parent's state, for a fork child (its copy of the table and of the code).
   */
  /**
   * With several patchers of one address space (runner workers, each running one of its
   * contexts): the queue's words, whose usertrap_next is the next free entry and usertrap_lock
   * a try-lock held while one of them patches (a busy lock only means no patch this time).
   */
  #shared?: Uint32Array;

  constructor(
    readonly table: bigint,
    /** The calls whose sites may be patched: those the program's filter always traps. */
    readonly calls: ReadonlySet<number>,
    /** Where trampolines jump (the stub's systrap_syshandler), and whether they may use rdgsbase. */
    readonly syshandler: bigint,
    readonly rdgsbase: boolean,
    from?: UserTrap,
    /** Counts for the whole program (shared by its processes and images: `-c` prints them). */
    readonly stats: UsertrapStats = from?.stats ?? { sites: 0, calls: 0 },
  ) {
    if (table < UserTrap.RANGE.start || table + BigInt(UserTrap.TABLE_SIZE) > UserTrap.RANGE.end || table % 4096n !== 0n)
      throw new RangeError(`usertrap table at 0x${table.toString(16)}: outside [0x60000, 0x70000) or not page aligned`);
    this.#sites = from ? new Map(from.#sites) : new Map();
    this.#next = from ? from.#next : 0;
  }

  /**
   * Patching of an address space that other patchers share (see #shared): `queue` is its
   * context queue's words (CONTEXT_QUEUE). Sites others patched are recognised from memory.
   */
  static shared(table: bigint, calls: ReadonlySet<number>, syshandler: bigint, rdgsbase: boolean, queue: Uint32Array): UserTrap {
    const ut = new UserTrap(table, calls, syshandler, rdgsbase);
    ut.#shared = queue;
    return ut;
  }

  /** The same patching for a new image (an execve's, its table at `table`) with this one's counts. */
  forImage(table: bigint): UserTrap {
    return new UserTrap(table, this.calls, this.syshandler, this.rdgsbase, undefined, this.stats);
  }

  /** A fork child's state: the same table and sites (the kernel copied both). */
  fork(): UserTrap {
    return new UserTrap(this.table, this.calls, this.syshandler, this.rdgsbase, this);
  }

  /** The syscall number of the site whose return address is `ret`, if our jump is there now. */
  sysnoAt(mem: PatchMemory, ret: bigint): number | undefined {
    const s = this.#sites.get(ret);
    if (!s) return this.#shared ? this.#decode(mem, ret) : undefined;
    const code = mem.read(ret - 7n, 7);
    const jump = jumpTo(s.entry);
    return code !== null && code.every((b, i) => b === jump[i]) ? s.sysno : undefined;
  }

  /** A site another patcher patched: its jump to an entry of this table whose code is the site's. */
  #decode(mem: PatchMemory, ret: bigint): number | undefined {
    const code = mem.read(ret - 7n, 7);
    if (!code || code[0] !== 0xff || code[1] !== 0x24 || code[2] !== 0x25 || code[6] !== 0) return undefined;
    const entry = BigInt(code[3] | (code[4] << 8) | (code[5] << 16));
    if (entry < this.table || entry >= this.table + BigInt(UserTrap.TABLE_SIZE)) return undefined;
    const bytes = mem.read(entry, UserTrap.ENTRY_SIZE);
    if (!bytes) return undefined;
    const sysno = new DataView(bytes.buffer, bytes.byteOffset).getUint32(sysnoOffset(this.rdgsbase), true);
    const expect = trampoline(entry, ret, sysno, this.syshandler, this.rdgsbase);
    return expect.every((b, i) => b === bytes[i]) ? sysno : undefined;
  }

  /** Where a syscall trapped at `ret` restarts: its site when patched (the `jmp`), else its `syscall`. */
  restartAddr(mem: PatchMemory, ret: bigint): bigint {
    return this.sysnoAt(mem, ret) !== undefined ? ret - 7n : ret - 2n;
  }

  /**
   * A SIGILL at `rip`: the site, if `rip` is the 0x06 of a site patched here — a thread that
   * ran the old `mov` while it was patched, or a restart at `syscall`'s place — else undefined.
   */
  rewind(mem: PatchMemory, rip: bigint): bigint | undefined {
    let sysno = this.sysnoAt(mem, rip + 2n);
    const shared = this.#shared;
    if (sysno === undefined && shared) {
      // Another worker may be writing that site: its jump is whole once it lets go of the lock.
      const until = performance.now() + 5;
      while (Atomics.load(shared, CONTEXT_QUEUE.usertrapLock / 4) !== 0 && performance.now() < until);
      sysno = this.sysnoAt(mem, rip + 2n);
    }
    return sysno !== undefined ? rip - 5n : undefined;
  }

  /** The address of entry `i` (entries do not cross pages), or undefined past the table. */
  #entryAddr(i: number): bigint | undefined {
    const perPage = Math.floor(4096 / UserTrap.ENTRY_SIZE);
    const page = Math.floor(i / perPage);
    if (page >= UserTrap.TABLE_SIZE / 4096) return undefined;
    return this.table + BigInt(page * 4096 + (i % perPage) * UserTrap.ENTRY_SIZE);
  }

  /**
   * Patches the site a syscall `sysno` just trapped from (`ret`: the address after its
   * `syscall`), at its second trap, if it is `mov $sysno, %eax; syscall`, there is room and no
   * fork is copying the address space (hold). Returns true if the site is patched now.
   * Preconditions: `sysno` always traps (see the class note); the task that trapped is stopped
   * (it is in the sentry). Failure only leaves the site unpatched.
   */
  tryPatch(mem: PatchMemory, ret: bigint, sysno: number): boolean {
    if (!this.calls.has(sysno) || this.#refused.has(ret)) return false;
    // At its second trap: a site that traps once (a process's start, its exit) is not worth
    // a patch's writes. Forgotten sites only wait for a trap more.
    if (!this.#seen.has(ret)) {
      if (this.#seen.size >= 4096) this.#seen.clear();
      this.#seen.add(ret);
      return false;
    }
    if (this.#held > 0) return false;
    const shared = this.#shared;
    if (!shared) return this.#patch(mem, ret, sysno);
    // One patcher at a time; a busy lock: not now (the site traps again, and is patched then).
    if (Atomics.compareExchange(shared, CONTEXT_QUEUE.usertrapLock / 4, 0, 1) !== 0) return false;
    try {
      if (this.#decode(mem, ret) !== undefined) return false; // another patcher's
      this.#next = Atomics.load(shared, CONTEXT_QUEUE.usertrapNext / 4);
      const done = this.#patch(mem, ret, sysno);
      Atomics.store(shared, CONTEXT_QUEUE.usertrapNext / 4, this.#next);
      return done;
    } finally {
      Atomics.store(shared, CONTEXT_QUEUE.usertrapLock / 4, 0);
    }
  }

  /** tryPatch's work, for its one patcher at a time. */
  #patch(mem: PatchMemory, ret: bigint, sysno: number): boolean {
    if (this.#sites.has(ret)) {
      // A thread that ran the old code while it was patched; or other code there since (the
      // page remapped or rewritten by the program), patched afresh.
      if (this.sysnoAt(mem, ret) !== undefined) return false;
      this.#sites.delete(ret);
    }
    const site = ret - 7n;
    const entry = this.#entryAddr(this.#next);
    const code = site > 0n ? mem.read(site, 7) : null;
    const before = site > 0n ? mem.read(site - 1n, 1) : null;
    const ok =
      entry !== undefined &&
      code !== null &&
      code[0] === 0xb8 &&
      new DataView(code.buffer, code.byteOffset, 7).getUint32(1, true) === sysno &&
      code[5] === 0x0f &&
      code[6] === 0x05 &&
      // The `mov` must start at `site`: not the tail of `41 b8 imm32` (mov to %r8d) and such.
      (before === null || before[0] < 0x40 || before[0] > 0x4f) &&
      (site < UserTrap.RANGE.start || site >= UserTrap.RANGE.end);
    if (!ok) {
      if (entry !== undefined) this.#refused.add(ret);
      return false;
    }
    this.#sites.set(ret, { sysno, entry });
    const jump = jumpTo(entry);
    // In order, in one go: the entry, then the site in three steps.
    const done = mem.forceWrite([
      [entry, trampoline(entry, ret, sysno, this.syshandler, this.rdgsbase)],
      [site + 5n, jump.subarray(5, 6)],
      [site + 1n, jump.subarray(1, 7)],
      [site, jump.subarray(0, 1)],
    ]);
    if (done < 4) {
      // Half written: the original back (a 0x06 left behind would send every thread to a site
      // that never completes); the entry stays free.
      if (done > 1) mem.forceWrite([[site, code]]);
      this.#sites.delete(ret);
      this.#refused.add(ret);
      return false;
    }
    this.#next++;
    this.stats.sites++;
    return true;
  }
}

/** A program's patching counts: sites patched, and calls made through them (no signal). */
export interface UsertrapStats {
  sites: number;
  calls: number;
}

/** What patching needs of a program's memory: reads, and writes that ignore page protections. */
export interface PatchMemory {
  read(addr: bigint, len: number): Uint8Array | null;
  /**
   * Writes each `data` at its `addr`, in order, even into read-only private mappings (as a
   * debugger's breakpoint); stops at the first that fails. Returns how many were written.
   */
  forceWrite(writes: ReadonlyArray<readonly [bigint, Uint8Array]>): number;
}

/**
 * Writes each `data` at its `addr` of process `pid` (as Node sees it), in order, through
 * /proc/PID/mem (opened once), which ignores page protections as a debugger's breakpoint does:
 * a private mapping gets its own copy of the page, a shared read-only one refuses. Stops at the
 * first failure; returns how many were written. Preconditions: Node may ptrace `pid` (its
 * stubs: Node's descendants); the caller keeps writes out of the stub region.
 *
 * @example
 * ```ts
 * forceWrite(stubPid, [[site + 5n, Uint8Array.of(0x06)]]); // 1
 * ```
 */
export function forceWrite(pid: number, writes: ReadonlyArray<readonly [bigint, Uint8Array]>): number {
  let fd: number | undefined;
  let done = 0;
  try {
    for (const [addr, data] of writes) {
      if (addr < 0n || addr + BigInt(data.length) > BigInt(Number.MAX_SAFE_INTEGER)) break;
      fd ??= openSync(`/proc/${pid}/mem`, 'r+');
      if (data.length > 0 && writeSync(fd, data, 0, data.length, Number(addr)) !== data.length) break;
      done++;
    }
  } catch {
    // unwritable (a shared read-only page), or the process is gone: done so far
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  return done;
}

/**
 * A stub process's memory as patching needs it, for a caller without the sentry's
 * ProgramMemory (the runner worker): never a byte of the stub region `region`.
 *
 * @example
 * ```ts
 * ut.tryPatch(processMemory(task.pid, region), rip, sysno); // patched at a site's second trap
 * ```
 */
export function processMemory(pid: number, region: { start: bigint; end: bigint }): PatchMemory {
  const outside = (addr: bigint, len: number) => addr >= 0n && (addr + BigInt(len) <= region.start || addr >= region.end);
  return {
    read(addr, len) {
      if (!outside(addr, len)) return null;
      try {
        const b = native.processVmReadv(pid, addr, len);
        return b.length === len ? b : null;
      } catch {
        return null;
      }
    },
    forceWrite(writes) {
      const ok = writes.findIndex(([addr, data]) => !outside(addr, data.length));
      return forceWrite(pid, ok < 0 ? writes : writes.slice(0, ok));
    },
  };
}

/** Where a trampoline holds its syscall number (the `mov $N, %eax` before its last jump). */
function sysnoOffset(rdgsbase: boolean): number {
  const probe = trampoline(UserTrap.RANGE.start, 0n, 0x5a5a5a5a, 0n, rdgsbase);
  for (let i = 8; i + 4 <= probe.length; i++) if (probe[i - 1] === 0xb8 && new DataView(probe.buffer).getUint32(i, true) === 0x5a5a5a5a) return i;
  throw new Error('usertrap: a trampoline without its number');
}

/** `jmp *ENTRY` (ff 24 25 disp32): its fifth byte, at the site's `0f`, is 0x06 (see UserTrap). */
function jumpTo(entry: bigint): Uint8Array {
  const target = Number(entry);
  const jump = Uint8Array.of(0xff, 0x24, 0x25, target & 0xff, (target >> 8) & 0xff, (target >> 16) & 0xff, 0x00);
  if (jump[5] !== 0x06) throw new Error('usertrap: an entry address without its 0x06');
  return jump;
}

/** GS-relative operands: `65` prefix, then ModRM/SIB for an absolute disp32. */
const GS = 0x65;

/**
 * The bytes of a trampoline entry at `entry` for the site returning to `ret` with `sysno`
 * (see {@link UserTrap}'s note): a pointer to its own code, then the code. The syshandler's
 * address is an immediate, and its stack (the top of the thread's signal stack, which is where
 * its Msg begins) comes from the GS base with rdgsbase where the kernel allows it: the Msg
 * fields the program could scribble on (its own stub's memory) are not what it jumps through.
 * RCX is the `syscall` instruction's to clobber (it holds the return address after one).
 */
export function trampoline(entry: bigint, ret: bigint, sysno: number, syshandler: bigint, rdgsbase: boolean): Uint8Array {
  const out = new Uint8Array(UserTrap.ENTRY_SIZE);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, entry + 8n, true);
  let at = 8;
  const put = (...bytes: number[]) => {
    out.set(bytes, at);
    at += bytes.length;
  };
  const u32 = (v: number) => [v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >>> 24) & 0xff];
  // movl $PREP, %gs:state
  put(GS, 0xc7, 0x04, 0x25, ...u32(MSG.state), ...u32(ThreadState.Prep));
  // mov %rsp, %gs:app_stack
  put(GS, 0x48, 0x89, 0x24, 0x25, ...u32(MSG.appStack));
  // rdgsbase %rsp (the Msg's address: the top of the signal stack), else mov %gs:syshandler_stack, %rsp
  if (rdgsbase) put(0xf3, 0x48, 0x0f, 0xae, 0xcc);
  else put(GS, 0x48, 0x8b, 0x24, 0x25, ...u32(MSG.syshandlerStack));
  // movabs $ret, %rax; mov %rax, %gs:ret_addr
  put(0x48, 0xb8);
  dv.setBigUint64(at, ret, true);
  at += 8;
  put(GS, 0x48, 0x89, 0x04, 0x25, ...u32(MSG.retAddr));
  // movabs $syshandler, %rcx
  put(0x48, 0xb9);
  dv.setBigUint64(at, syshandler, true);
  at += 8;
  // mov $sysno, %eax; jmp *%rcx
  put(0xb8, ...u32(sysno));
  put(0xff, 0xe1);
  if (at > UserTrap.ENTRY_SIZE) throw new Error('usertrap: a trampoline longer than its entry');
  return out;
}
