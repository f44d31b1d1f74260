/**
 * Decoders for the clock, sleep and timer calls.
 *
 * @module
 */

import type { ArgFormatter, DecoderTable } from './args.js';
import { FD, I, P, U, enumOf, flags, out, sig } from './args.js';
import type { DecodeContext } from '../context.js';
import { retval } from '../context.js';
import { ptr } from '../scalars.js';
import { formatIntPtr, formatU64Ptr } from '../structs/arrays.js';
import { formatSigevent } from '../structs/signal.js';
import { formatItimerspec, formatItimerval, formatTimespec, formatTimeval } from '../structs/time.js';
import { formatEnum } from '../xlat.js';
import { CLOCKS, ITIMERS, TFD_FLAGS, TIMER_FLAGS } from '../xlat/time.js';

/** The results of a sleep cut short by a signal: EINTR, or ERESTART_RESTARTBLOCK when it will be restarted. */
const EINTR = -4n;
const ERESTART_RESTARTBLOCK = -516n;

/** True when the call was interrupted: sleeps then report the time left. */
function interrupted(c: DecodeContext): boolean {
  const r = retval(c);
  return r === EINTR || r === ERESTART_RESTARTBLOCK;
}

/** A sleep's remaining-time argument: written only when the sleep was interrupted. */
const remaining: ArgFormatter = (v, c) => (interrupted(c) && v !== 0n ? formatTimespec(c.mem, v) : ptr(v));

const clockid = enumOf(CLOCKS, 'CLOCK_', true);
const timespec: ArgFormatter = (v, c) => formatTimespec(c.mem, v);
const timeval: ArgFormatter = (v, c) => formatTimeval(c.mem, v);
const itimerval: ArgFormatter = (v, c) => formatItimerval(c.mem, v);
const itimerspec: ArgFormatter = (v, c) => formatItimerspec(c.mem, v);
/** timer_create's clock: an unknown one (a CPU clock id) as its 32 bits in hex, as strace's plain lookup. */
const timerClock: ArgFormatter = (v) => formatEnum(BigInt.asUintN(32, v), CLOCKS, 'CLOCK_');
/** time(2)'s result, also stored at its argument: `[1700000000]`. */
const timeOut = out((v, c) => (v === 0n ? 'NULL' : formatU64Ptr(c.mem, v, (n) => BigInt.asIntN(64, n).toString())));

/**
 * Decoders for the time calls, by name.
 *
 * @example
 * ```ts
 * TIME_DECODERS.clock_gettime!.args(c); // ['CLOCK_MONOTONIC', '{tv_sec=681, tv_nsec=663347015}']
 * ```
 */
export const TIME_DECODERS: DecoderTable = {
  nanosleep: sig(timespec, remaining),
  clock_nanosleep: sig(clockid, flags(TIMER_FLAGS), timespec, remaining),
  clock_gettime: sig(clockid, out(timespec)),
  clock_getres: sig(clockid, out(timespec)),
  clock_settime: sig(clockid, timespec),
  gettimeofday: sig(out(timeval), P),
  settimeofday: sig(timeval, P),
  time: sig(timeOut),
  alarm: sig(U),
  setitimer: sig(enumOf(ITIMERS, 'ITIMER_'), itimerval, out(itimerval)),
  getitimer: sig(enumOf(ITIMERS, 'ITIMER_'), out(itimerval)),
  timerfd_create: sig(enumOf(CLOCKS, 'CLOCK_'), flags(TFD_FLAGS)),
  timerfd_settime: sig(FD, flags(TFD_FLAGS), itimerspec, out(itimerspec)),
  timerfd_gettime: sig(FD, out(itimerspec)),
  timer_create: sig(timerClock, (v, c) => formatSigevent(c.mem, v), out((v, c) => formatIntPtr(c.mem, v))),
  timer_settime: sig(I, flags(TIMER_FLAGS), itimerspec, out(itimerspec)),
  timer_gettime: sig(I, out(itimerspec)),
  timer_getoverrun: sig(I),
  timer_delete: sig(I),
};
