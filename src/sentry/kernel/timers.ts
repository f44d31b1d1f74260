import { SIG } from '../../abi/linux.js';
import { stubCpuTime } from './cpuTime.js';
import type { Task } from './task.js';

/**
 * What a timer counts (gVisor's ktime.Clock of an IntervalTimer): `real` is wall time
 * (performance.now(), ms); `user` the process's user CPU time (ITIMER_VIRTUAL); `cpu` its user
 * and system CPU time (ITIMER_PROF, CLOCK_PROCESS_CPUTIME_ID), in ms of CPU.
 */
export type TimerBase = 'real' | 'user' | 'cpu';

/** A timer's setting as the calls read and write it: time to the next expiry and period, ms (0 0: disarmed). */
export interface TimerSetting {
  valueMs: number;
  intervalMs: number;
}

/**
 * One interval timer (gVisor's ktime.Timer): its next expiry on its base and its period.
 * Protected by: the sentry worker's turn (a process's timers are only touched in its turn or by
 * its own calls).
 *
 * @example
 * ```ts
 * const t = new IntervalTimer('real');
 * t.set(performance.now(), { valueMs: 1000, intervalMs: 0 }); // alarm(1)
 * t.expire(performance.now() + 1000); // 1: one expiry, now disarmed
 * ```
 */
export class IntervalTimer {
  /** Next expiry on the base's clock (ms); undefined: disarmed. */
  at?: number;
  intervalMs = 0;

  constructor(readonly base: TimerBase) {}

  /** The setting as of `now` (on its base). */
  get(now: number): TimerSetting {
    if (this.at === undefined) return { valueMs: 0, intervalMs: this.intervalMs };
    // Due but not yet fired: Linux reports the smallest time left, never 0 (which means disarmed).
    return { valueMs: Math.max(this.at - now, 0.001), intervalMs: this.intervalMs };
  }

  /** Arms (a value of 0 disarms) and returns the old setting. `absolute`: the value is a time on the base. */
  set(now: number, s: TimerSetting, absolute = false): TimerSetting {
    const old = this.get(now);
    // Linux keeps a disarmed wall timer's period as 0 (ITIMER_REAL, POSIX timers), a CPU itimer's as given.
    this.intervalMs = s.valueMs === 0 && this.base === 'real' ? 0 : s.intervalMs;
    this.at = s.valueMs === 0 ? undefined : absolute ? s.valueMs : now + s.valueMs;
    return old;
  }

  /** How many times it expired by `now` (0: not due); re-armed for its next period, or disarmed. */
  expire(now: number): number {
    if (this.at === undefined || now < this.at) return 0;
    if (this.intervalMs <= 0) {
      this.at = undefined;
      return 1;
    }
    const n = 1 + Math.floor((now - this.at) / this.intervalMs);
    this.at += n * this.intervalMs;
    return n;
  }
}

/** sigevent's sigev_notify (gVisor's linux.SIGEV_*). */
export const SIGEV = { SIGNAL: 0, NONE: 1, THREAD: 2, THREAD_ID: 4 } as const;

/** A POSIX timer (timer_create): what it counts and whom it signals. */
export interface PosixTimer {
  readonly timer: IntervalTimer;
  /** The clock id it was made on (a TIMER_ABSTIME value is a time on it). */
  readonly clock: number;
  notify: number;
  signo: number;
  /** sigev_value, handed back in si_value (the timer's id when timer_create had no sigevent). */
  value: bigint;
  /** SIGEV_THREAD_ID's thread. */
  tid?: number;
  /** The siginfo of its last signal: while that is still queued, an expiry counts as an overrun in it. */
  info?: Uint8Array;
  /** The overruns of the signal taken before `info` (timer_getoverrun while `info` is queued). */
  lastOverrun?: number;
}

/** si_code of a POSIX timer's signal and of an itimer's (sent by the kernel itself). */
const SI_TIMER = -2;
const SI_KERNEL = 0x80;
/** Linux's DELAYTIMER_MAX: overruns saturate there. */
const DELAYTIMER_MAX = 0x7fffffff;
/** At most this many POSIX timers per process (Linux bounds them by RLIMIT_SIGPENDING). */
const MAX_POSIX_TIMERS = 4096;
/** CPU time is sampled from /proc at most this often (ms) while a CPU timer is armed. */
const CPU_POLL_MS = 10;

/** The signal each itimer sends: ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF. */
const ITIMER_SIGNALS = [SIG.SIGALRM, SIG.SIGVTALRM, SIG.SIGPROF];

/** What the timers use of their process. */
export interface TimerHost {
  readonly hostPid: number;
  readonly signals: {
    sendGroup(signo: number, info?: Uint8Array): void;
    sendThread(t: Task, signo: number, info?: Uint8Array): void;
    /** Whether this very siginfo is still queued (not yet taken by a thread). */
    isQueued(info: Uint8Array): boolean;
  };
  task(tid: number): Task | undefined;
}

