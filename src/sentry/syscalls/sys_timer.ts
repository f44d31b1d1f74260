import { CLOCK_BOOTTIME, CLOCK_MONOTONIC, CLOCK_REALTIME, ERRNO, NSIG, SIG, TIMER_ABSTIME } from '../../abi/linux.js';
import { IntervalTimer, SIGEV, type PosixTimer, type TimerBase, type TimerSetting } from '../kernel/timers.js';
import { err, type Handler, type SyscallKernel } from './context.js';

/** What the timer calls use of the kernel. */
type TimerKernel = Pick<SyscallKernel, 'mem' | 'timers' | 'task' | 'tgid'>;

const CLOCK_TAI = 11;
/** Clocks Linux has no timers for (MONOTONIC_RAW, the coarse ones) or that need an RTC (the ALARM ones): EOPNOTSUPP. */
const NO_TIMERS = new Set([4, 5, 6, 8, 9]);

/** Reads a pair of (seconds, sub-unit) longs at `addr + off`: a timeval (`unit` 1e6) or timespec (1e9); null: bad. */
function readTime(b: Uint8Array, off: number, unit: number): number | null {
  const dv = new DataView(b.buffer, b.byteOffset + off, 16);
  const sec = dv.getBigInt64(0, true);
  const sub = dv.getBigInt64(8, true);
  if (sec < 0n || sub < 0n || sub >= BigInt(unit)) return null;
  return Number(sec) * 1000 + Number(sub) / (unit / 1000);
}

/** A timer setting as an itimerval (`unit` 1e6) or itimerspec (1e9): interval, then value. */
function encode(s: TimerSetting, unit: number): Uint8Array {
  const b = new Uint8Array(32);
  const dv = new DataView(b.buffer);
  [s.intervalMs, s.valueMs].forEach((ms, i) => {
    const subs = Math.round((ms % 1000) * (unit / 1000));
    // A timer about to fire never reads as 0 left (that means disarmed).
    const sub = ms > 0 && subs === 0 && Math.floor(ms / 1000) === 0 ? 1 : Math.min(subs, unit - 1);
    dv.setBigInt64(i * 16, BigInt(Math.floor(ms / 1000)), true);
    dv.setBigInt64(i * 16 + 8, BigInt(sub), true);
  });
  return b;
}

/** Reads an itimerval/itimerspec: null when unreadable (EFAULT), 'invalid' when out of range (EINVAL). */
function decode(k: TimerKernel, addr: bigint, unit: number): TimerSetting | null | 'invalid' {
  const b = k.mem.read(addr, 32);
  if (!b) return null;
  const intervalMs = readTime(b, 0, unit);
  const valueMs = readTime(b, 16, unit);
  return intervalMs === null || valueMs === null ? 'invalid' : { intervalMs, valueMs };
}

/**
 * getitimer (gVisor's sys_timer.go): the process's ITIMER_REAL, ITIMER_VIRTUAL or ITIMER_PROF,
 * kept by the sentry (see ProcessTimers).
 *
 * @example
 * ```ts
 * getitimer(kernel, task, [0n, addr]); // 0n, the time left and the period written at addr
 * ```
 */
export const getitimer: Handler = (k, _t, a) => {
  const which = Number(a[0]);
  if (which < 0 || which > 2 || a[0] > 2n) return err(ERRNO.EINVAL);
  const timer = k.timers.itimers[which];
  const cur = timer.get(k.timers.now(timer.base, performance.now(), true));
  return k.mem.write(a[1], encode(cur, 1e6)) ? 0n : err(ERRNO.EFAULT);
};

