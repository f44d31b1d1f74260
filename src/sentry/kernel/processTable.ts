import { readFileSync } from 'node:fs';
import { CLD, ERRNO, SIG, WAIT } from '../../abi/linux.js';
import type { Task } from './task.js';
import type { Proc, ProcTable, WaitCall, WaitSelect } from './process.js';
import { makeSiginfo } from './signals.js';
import { jobInfo } from './jobControl.js';
import { PidfdNames } from './pidfds.js';
import { SignalfdTable } from './signalfd.js';
import { NO_CPU, addCpu, rusageBytes, tmsBytes, type CpuTime } from './cpuTime.js';

export type { WaitCall, WaitSelect };

/** Bytes of struct rusage (all zeros for a stop or a continue). */
const RUSAGE_SIZE = 144;

/** What an ended process used with its waited-for children (wait4's rusage: RUSAGE_BOTH). */
const usedBy = (p: Proc): CpuTime => addCpu(p.cpu ?? NO_CPU, p.childCpu ?? NO_CPU);
/** Bytes of the siginfo waitid fills. */
const SIGINFO_SIZE = 128;

/** Top of the tids handed to threads: below pid_max, where the kernel's own pids seldom reach. */
const PID_MAX = readPidMax();

function readPidMax(): number {
  try {
    return Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8').trim()) || 32768;
  } catch {
    return 32768;
  }
}

/**
 * The SIGCHLD siginfo of an ended child (what the parent's handler and waitid see).
 *
 * @example
 * ```ts
 * parent.signals.sendGroup(SIG.SIGCHLD, childInfo(child));
 * ```
 */
export function childInfo(p: Proc): Uint8Array {
  const end = p.end!;
  const b = makeSiginfo(SIG.SIGCHLD, end.kind === 'exited' ? CLD.EXITED : CLD.KILLED, { pid: p.tgid, uid: process.getuid?.() ?? 0 });
  // si_status follows si_pid and si_uid (offset 24 on x86-64), then si_utime and si_stime:
  // the child's own CPU time in clock ticks (its children's are not in it, as Linux's).
  const v = new DataView(b.buffer);
  v.setInt32(24, end.kind === 'exited' ? end.status : end.signal, true);
  const used = tmsBytes(p.cpu ?? NO_CPU, NO_CPU);
  b.set(used.subarray(0, 16), 32);
  return b;
}

/**
 * What ended (EXIT: its status or signal) or stopped (STOP: the signal) a process, for its
 * actor's timeline; nothing for the other events.
 *
 * @example
 * ```ts
 * eventDetail(p, 'EXIT'); // { status: 0 } or { signal: 9 }
 * ```
 */
export function eventDetail(p: Proc, event: string): { status?: number; signal?: number } {
  if (event === 'EXIT' && p.end) return p.end.kind === 'exited' ? { status: p.end.status } : { signal: p.end.signal };
  if (event === 'STOP' && p.job.report) return { signal: p.job.report.signo };
  return {};
}

function isLive(p: Proc): boolean {
  return p.live;
}

/**
 * Every process and thread of a program tree (gVisor's PIDNamespace): processes by pid, live
 * and zombie; threads by tid; who waits for which children; the tids handed to threads.
 *
 * The pid model: a process's pid is its stub's pid in the tree's pid namespace (a sandbox's own,
 * or the host's when there is none), so fork, getpid, /proc and kill all agree. Threads are
 * multiplexed over stub threads and have no host tid of their own; their tids are handed out
 * from the top of the pid range down, where the kernel's own (ascending) pids seldom reach, and
 * never one a live process or thread of the tree has.
 *
 * @example
 * ```ts
 * const table = new ProcessTable();
 * table.add(process);
 * table.wait(parent, t, { kind: 'wait4', select: { kind: 'any' }, options: 0n, out, rusage: 0n });
 * ```
 */
