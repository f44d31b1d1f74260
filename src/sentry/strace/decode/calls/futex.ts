/**
 * The futex(2) decoder: which of the six arguments mean anything, and how
 * they print, depends on the command, so the arguments are looked up by the
 * command's name.
 *
 * @module
 */

import type { SyscallDecoder } from './args.js';
import type { DecodeContext } from '../context.js';
import { arg } from '../context.js';
import { hex32, ptr, uint } from '../scalars.js';
import { formatTimespec } from '../structs/time.js';
import { formatEnum, lookup } from '../xlat.js';
import { FUTEX_CLOCK_REALTIME, FUTEX_CMD, FUTEX_CMPS, FUTEX_OPS, FUTEX_PRIVATE_FLAG } from '../xlat/futex.js';

/** FUTEX_WAKE_OP's val3: `{FUTEX_OP_ADD, 1, FUTEX_OP_CMP_GT, 0}` (op, oparg, cmp, cmparg). */
function futexWakeOp(v: bigint): string {
  const u = BigInt.asUintN(32, v);
  const op = (u >> 28n) & 7n;
  const shift = u & (8n << 28n) ? 'FUTEX_OP_OPARG_SHIFT<<28|' : '';
  return `{${shift}${formatEnum(op, FUTEX_OPS)}, ${(u >> 12n) & 0xfffn}, ${formatEnum((u >> 24n) & 0xfn, FUTEX_CMPS)}, ${u & 0xfffn}}`;
}

/** The all-ones bitset of the *_BITSET commands, which strace names. */
const FUTEX_BITSET_MATCH_ANY = 0xffffffffn;

/** A *_BITSET command's val3. */
const bitset = (v: bigint): string => (BigInt.asUintN(32, v) === FUTEX_BITSET_MATCH_ANY ? 'FUTEX_BITSET_MATCH_ANY' : hex32(v));

/** The arguments futex(2) takes, each printed as the command reads it. */
interface FutexArgs {
  /** val: a count or the expected value. */
  val: string;
  /** The timeout (arg 3), read only when the command has one. */
  timeout(): string;
  /** arg 3 when it is val2, a count. */
  val2: string;
  uaddr2: string;
  /** val3 as a number. */
  val3: string;
  /** arg 5, raw: the bitset or the wake operation. */
  rawVal3: bigint;
}

/** What follows `uaddr, op` for each command. */
const COMMAND_ARGS: Readonly<Record<string, (a: FutexArgs) => string[]>> = {
  FUTEX_WAIT: (a) => [a.val, a.timeout()],
  FUTEX_WAKE: (a) => [a.val],
  FUTEX_FD: (a) => [a.val],
  FUTEX_REQUEUE: (a) => [a.val, a.val2, a.uaddr2],
  FUTEX_CMP_REQUEUE: (a) => [a.val, a.val2, a.uaddr2, a.val3],
  FUTEX_CMP_REQUEUE_PI: (a) => [a.val, a.val2, a.uaddr2, a.val3],
  FUTEX_WAKE_OP: (a) => [a.val, a.val2, a.uaddr2, futexWakeOp(a.rawVal3)],
  FUTEX_LOCK_PI: (a) => [a.timeout()],
  FUTEX_LOCK_PI2: (a) => [a.timeout()],
  FUTEX_UNLOCK_PI: () => [],
  FUTEX_TRYLOCK_PI: () => [],
  FUTEX_WAIT_BITSET: (a) => [a.val, a.timeout(), bitset(a.rawVal3)],
  FUTEX_WAKE_BITSET: (a) => [a.val, bitset(a.rawVal3)],
  FUTEX_WAIT_REQUEUE_PI: (a) => [a.val, a.timeout(), a.uaddr2],
};

/** The arguments of a call, ready for {@link COMMAND_ARGS}. */
function futexArgs(c: DecodeContext): FutexArgs {
  return {
    val: uint(arg(c, 2)),
    timeout: () => formatTimespec(c.mem, arg(c, 3)),
    val2: uint(arg(c, 3)),
    uaddr2: ptr(arg(c, 4)),
    val3: uint(arg(c, 5)),
    rawVal3: arg(c, 5),
  };
}

/**
 * futex(uaddr, op, val, timeout or val2, uaddr2, val3).
 *
 * @example
 * ```ts
 * futex.args(c); // ['0x7f3c2a1b0990', 'FUTEX_WAKE_PRIVATE', '1']
 * ```
 */
export const futex: SyscallDecoder = {
  args(c) {
    const op = BigInt.asUintN(32, arg(c, 1));
    const cmdName = lookup(op & ~(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME), FUTEX_CMD);
    const uaddr = ptr(arg(c, 0));
    const a = futexArgs(c);
    if (!cmdName) return [uaddr, `${hex32(op)} /* FUTEX_??? */`, a.val, ptr(arg(c, 3)), a.uaddr2, a.val3];
    const opName = cmdName + (op & FUTEX_PRIVATE_FLAG ? '_PRIVATE' : '') + (op & FUTEX_CLOCK_REALTIME ? '|FUTEX_CLOCK_REALTIME' : '');
    const rest = COMMAND_ARGS[cmdName];
    return [uaddr, opName, ...(rest ? rest(a) : [a.val, a.timeout(), a.uaddr2, a.val3])];
  },
};