/** setitimer: arms (a zero value disarms; a NULL one too, as Linux still allows) and gives the old setting. */
export const setitimer: Handler = (k, _t, a) => {
  const which = Number(a[0]);
  if (which < 0 || which > 2 || a[0] > 2n) return err(ERRNO.EINVAL);
  const next = a[1] === 0n ? { valueMs: 0, intervalMs: 0 } : decode(k, a[1], 1e6);
  if (next === null) return err(ERRNO.EFAULT);
  if (next === 'invalid') return err(ERRNO.EINVAL);
  const timer = k.timers.itimers[which];
  const old = timer.set(k.timers.now(timer.base, performance.now(), true), next);
  return a[2] === 0n || k.mem.write(a[2], encode(old, 1e6)) ? 0n : err(ERRNO.EFAULT);
};

/** alarm: ITIMER_REAL in whole seconds; the old value's seconds, rounded as Linux's alarm_setitimer. */
export const alarm: Handler = (k, _t, a) => {
  const secs = Number(BigInt.asUintN(32, a[0]));
  const old = k.timers.itimers[0].set(performance.now(), { valueMs: secs * 1000, intervalMs: 0 });
  const whole = Math.floor(old.valueMs / 1000);
  const us = Math.round((old.valueMs % 1000) * 1000);
  return BigInt((whole === 0 && us > 0) || us >= 500_000 ? whole + 1 : whole);
};

/**
 * What a clock id's timers count, or an errno: the wall clocks; the process's CPU clocks (its
 * own, by CLOCK_PROCESS_CPUTIME_ID or clock_getcpuclockid; a thread's CPU clock is counted as
 * its process's, since threads have no host thread of their own). Another process's CPU clock is
 * EINVAL here (Linux allows it).
 */
function baseOf(k: TimerKernel, tgid: number, clock: number): TimerBase | number {
  if (clock === CLOCK_REALTIME || clock === CLOCK_MONOTONIC || clock === CLOCK_BOOTTIME || clock === CLOCK_TAI) return 'real';
  if (clock === 2 || clock === 3) return 'cpu';
  if (NO_TIMERS.has(clock)) return ERRNO.EOPNOTSUPP;
  if (clock >= 0) return ERRNO.EINVAL;
  // Linux's CPU clock ids: ~pid << 3 | thread flag (4) | type (0 PROF, 1 VIRT, 2 SCHED).
  const type = clock & 3;
  const pid = ~(clock >> 3);
  const own = pid === 0 || ((clock & 4) === 0 ? pid === tgid : k.task(pid) !== undefined);
  if (type === 3 || !own) return ERRNO.EINVAL;
  return type === 1 ? 'user' : 'cpu';
}

/** The clocks a TIMER_ABSTIME value is read on, now, in ms (wall clocks), against performance.now(). */
function clockNow(clock: number): number {
  if (clock === CLOCK_REALTIME || clock === CLOCK_TAI) return performance.timeOrigin + performance.now();
  return Number(process.hrtime.bigint()) / 1e6;
}

/**
 * timer_create: a POSIX timer kept by the sentry, signalling as sigevent says (SIGEV_SIGNAL to
 * the process, SIGEV_THREAD_ID to one of its threads, SIGEV_NONE: none; no sigevent: SIGALRM
 * with the timer's id as its value). Ids count up from 0, as Linux's.
 *
 * @example
 * ```ts
 * timerCreate(kernel, task, [BigInt(CLOCK_MONOTONIC), 0n, idAddr]); // 0n, the id at idAddr
 * ```
 */