export class ProcessTable<P extends Proc = Proc> implements ProcTable {
  readonly #procs = new Map<number, P>();
  readonly #threads = new Map<number, { task: Task; process: P }>();
  /** Tasks blocked in wait4/waitid, with their call. */
  readonly #waiters = new Map<Task, { process: Proc; call: WaitCall }>();
  #nextTid = PID_MAX - 1;
  /** Processes added so far, and the last live() snapshot (with that count when it was made). */
  #added = 0;
  #live: { added: number; list: P[] } = { added: -1, list: [] };
  /** What the program's pidfds name (waitid's P_PIDFD). */
  readonly pidfds = new PidfdNames();
  /** The program's signalfds (see SignalfdTable). */
  readonly signalfds = new SignalfdTable();
  /** Processes that exist and are not reaped yet. */
  get size(): number {
    return this.#procs.size;
  }

  add(p: P): void {
    this.#added++;
    this.#procs.set(p.tgid, p);
    p.parent?.children.add(p);
    this.pidfds.added(p.tgid, p.hostPid);
  }

  addThread(t: Task, p: Proc): void {
    this.#threads.set(t.tid, { task: t, process: p as P });
  }

  removeThread(tid: number): void {
    this.#threads.delete(tid);
  }

  process(pid: number): P | undefined {
    return this.#procs.get(pid);
  }

  thread(tid: number): { task: Task; process: P } | undefined {
    return this.#threads.get(tid);
  }

