/**
 * futex(2) commands and the parts of a FUTEX_WAKE_OP operation.
 *
 * @module
 */

import { xlat } from '../xlat.js';

/**
 * The futex op bit for a process-private futex (strace appends `_PRIVATE` to the command).
 *
 * @example
 * ```ts
 * const cmd = op & ~(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
 * ```
 */
export const FUTEX_PRIVATE_FLAG = 128n;

/**
 * The futex op bit for a timeout measured on CLOCK_REALTIME.
 *
 * @example
 * ```ts
 * if (op & FUTEX_CLOCK_REALTIME) name += '|FUTEX_CLOCK_REALTIME';
 * ```
 */
export const FUTEX_CLOCK_REALTIME = 256n;

/**
 * futex(2) commands (without the PRIVATE / CLOCK_REALTIME bits).
 *
 * @example
 * ```ts
 * lookup(9n, FUTEX_CMD); // 'FUTEX_WAIT_BITSET'
 * ```
 */
export const FUTEX_CMD = xlat({
  FUTEX_WAIT: 0, FUTEX_WAKE: 1, FUTEX_FD: 2, FUTEX_REQUEUE: 3, FUTEX_CMP_REQUEUE: 4, FUTEX_WAKE_OP: 5,
  FUTEX_LOCK_PI: 6, FUTEX_UNLOCK_PI: 7, FUTEX_TRYLOCK_PI: 8, FUTEX_WAIT_BITSET: 9, FUTEX_WAKE_BITSET: 10,
  FUTEX_WAIT_REQUEUE_PI: 11, FUTEX_CMP_REQUEUE_PI: 12, FUTEX_LOCK_PI2: 13,
});

/**
 * FUTEX_WAKE_OP operations (bits 28..30 of val3).
 *
 * @example
 * ```ts
 * formatEnum(1n, FUTEX_OPS); // 'FUTEX_OP_ADD'
 * ```
 */
export const FUTEX_OPS = xlat({ FUTEX_OP_SET: 0, FUTEX_OP_ADD: 1, FUTEX_OP_OR: 2, FUTEX_OP_ANDN: 3, FUTEX_OP_XOR: 4 });

/**
 * FUTEX_WAKE_OP comparisons (bits 24..27 of val3).
 *
 * @example
 * ```ts
 * formatEnum(0n, FUTEX_CMPS); // 'FUTEX_OP_CMP_EQ'
 * ```
 */
export const FUTEX_CMPS = xlat({
  FUTEX_OP_CMP_EQ: 0, FUTEX_OP_CMP_NE: 1, FUTEX_OP_CMP_LT: 2, FUTEX_OP_CMP_LE: 3, FUTEX_OP_CMP_GT: 4, FUTEX_OP_CMP_GE: 5,
});
