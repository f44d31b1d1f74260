import { closeSync, fstatSync, readdirSync, readlinkSync, writeSync } from 'node:fs';
import { SIG } from '../../abi/linux.js';
import { sigbit } from './signals.js';

/** Size of a signalfd record (struct signalfd_siginfo). */
export const SIGNALFD_RECORD = 128;

/**
 * At most this many signalfds live at once in a tree: each holds one of Node's fds (the write
 * end of its pipe), so a program making signalfds in a loop must not exhaust Node's. Past it,
 * signalfd fails with EMFILE, as a process out of fds.
 */
export const MAX_SIGNALFDS = 256;

/** One signalfd: its pipe, the signals it reads, and the processes holding its read end. */
interface Signalfd {
  /** The pipe's inode (what /proc/PID/fd links name: `pipe:[ino]`). */
  readonly ino: number;
  /** Node's write end (O_NONBLOCK: a full pipe refuses, never blocks the sentry). */
  readonly fd: number;
  /** The signals it reads (signalfd's mask, never SIGKILL or SIGSTOP); one for every holder, as Linux's is the file's. */
  mask: bigint;
  /** Process (tgid) → its stub's pid and the fd number it was last seen at. */
  readonly readers: Map<number, { hostPid: number; fd: number }>;
}

/**
 * The tree's signalfds (gVisor's fsimpl/signalfd). The kernel's signalfd would read the stub
 * thread's signals, which never has the program's: the sentry keeps those. So a signalfd is a
 * pipe: the program holds its read end (poll, epoll, read, fork and exec work on it as on any
 * fd), the sentry writes a signalfd_siginfo record into it for each signal of its mask that
 * becomes pending, blocked, in a process holding it, and takes the signal off the pending list
 * (reading a signalfd dequeues, as here the write does). A full pipe leaves the signal pending,
 * never dropped. Readers are checked at each write (the program may have closed the fd, or
 * execed with it close-on-exec): a stale one is forgotten, and a pipe nobody reads is closed.
 * Owned by the sentry worker.
 *
 * @example
 * ```ts
 * const table = new SignalfdTable();
 * table.add({ tgid: 2, hostPid: 4242, fd: 5, writeFd, mask: sigbit(SIG.SIGCHLD) });
 * table.watched(2);                              // SIGCHLD's bit
 * table.write(2, SIG.SIGCHLD, siginfo);          // true: a record is in the pipe
 * ```
 */
export class SignalfdTable {
  /** Protected by: the sentry worker. */
  readonly #all = new Map<number, Signalfd>();

  get size(): number {
    return this.#all.size;
  }

  /** A new signalfd of process `tgid`: fd `fd` of its stub `hostPid` is the read end, `writeFd` Node's write end. */
  add(o: { tgid: number; hostPid: number; fd: number; writeFd: number; mask: bigint }): void {
    const ino = fstatSync(o.writeFd).ino;
    this.#all.get(ino)?.readers.clear(); // a pipe inode reused: the old entry's pipe is gone
    this.#drop(ino);
    this.#all.set(ino, { ino, fd: o.writeFd, mask: o.mask, readers: new Map([[o.tgid, { hostPid: o.hostPid, fd: o.fd }]]) });
  }

  /**
   * The signalfd fd `fd` of stub `hostPid` is, for signalfd() on an existing one: 'EBADF' when
   * no such fd is open, 'EINVAL' when it is not one of ours (Linux: "not a valid signalfd").
   */
  find(tgid: number, hostPid: number, fd: number): { setMask(mask: bigint): void } | 'EBADF' | 'EINVAL' {
    let link: string;
    try {
      link = readlinkSync(`/proc/${hostPid}/fd/${fd}`);
    } catch {
      return 'EBADF';
    }
    const e = this.#all.get(pipeInode(link) ?? -1);
    if (!e) return 'EINVAL';
    e.readers.set(tgid, { hostPid, fd });
    return { setMask: (mask) => (e.mask = mask) };
  }