  /**
   * The live processes, in the order they came: a snapshot array, made again only when a
   * process came or one of those in it ended (the kernel asks for it several times per trap).
   * Never changed once handed out: a caller may go on iterating it while processes end.
   */
  live(): readonly P[] {
    const c = this.#live;
    if (c.added === this.#added && c.list.every(isLive)) return c.list;
    const list: P[] = [];
    for (const p of this.#procs.values()) if (p.live) list.push(p);
    this.#live = { added: this.#added, list };
    return list;
  }

  anyLive(): boolean {
    for (const p of this.#procs.values()) if (p.live) return true;
    return false;
  }

  /** Every process, live or zombie. */
  all(): Iterable<P> {
    return this.#procs.values();
  }

  /** A tid no process or thread of the tree has (see the class doc). */
  allocateTid(): number {
    for (let i = 0; i < PID_MAX; i++) {
      const tid = this.#nextTid;
      this.#nextTid = tid <= 301 ? PID_MAX - 1 : tid - 1;
      if (!this.#procs.has(tid) && !this.#threads.has(tid)) return tid;
    }
    throw new Error('no free tid');
  }

  /** Called when a process is reaped (its `process` actor hears of it). */
  onReap?: (p: Proc) => void;

  /** `p` is gone from the tree: out of its parent's children and of the table. */
  reap(p: Proc): void {
    if (p.reaped) return;
    p.reaped = true;
    this.onReap?.(p);
    p.parent?.children.delete(p);
    this.#procs.delete(p.tgid);
    this.pidfds.reaped(p.tgid);
  }

  /**
   * The children of an ended process go to the nearest live subreaper above it, else to the
   * tree's parent (a sandbox's init, which reaps them); `notify` tells a new parent of a zombie.
   */
  reparentChildren(p: Proc, notify: (orphan: Proc) => void): void {
    let reaper = p.parent;
    while (reaper && (!reaper.live || !reaper.subreaper)) reaper = reaper.parent;
    for (const c of [...p.children]) {
      p.children.delete(c);
      c.parent = reaper;
      reaper?.children.add(c);
      if (c.pdeathSignal !== 0 && c.live) {
        const sig = c.pdeathSignal;
        c.defer(() => c.signals.sendGroup(sig));
      }
      if (!c.live) notify(c);
    }
    if (reaper) reaper.defer(() => this.wakeWaiters(reaper));
  }

  /**
   * wait4/waitid for `t` of process `p`: an ended child's status now (reaped unless WNOWAIT),
   * 0 with WNOHANG, ECHILD without a matching child, else `undefined`: the task waits (parked
   * by the caller) until a child ends (see wakeWaiters).
   */
  wait(p: Proc, t: Task, call: WaitCall): bigint | undefined {
    const r = this.#tryWait(p, call);
    if (r !== undefined) return r;
    this.#waiters.set(t, { process: p, call });
    return undefined;
  }

  /** `t` no longer waits (woken, interrupted, or gone). */
  forgetWaiter(t: Task): void {
    this.#waiters.delete(t);
  }

  /** A child of `p` ended or left: each of its waiting tasks tries again. */
  wakeWaiters(p: Proc): void {
    for (const [t, w] of [...this.#waiters]) {
      if (w.process !== p) continue;
      const r = this.#tryWait(p, w.call);
      if (r === undefined) continue;
      this.#waiters.delete(t);
      p.wake(t, r);
    }
  }

  #tryWait(p: Proc, call: WaitCall): bigint | undefined {
    const candidates = [...p.children].filter((c) => selects(call, c));
    if (candidates.length === 0) return -BigInt(ERRNO.ECHILD);
    const wantsExit = call.kind === 'wait4' || (call.options & WAIT.WEXITED) !== 0n;
    const ended = wantsExit ? candidates.find((c) => !c.live) : undefined;
    if (ended) {
      if (!this.#report(p, ended, call)) return -BigInt(ERRNO.EFAULT);
      if ((call.options & WAIT.WNOWAIT) === 0n) {
        // Waited for: its time and its children's become its parent's children's (cutime).
        p.childCpu = addCpu(p.childCpu ?? NO_CPU, usedBy(ended));
        this.reap(ended);
      }
      return call.kind === 'wait4' ? BigInt(ended.tgid) : 0n;
    }
    // Job control: a stop (WUNTRACED, waitid's WSTOPPED) or a continue (WCONTINUED), once each.
    for (const kind of ['stopped', 'continued'] as const) {
      if ((call.options & (kind === 'stopped' ? WAIT.WUNTRACED : WAIT.WCONTINUED)) === 0n) continue;
      const c = candidates.find((x) => x.live && x.job.report?.kind === kind);
      if (!c) continue;
      const r = c.job.report!;
      const status = kind === 'stopped' ? ((r.signo & 0xff) << 8) | 0x7f : 0xffff;
      const written = call.kind === 'wait4' ? call.out === 0n || p.mem.writeU32(call.out, status) : call.out === 0n || p.mem.write(call.out, jobInfo(c.tgid, r));
      if (!written || (call.rusage !== 0n && !p.mem.write(call.rusage, new Uint8Array(RUSAGE_SIZE)))) return -BigInt(ERRNO.EFAULT);
      if ((call.options & WAIT.WNOWAIT) === 0n) c.job.report = undefined;
      return call.kind === 'wait4' ? BigInt(c.tgid) : 0n;
    }
    if ((call.options & WAIT.WNOHANG) !== 0n) {
      // waitid with WNOHANG and nothing to report zeroes si_pid (and the rest) as Linux does.
      if (call.kind === 'waitid' && call.out !== 0n && !p.mem.write(call.out, new Uint8Array(SIGINFO_SIZE))) return -BigInt(ERRNO.EFAULT);
      return 0n;
    }
    return undefined;
  }

  /** Writes what a wait reports about `child` into `p`'s memory; false on a bad pointer. */
  #report(p: Proc, child: Proc, call: WaitCall): boolean {
    const end = child.end!;
    if (call.kind === 'wait4') {
      const status = end.kind === 'exited' ? (end.status & 0xff) << 8 : end.signal & 0x7f;
      if (call.out !== 0n && !p.mem.writeU32(call.out, status)) return false;
    } else if (call.out !== 0n && !p.mem.write(call.out, childInfo(child))) return false;
    if (call.rusage !== 0n && !p.mem.write(call.rusage, rusageBytes(usedBy(child)))) return false;
    return true;
  }
}

/** Whether a wait call is for child `c` (its pid or group, and __WALL/__WCLONE against its exit signal). */
function selects(call: WaitCall, c: Proc): boolean {
  const s = call.select;
  if (s.kind === 'pid' && c.tgid !== s.pid) return false;
  if (s.kind === 'pgid' && c.pgid !== s.pgid) return false;
  if ((call.options & WAIT.__WALL) !== 0n) return true;
  // A "clone child" (exit signal other than SIGCHLD) is waited for with __WCLONE only.
  const cloneChild = c.exitSignal !== SIG.SIGCHLD;
  return ((call.options & WAIT.__WCLONE) !== 0n) === cloneChild;
}