export const timerCreate: Handler = (k, _t, a) => {
  const clock = Number(BigInt.asIntN(32, a[0]));
  let ev: { value: bigint; signo: number; notify: number; tid: number } | undefined;
  if (a[1] !== 0n) {
    const b = k.mem.read(a[1], 20);
    if (!b) return err(ERRNO.EFAULT);
    const dv = new DataView(b.buffer, b.byteOffset, 20);
    ev = { value: dv.getBigUint64(0, true), signo: dv.getInt32(8, true), notify: dv.getInt32(12, true), tid: dv.getInt32(16, true) };
  }
  const base = baseOf(k, k.tgid, clock);
  if (typeof base === 'number') return err(base);
  // Linux 6.x takes the id before it checks the sigevent or writes the id out: a call failing
  // there still uses one up (the ids a program sees after it match the native run's).
  const timer: PosixTimer = { timer: new IntervalTimer(base), clock, notify: SIGEV.SIGNAL, signo: SIG.SIGALRM, value: 0n };
  const id = k.timers.add(timer);
  if (id < 0) return err(ERRNO.EAGAIN);
  const failed = (errno: number) => {
    k.timers.posix.delete(id);
    return err(errno);
  };
  if (ev) {
    // Linux's good_sigevent: a signal to send must be a real one; a thread must be the caller's process's.
    const thread = ev.notify === (SIGEV.SIGNAL | SIGEV.THREAD_ID);
    const known = ev.notify === SIGEV.SIGNAL || ev.notify === SIGEV.THREAD || ev.notify === SIGEV.NONE || thread;
    if (!known || (thread && !k.task(ev.tid))) return failed(ERRNO.EINVAL);
    if (ev.notify !== SIGEV.NONE && (ev.signo <= 0 || ev.signo > NSIG)) return failed(ERRNO.EINVAL);
    Object.assign(timer, { notify: ev.notify, signo: ev.signo, value: ev.value }, thread ? { tid: ev.tid } : {});
  } else timer.value = BigInt(id);
  const out = new Uint8Array(4);
  new DataView(out.buffer).setInt32(0, id, true);
  return k.mem.write(a[2], out) ? 0n : failed(ERRNO.EFAULT);
};

/** The POSIX timer a call names, by its int id. */
function named(k: TimerKernel, id: bigint) {
  return k.timers.posix.get(Number(BigInt.asIntN(32, id)));
}

/** timer_settime: arms (a zero value disarms), relative or TIMER_ABSTIME on its clock; the old setting. */
export const timerSettime: Handler = (k, _t, a) => {
  const p = named(k, a[0]);
  if (!p || a[2] === 0n) return err(ERRNO.EINVAL);
  const next = decode(k, a[2], 1e9);
  if (next === null) return err(ERRNO.EFAULT);
  if (next === 'invalid') return err(ERRNO.EINVAL);
  const wall = performance.now();
  const now = k.timers.now(p.timer.base, wall, true);
  const abs = (a[1] & TIMER_ABSTIME) !== 0n && next.valueMs !== 0;
  // A time already past fires at the next turn, its missed periods counted as overruns.
  if (abs && p.timer.base === 'real') next.valueMs = next.valueMs - clockNow(p.clock) + wall;
  const old = p.timer.set(now, next, abs);
  // A new setting starts its overrun count afresh.
  p.info = undefined;
  p.lastOverrun = 0;
  return a[3] === 0n || k.mem.write(a[3], encode(old, 1e9)) ? 0n : err(ERRNO.EFAULT);
};

/** timer_gettime: the time to its next expiry and its period. */
export const timerGettime: Handler = (k, _t, a) => {
  const p = named(k, a[0]);
  if (!p) return err(ERRNO.EINVAL);
  const cur = p.timer.get(k.timers.now(p.timer.base, performance.now(), true));
  return k.mem.write(a[1], encode(cur, 1e9)) ? 0n : err(ERRNO.EFAULT);
};

/** timer_getoverrun: the expiries its last delivered signal stood for beyond the first. */
export const timerGetoverrun: Handler = (k, _t, a) => {
  const p = named(k, a[0]);
  return p ? BigInt(k.timers.overrun(p)) : err(ERRNO.EINVAL);
};

/** timer_delete: the timer is gone (a signal of it already queued stays). */
export const timerDelete: Handler = (k, _t, a) => {
  const id = Number(BigInt.asIntN(32, a[0]));
  return k.timers.posix.delete(id) ? 0n : err(ERRNO.EINVAL);
};
