import { closeSync, openSync, readFileSync, readSync } from 'node:fs';

/**
 * The CPU a process used, as getrusage and wait report it: user and system time, and its peak
 * resident set. Protected by: the worker's turn (values, never shared).
 */
export interface CpuTime {
  userUs: number;
  sysUs: number;
  /** Peak resident set, KiB (ru_maxrss). */
  maxRssKb: number;
}

/** Nothing used yet. */
export const NO_CPU: CpuTime = Object.freeze({ userUs: 0, sysUs: 0, maxRssKb: 0 });

/** Microseconds per clock tick of /proc's utime and stime (USER_HZ, 100 on x86-64). */
const US_PER_TICK = 10_000;
/** Bytes of struct rusage, and of struct tms (four clock_t). */
const RUSAGE_SIZE = 144;
const TMS_SIZE = 32;

/**
 * Where small /proc files are read: one buffer for the thread, a page (a larger read makes the
 * kernel's stat file slower to produce: 8 µs for 16 KiB against 3 for 4 KiB, here).
 */
const procBuf = Buffer.alloc(4096);

/**
 * The text of a small /proc file, in one read (readFileSync's open, fstat, reads and decoding
 * cost twice as much, on the path from a child's exit to its parent's wait); one that fills the
 * page is read whole. Undefined when it is gone.
 */
function readProc(path: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined;
  }
  try {
    const n = readSync(fd, procBuf, 0, procBuf.length, 0);
    return n < procBuf.length ? procBuf.toString('latin1', 0, n) : readFileSync(path, 'latin1');
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** utime and stime (fields 14 and 15) of /proc/PID/stat, in µs; zeros when it is gone. */
function statTimes(pid: number): { userUs: number; sysUs: number } {
  const s = readProc(`/proc/${pid}/stat`);
  if (s === undefined) return { userUs: 0, sysUs: 0 };
  // The name (field 2) may hold spaces and parentheses: fields count from its last ')'.
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return { userUs: Number(f[11]) * US_PER_TICK, sysUs: Number(f[12]) * US_PER_TICK };
}

/**
 * What a program process has used so far: its stub and the stub's sysmsg threads (which run
 * the program's code and its passthrough calls: threads of the stub, in its own /proc stat, or,
 * made by a transaction, processes of their own among its children), as the kernel accounts them; the time a sysmsg thread spins waiting for the sentry counts
 * as user time. Its peak resident set is the stub's (one address space).
 *
 * @example
 * ```ts
 * const used = stubCpuTime(p.hostPid); // { userUs: 120000, sysUs: 30000, maxRssKb: 5120 }
 * ```
 */
export function stubCpuTime(hostPid: number): CpuTime {
  const own = statTimes(hostPid);
  let userUs = own.userUs;
  let sysUs = own.sysUs;
  let maxRssKb = 0;
  for (const tid of (readProc(`/proc/${hostPid}/task/${hostPid}/children`) ?? '').trim().split(/\s+/)) {
    if (tid === '') continue;
    const t = statTimes(Number(tid));
    userUs += t.userUs;
    sysUs += t.sysUs;
  }
  maxRssKb = Number(/^VmHWM:\s*(\d+)/m.exec(readProc(`/proc/${hostPid}/status`) ?? '')?.[1] ?? 0);
  return { userUs, sysUs, maxRssKb };
}

/**
 * Two usages together (a process's and its waited-for children's): times add, the peak is the
 * larger one, as Linux's RUSAGE_BOTH.
 *
 * @example
 * ```ts
 * parent.childCpu = addCpu(parent.childCpu, addCpu(child.cpu, child.childCpu));
 * ```
 */
export function addCpu(a: CpuTime, b: CpuTime): CpuTime {
  return { userUs: a.userUs + b.userUs, sysUs: a.sysUs + b.sysUs, maxRssKb: Math.max(a.maxRssKb, b.maxRssKb) };
}

/**
 * A struct rusage (x86-64): ru_utime and ru_stime as timevals, ru_maxrss; the other counters 0.
 *
 * @example
 * ```ts
 * mem.write(ruAddr, rusageBytes(used));
 * ```
 */
export function rusageBytes(c: CpuTime): Uint8Array {
  const b = new Uint8Array(RUSAGE_SIZE);
  const v = new DataView(b.buffer);
  const tv = (off: number, us: number) => {
    v.setBigInt64(off, BigInt(Math.floor(us / 1e6)), true);
    v.setBigInt64(off + 8, BigInt(Math.round(us % 1e6)), true);
  };
  tv(0, c.userUs);
  tv(16, c.sysUs);
  v.setBigInt64(32, BigInt(c.maxRssKb), true);
  return b;
}

/**
 * A struct tms (times): the process's and its waited-for children's times, in clock ticks.
 *
 * @example
 * ```ts
 * mem.write(buf, tmsBytes(stubCpuTime(pid), p.childCpu));
 * ```
 */
export function tmsBytes(own: CpuTime, children: CpuTime): Uint8Array {
  const b = new Uint8Array(TMS_SIZE);
  const v = new DataView(b.buffer);
  [own.userUs, own.sysUs, children.userUs, children.sysUs].forEach((us, i) => v.setBigInt64(8 * i, BigInt(Math.floor(us / US_PER_TICK)), true));
  return b;
}
