/**
 * Clocks, timers and their flags (x86-64 values).
 *
 * @module
 */

import { xlat } from '../xlat.js';

/**
 * POSIX clocks.
 *
 * @example
 * ```ts
 * formatEnum(1n, CLOCKS, 'CLOCK_'); // 'CLOCK_MONOTONIC'
 * ```
 */
export const CLOCKS = xlat({
  CLOCK_REALTIME: 0, CLOCK_MONOTONIC: 1, CLOCK_PROCESS_CPUTIME_ID: 2, CLOCK_THREAD_CPUTIME_ID: 3,
  CLOCK_MONOTONIC_RAW: 4, CLOCK_REALTIME_COARSE: 5, CLOCK_MONOTONIC_COARSE: 6, CLOCK_BOOTTIME: 7,
  CLOCK_REALTIME_ALARM: 8, CLOCK_BOOTTIME_ALARM: 9, CLOCK_SGI_CYCLE: 10, CLOCK_TAI: 11,
});

/**
 * clock_nanosleep(2) flags.
 *
 * @example
 * ```ts
 * formatFlags(1n, TIMER_FLAGS); // 'TIMER_ABSTIME'
 * ```
 */
export const TIMER_FLAGS = xlat({ TIMER_ABSTIME: 1 });

/**
 * setitimer(2) / getitimer(2) timers.
 *
 * @example
 * ```ts
 * formatEnum(0n, ITIMERS, 'ITIMER_'); // 'ITIMER_REAL'
 * ```
 */
export const ITIMERS = xlat({ ITIMER_REAL: 0, ITIMER_VIRTUAL: 1, ITIMER_PROF: 2 });

/**
 * timerfd_create(2) / timerfd_settime(2) flags.
 *
 * @example
 * ```ts
 * formatFlags(0x80000n, TFD_FLAGS); // 'TFD_CLOEXEC'
 * ```
 */
export const TFD_FLAGS = xlat({ TFD_TIMER_ABSTIME: 1, TFD_TIMER_CANCEL_ON_SET: 2, TFD_CLOEXEC: 0x80000, TFD_NONBLOCK: 0x800 });
