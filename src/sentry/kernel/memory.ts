import { forceWrite } from '../../shm/usertrap.js';
import { native } from '../../native.js';
import { PAGE_SIZE } from '../../abi/linux.js';

/** Linux's limits on execve's strings: each at most MAX_ARG_STRLEN bytes, and how many we read. */
const MAX_ARG_STRLEN = 32 * PAGE_SIZE;
const MAX_ARG_STRINGS = 65536;
const PAGE = BigInt(PAGE_SIZE);

/** Reads `len` bytes at `addr` of the program, or null if any is unreadable. */
type Reader = (addr: bigint, len: number) => Uint8Array | null;

/**
 * The program's memory, read and written from the sentry with process_vm_readv/writev (the
 * program's pages are its own, not the memory file's). Every access may fail: the program
 * passes any pointer it likes, so a failure is an EFAULT for the program, never an exception
 * for the sentry.
 *
 * @example
 * ```ts
 * const mem = new ProgramMemory(as.pid);
 * const path = mem.readCString(regs.rsi, 4096); // null: EFAULT
 * ```
 */
export class ProgramMemory {
  /**
   * @param region the stub region: the sentry never reads or writes it for the program (its
   * pages are the stub's, not the program's: a pointer there is EFAULT, as natively, where
   * nothing is mapped there).
   */
  constructor(
    readonly pid: number,
    readonly region?: { readonly start: bigint; readonly end: bigint },
  ) {}

  /** True when [addr, addr + len) meets the stub region (or wraps). */
  #forbidden(addr: bigint, len: number): boolean {
    const end = addr + BigInt(len);
    if (addr < 0n || end > 1n << 64n) return true;
    return this.region !== undefined && addr < this.region.end && end > this.region.start;
  }

  /** `len` bytes at `addr`, or null if any of them is unreadable. */
  read(addr: bigint, len: number): Uint8Array | null {
    if (len === 0) return new Uint8Array(0);
    if (this.#forbidden(addr, len)) return null;
    try {
      const b = native.processVmReadv(this.pid, addr, len);
      return b.length === len ? b : null;
    } catch {
      return null;
    }
  }

  /** Writes `data` at `addr`; false if any byte is unwritable. */
  write(addr: bigint, data: Uint8Array): boolean {
    if (data.length === 0) return true;
    if (this.#forbidden(addr, data.length)) return false;
    try {
      return native.processVmWritev(this.pid, addr, data) === data.length;
    } catch {
      return false;
    }
  }

  /**
   * Writes each `data` at its `addr`, in order, through /proc/PID/mem, which ignores page
   * protections as a debugger's breakpoint does (a private mapping gets its own copy of the
   * page; a shared read-only one refuses): syscall patching's writes into code
   * (src/shm/usertrap.ts). Never into the stub region. Returns how many were written.
   */
  forceWrite(writes: ReadonlyArray<readonly [bigint, Uint8Array]>): number {
    const bad = writes.findIndex(([addr, data]) => this.#forbidden(addr, data.length));
    return forceWrite(this.pid, bad < 0 ? writes : writes.slice(0, bad));
  }

  readU32(addr: bigint): number | null {
    const b = this.read(addr, 4);
    return b ? new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true) : null;
  }

  readU64(addr: bigint): bigint | null {
    const b = this.read(addr, 8);
    return b ? new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true) : null;
  }

  writeU32(addr: bigint, v: number): boolean {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v >>> 0, true);
    return this.write(addr, b);
  }

  writeU64(addr: bigint, v: bigint): boolean {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, v), true);
    return this.write(addr, b);
  }

  /**
   * A NUL-terminated string of at most `max` bytes, read page by page (a string may end just
   * before an unmapped page); null if unreadable or longer than `max`.
   */
  readCString(addr: bigint, max: number): string | null {
    const r = this.#cString(addr, max);
    return typeof r === 'string' ? r : null;
  }

  /** readCString, telling an unreadable string from one longer than `max`. */
  #cString(addr: bigint, max: number, read: Reader = (a, n) => this.read(a, n)): string | 'fault' | 'toolong' {
    const parts: Uint8Array[] = [];
    let total = 0;
    let at = addr;
    while (total < max) {
      const chunk = Math.min(PAGE_SIZE - Number(at % BigInt(PAGE_SIZE)), max - total);
      const b = read(at, chunk);
      if (!b) return 'fault';
      const nul = b.indexOf(0);
      if (nul >= 0) {
        parts.push(b.subarray(0, nul));
        return Buffer.concat(parts).toString('utf8');
      }
      parts.push(b);
      total += chunk;
      at += BigInt(chunk);
    }
    return 'toolong';
  }

  /**
   * A NULL-terminated array of string pointers (argv, envp), as execve reads it: EFAULT on a
   * pointer or string it cannot read, E2BIG for a string over MAX_ARG_STRLEN or when the strings
   * and pointers together pass `budget.bytes` (Linux: a quarter of the stack limit, shared by
   * argv and envp; the budget is decremented). Nothing is read past the budget.
   */
  readArgStrings(addr: bigint, budget: { bytes: number }): string[] | 'EFAULT' | 'E2BIG' {
    const out: string[] = [];
    if (addr === 0n) return out;
    // The pointers and the strings lie packed on a few pages (a shell's environment: dozens of
    // strings): each page is read once, not each pointer and string on its own.
    const read = this.#pageReader();
    for (let i = 0; i < MAX_ARG_STRINGS; i++) {
      const ptr = read(addr + BigInt(i * 8), 8);
      if (ptr === null) return 'EFAULT';
      const p = new DataView(ptr.buffer, ptr.byteOffset, 8).getBigUint64(0, true);
      if (p === 0n) return out;
      budget.bytes -= 8;
      const s = this.#cString(p, Math.min(MAX_ARG_STRLEN, Math.max(1, budget.bytes)), read);
      if (s === 'fault') return 'EFAULT';
      if (s === 'toolong') return 'E2BIG';
      budget.bytes -= Buffer.byteLength(s) + 1;
      if (budget.bytes < 0) return 'E2BIG';
      out.push(s);
    }
    return 'E2BIG';
  }

  /**
   * A reader for one call that reads whole pages and keeps them: bytes come from a page read
   * before when they can (a page is readable whole or not at all, so the faults are the same).
   */
  #pageReader(): Reader {
    const pages = new Map<bigint, Uint8Array | null>();
    const page = (n: bigint): Uint8Array | null => {
      let p = pages.get(n);
      if (p === undefined) pages.set(n, (p = this.read(n * PAGE, PAGE_SIZE)));
      return p;
    };
    return (addr, len) => {
      if (len === 0) return new Uint8Array(0);
      if (this.#forbidden(addr, len)) return null;
      const out = new Uint8Array(len);
      for (let done = 0; done < len; ) {
        const at = addr + BigInt(done);
        const p = page(at / PAGE);
        if (!p) return null;
        const from = Number(at % PAGE);
        const n = Math.min(PAGE_SIZE - from, len - done);
        out.set(p.subarray(from, from + n), done);
        done += n;
      }
      return out;
    };
  }
}
