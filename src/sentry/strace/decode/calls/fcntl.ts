/**
 * The fcntl(2) decoder: what the third argument and the result are depends
 * on the command, so both are looked up by the command's name.
 *
 * @module
 */

import type { ArgFormatter, SyscallDecoder } from './args.js';
import { I } from './args.js';
import type { DecodeContext } from '../context.js';
import { arg } from '../context.js';
import { hex, hex32, int, ptr } from '../scalars.js';
import { formatFlock } from '../structs/io.js';
import { formatEnum, formatFlags, lookup } from '../xlat.js';
import { FCNTL_CMD, FD_FLAGS, LOCK_TYPE, SEALS, formatOpenFlags } from '../xlat/file.js';

/** A lock the call fills in (F_GETLK): with l_pid, once the call succeeded. */
const flockOut: ArgFormatter = (v, c) => (c.ok ? formatFlock(c.mem, v, true) : ptr(v));
/** A lock the call takes (F_SETLK...). */
const flockIn: ArgFormatter = (v, c) => formatFlock(c.mem, v, false);

/**
 * The third argument of each command; null for the commands that take none.
 * A command not listed prints it in hex.
 */
const FCNTL_ARG: Readonly<Record<string, ArgFormatter | null>> = {
  F_GETFD: null, F_GETFL: null, F_GETOWN: null, F_GETSIG: null, F_GETLEASE: null, F_GETPIPE_SZ: null, F_GET_SEALS: null,
  F_SETFD: (v) => formatFlags(BigInt.asUintN(32, v), FD_FLAGS),
  F_SETFL: (v) => formatOpenFlags(v),
  F_GETLK: flockOut,
  F_OFD_GETLK: flockOut,
  F_SETLK: flockIn,
  F_SETLKW: flockIn,
  F_OFD_SETLK: flockIn,
  F_OFD_SETLKW: flockIn,
  F_ADD_SEALS: (v) => formatFlags(BigInt.asUintN(32, v), SEALS),
  F_SETLEASE: (v) => formatEnum(BigInt.asUintN(32, v), LOCK_TYPE),
  F_DUPFD: I, F_DUPFD_CLOEXEC: I, F_SETOWN: I, F_SETSIG: I, F_NOTIFY: I, F_SETPIPE_SZ: I,
};

/** The results strace decodes (the others print in decimal): `0x8001 (flags O_WRONLY|O_LARGEFILE)`. */
const FCNTL_RET: Readonly<Record<string, (r: bigint) => string>> = {
  F_GETFL: (r) => `${hex32(r)} (flags ${formatOpenFlags(r)})`,
  F_GETFD: (r) => (r === 0n ? '0' : `${hex32(r)} (flags ${formatFlags(r, FD_FLAGS)})`),
  F_GET_SEALS: (r) => (r === 0n ? '0' : `${hex32(r)} (seals ${formatFlags(r, SEALS)})`),
  F_GETLEASE: (r) => formatEnum(r, LOCK_TYPE),
};

/** The command's name, or undefined for a command strace has no name for. */
function commandName(c: DecodeContext): string | undefined {
  return lookup(BigInt.asUintN(32, arg(c, 1)), FCNTL_CMD);
}

/**
 * fcntl(fd, cmd, arg).
 *
 * @example
 * ```ts
 * fcntl.args(c); // ['3', 'F_SETFD', 'FD_CLOEXEC']
 * ```
 */
export const fcntl: SyscallDecoder = {
  args(c) {
    const cmd = BigInt.asUintN(32, arg(c, 1));
    const head = [int(arg(c, 0)), formatEnum(cmd, FCNTL_CMD, 'F_')];
    const name = commandName(c);
    const third = name === undefined ? undefined : FCNTL_ARG[name];
    if (third === null) return head;
    return [...head, third ? third(arg(c, 2), c) : hex(arg(c, 2))];
  },
  ret(c, r) {
    const name = commandName(c);
    const ret = name === undefined ? undefined : FCNTL_RET[name];
    return ret ? ret(r) : r.toString();
  },
};