/**
 * A process's timers (gVisor's ThreadGroup itimers and POSIX timers), all kept by the sentry:
 * run by the kernel in a sysmsg thread, a timer would belong to that host thread group, which
 * runs every program thread in turn, and its signal would hit the stub. Expiries are noticed in
 * the process's turns (the host's sleep ends by {@link nextDeadline}); CPU timers are sampled from
 * the stub's /proc accounting, so they fire up to a poll period late (as the kernel's fire at a
 * tick) and count the time sysmsg threads spin for the sentry as user time.
 *
 * @example
 * ```ts
 * const timers = new ProcessTimers(process);
 * timers.itimers[0].set(performance.now(), { valueMs: 1000, intervalMs: 0 }); // alarm(1)
 * timers.expire(performance.now()); // sends SIGALRM once due
 * ```
 */
export class ProcessTimers {
  /** ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF. */
  readonly itimers = [new IntervalTimer('real'), new IntervalTimer('user'), new IntervalTimer('cpu')] as const;
  /** POSIX timers by id. */
  readonly posix = new Map<number, PosixTimer>();
  #nextId = 0;
  /** The last CPU sample (ms) and when the next is due (performance.now()). */
  #cpu = { user: 0, total: 0 };
  #cpuAt = -Infinity;

  constructor(private readonly host: TimerHost) {}

  /** `now` on a base: wall time as given, CPU time sampled (`fresh`: read now, not the last sample). */
  now(base: TimerBase, wallNow: number, fresh = false): number {
    if (base === 'real') return wallNow;
    if (fresh || wallNow >= this.#cpuAt) {
      const c = stubCpuTime(this.host.hostPid);
      this.#cpu = { user: c.userUs / 1000, total: (c.userUs + c.sysUs) / 1000 };
      this.#cpuAt = wallNow + CPU_POLL_MS;
    }
    return base === 'user' ? this.#cpu.user : this.#cpu.total;
  }

  /** A new POSIX timer's id (-1: too many). */
  add(t: PosixTimer): number {
    if (this.posix.size >= MAX_POSIX_TIMERS) return -1;
    while (this.posix.has(this.#nextId)) this.#nextId = (this.#nextId + 1) & 0x7fffffff;
    const id = this.#nextId;
    this.#nextId = (id + 1) & 0x7fffffff;
    this.posix.set(id, t);
    return id;
  }

  /** timer_getoverrun: the overruns its last delivered signal carried (0 while none was taken). */
  overrun(t: PosixTimer): number {
    return t.info && !this.host.signals.isQueued(t.info) ? infoView(t.info).getInt32(20, true) : (t.lastOverrun ?? 0);
  }

  /** When the host must look again (performance.now() time): the next wall expiry, or the next CPU sample. */
  nextDeadline(): number {
    let d = Infinity;
    for (const t of this.#all()) {
      if (t.at === undefined) continue;
      d = Math.min(d, t.base === 'real' ? t.at : this.#cpuAt);
    }
    return d;
  }

  /** Sends the signals of every timer due by `wallNow`. True if one expired. */
  expire(wallNow: number): boolean {
    // Every turn of the process: nothing made when no timer is armed (most programs).
    if (this.posix.size === 0 && this.itimers[0].at === undefined && this.itimers[1].at === undefined && this.itimers[2].at === undefined) return false;
    let any = false;
    this.itimers.forEach((t, which) => {
      if (t.at === undefined || t.expire(this.now(t.base, wallNow)) === 0) return;
      any = true;
      // Linux's it_real_fn and check_cpu_itimer: one signal however many periods passed.
      const info = new Uint8Array(128);
      infoView(info).setInt32(0, ITIMER_SIGNALS[which], true);
      infoView(info).setInt32(8, SI_KERNEL, true);
      this.host.signals.sendGroup(ITIMER_SIGNALS[which], info);
    });
    for (const [id, p] of [...this.posix]) {
      const n = p.timer.at === undefined ? 0 : p.timer.expire(this.now(p.timer.base, wallNow));
      if (n === 0) continue;
      any = true;
      this.#fire(id, p, n);
    }
    return any;
  }

  /** execve: POSIX timers are deleted, itimers kept (as Linux's exit_itimers at exec). */
  resetForExec(): void {
    this.posix.clear();
  }

  /** A POSIX timer expired `n` times: its signal, or overruns in the one still queued. */
  #fire(id: number, p: PosixTimer, n: number): void {
    if (p.notify === SIGEV.NONE) return;
    const target = p.tid !== undefined ? this.host.task(p.tid) : undefined;
    // Still queued (to a thread that still lives): one more overrun in it.
    if (p.info && this.host.signals.isQueued(p.info) && (p.tid === undefined || target)) {
      const dv = infoView(p.info);
      dv.setInt32(20, Math.min(DELAYTIMER_MAX, dv.getInt32(20, true) + n), true);
      return;
    }
    if (p.info) p.lastOverrun = infoView(p.info).getInt32(20, true);
    const info = new Uint8Array(128);
    const dv = infoView(info);
    dv.setInt32(0, p.signo, true);
    dv.setInt32(8, SI_TIMER, true);
    dv.setInt32(16, id, true);
    dv.setInt32(20, Math.min(DELAYTIMER_MAX, n - 1), true);
    dv.setBigUint64(24, p.value, true);
    p.info = info;
    if (target) this.host.signals.sendThread(target, p.signo, info);
    else this.host.signals.sendGroup(p.signo, info);
  }

  *#all(): Iterable<IntervalTimer> {
    yield* this.itimers;
    for (const p of this.posix.values()) yield p.timer;
  }
}

function infoView(info: Uint8Array): DataView {
  return new DataView(info.buffer, info.byteOffset, info.byteLength);
}