  /** The signals some signalfd that process `tgid` holds reads. */
  watched(tgid: number): bigint {
    let set = 0n;
    for (const e of this.#all.values()) if (e.readers.has(tgid)) set |= e.mask;
    return set;
  }

  /**
   * Writes the record of signal `signo` (its siginfo `info`) into a signalfd of process `tgid`
   * that reads it. False when none can take it now (none reads it, or their pipes are full): the
   * signal then stays pending.
   */
  write(tgid: number, signo: number, info: Uint8Array): boolean {
    const record = signalfdRecord(info);
    for (const e of [...this.#all.values()]) {
      if ((e.mask & sigbit(signo)) === 0n || !this.#holds(e, tgid)) continue;
      try {
        writeSync(e.fd, record);
        return true;
      } catch (err) {
        // EPIPE: no read end is left anywhere; EAGAIN: full, the signal waits for a reader.
        if ((err as NodeJS.ErrnoException).code === 'EPIPE') this.#drop(e.ino);
      }
    }
    return false;
  }

  /** Process `parent` forked `child`: the child holds what its parent held (fds are inherited). */
  forked(parent: number, child: number, childHostPid: number): void {
    for (const e of this.#all.values()) {
      const r = e.readers.get(parent);
      if (r) e.readers.set(child, { hostPid: childHostPid, fd: r.fd });
    }
  }

  /** Process `tgid` ended: it reads nothing more; pipes nobody holds are closed. */
  ended(tgid: number): void {
    for (const e of [...this.#all.values()]) {
      e.readers.delete(tgid);
      if (e.readers.size === 0) this.#drop(e.ino);
    }
  }

  /** Forgets readers that no longer hold their signalfd, and closes the pipes nobody holds. */
  sweep(): void {
    for (const e of [...this.#all.values()]) for (const tgid of [...e.readers.keys()]) this.#holds(e, tgid);
  }

  /** The program ended: every write end closes. */
  closeAll(): void {
    for (const ino of [...this.#all.keys()]) this.#drop(ino);
  }

  /** Whether process `tgid` still holds `e`'s read end (at the fd last seen, or any other); forgets it if not. */
  #holds(e: Signalfd, tgid: number): boolean {
    const r = e.readers.get(tgid);
    if (!r) return false;
    const want = `pipe:[${e.ino}]`;
    if (linkOf(r.hostPid, r.fd) === want) return true;
    let names: string[] = [];
    try {
      names = readdirSync(`/proc/${r.hostPid}/fd`);
    } catch {
      // its stub is gone: it holds nothing
    }
    const at = names.find((n) => linkOf(r.hostPid, Number(n)) === want);
    if (at !== undefined) {
      r.fd = Number(at);
      return true;
    }
    e.readers.delete(tgid);
    if (e.readers.size === 0) this.#drop(e.ino);
    return false;
  }

  #drop(ino: number): void {
    const e = this.#all.get(ino);
    if (!e) return;
    this.#all.delete(ino);
    closeSync(e.fd);
  }
}

function linkOf(hostPid: number, fd: number): string | undefined {
  try {
    return readlinkSync(`/proc/${hostPid}/fd/${fd}`);
  } catch {
    return undefined;
  }
}

/** The inode a `pipe:[N]` link names, or undefined for anything else. */
function pipeInode(link: string): number | undefined {
  const m = /^pipe:\[(\d+)\]$/.exec(link);
  return m ? Number(m[1]) : undefined;
}

/** si_code values that decide a siginfo's layout (Linux's siginfo_layout). */
const SI_TIMER = -2;
const SI_SIGIO = -5;
const SI_KERNEL = 0x80;
const FAULTS = new Set<number>([SIG.SIGILL, SIG.SIGFPE, SIG.SIGSEGV, SIG.SIGBUS, SIG.SIGTRAP]);

/**
 * A siginfo (128 bytes, x86-64) as the signalfd_siginfo record Linux's signalfd_copyinfo makes
 * of it: the fields of its layout (kill, timer, poll, fault, child, real-time, seccomp) at the
 * record's own offsets.
 *
 * @example
 * ```ts
 * signalfdRecord(makeSiginfo(SIG.SIGUSR1, 0, { pid: 7, uid: 0 })); // ssi_signo 10, ssi_pid 7
 * ```
 */
export function signalfdRecord(info: Uint8Array): Uint8Array {
  const si = new DataView(info.buffer, info.byteOffset, info.byteLength);
  const out = new Uint8Array(SIGNALFD_RECORD);
  const r = new DataView(out.buffer);
  const signo = si.getInt32(0, true);
  const code = si.getInt32(8, true);
  r.setUint32(0, signo, true);
  r.setInt32(4, si.getInt32(4, true), true);
  r.setInt32(8, code, true);
  const u32 = (at: number) => si.getUint32(at, true);
  const killFields = () => {
    r.setUint32(12, u32(16), true); // ssi_pid
    r.setUint32(16, u32(20), true); // ssi_uid
  };
  const value = () => {
    r.setInt32(44, si.getInt32(24, true), true); // ssi_int
    r.setBigUint64(48, si.getBigUint64(24, true), true); // ssi_ptr
  };
  const specific = code > 0 && code < SI_KERNEL;
  if (specific && FAULTS.has(signo)) {
    r.setBigUint64(72, si.getBigUint64(16, true), true); // ssi_addr
    if (signo === SIG.SIGBUS) r.setUint16(80, si.getUint16(24, true), true); // ssi_addr_lsb
  } else if (specific && signo === SIG.SIGCHLD) {
    killFields();
    r.setInt32(40, si.getInt32(24, true), true); // ssi_status
    r.setBigUint64(56, si.getBigUint64(32, true), true); // ssi_utime
    r.setBigUint64(64, si.getBigUint64(40, true), true); // ssi_stime
  } else if (specific && signo === SIG.SIGSYS) {
    r.setBigUint64(88, si.getBigUint64(16, true), true); // ssi_call_addr
    r.setInt32(84, si.getInt32(24, true), true); // ssi_syscall
    r.setUint32(96, u32(28), true); // ssi_arch
  } else if ((specific && signo === SIG.SIGIO) || code === SI_SIGIO) {
    r.setUint32(28, u32(16), true); // ssi_band
    r.setInt32(20, si.getInt32(24, true), true); // ssi_fd
  } else if (code === SI_TIMER) {
    r.setUint32(24, u32(16), true); // ssi_tid
    r.setUint32(32, u32(20), true); // ssi_overrun
    value();
  } else if (code < 0) {
    killFields();
    value();
  } else killFields();
  return out;
}
