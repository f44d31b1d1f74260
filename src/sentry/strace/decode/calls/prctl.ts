/**
 * The prctl(2) decoder: how many arguments follow the option, and what
 * they are, depends on the option, so they are looked up by its name.
 *
 * @module
 */

import type { SyscallDecoder } from './args.js';
import type { DecodeContext } from '../context.js';
import { arg } from '../context.js';
import { hex, int, ptr, ulong } from '../scalars.js';
import { signalName } from '../signals.js';
import { formatCString } from '../strings.js';
import { formatIntPtr } from '../structs/arrays.js';
import { formatEnum, lookup } from '../xlat.js';
import { CAPS, PR, SECCOMP_MODE, SUID_DUMP } from '../xlat/prctl.js';

/** `-1` as PR_SET_PTRACER's argument: any process may trace this one. */
const PR_SET_PTRACER_ANY = 0xffffffffffffffffn;

/** Argument `i` of a prctl call. */
type Args = (i: number) => bigint;

/** The four arguments after the option, as unsigned decimals. */
const fourUlongs = (_c: DecodeContext, a: Args): string[] => [ulong(a(1)), ulong(a(2)), ulong(a(3)), ulong(a(4))];
/** An int the call stores at arg 1, once it succeeded. */
const intOut = (c: DecodeContext, a: Args): string[] => [c.ok ? formatIntPtr(c.mem, a(1)) : ptr(a(1))];

/** What follows the option for each option strace decodes; any other prints four hex words. */
const OPTION_ARGS: Readonly<Record<string, (c: DecodeContext, a: Args) => string[]>> = {
  PR_GET_DUMPABLE: () => [],
  PR_GET_KEEPCAPS: () => [],
  PR_GET_SECCOMP: () => [],
  PR_GET_TIMERSLACK: () => [],
  PR_SET_PDEATHSIG: (_c, a) => [signalName(a(1))],
  PR_GET_PDEATHSIG: (c, a) => [c.ok ? formatIntPtr(c.mem, a(1), signalName) : ptr(a(1))],
  PR_SET_DUMPABLE: (_c, a) => [formatEnum(BigInt.asUintN(64, a(1)), SUID_DUMP)],
  PR_SET_KEEPCAPS: (_c, a) => [ulong(a(1))],
  PR_SET_TIMERSLACK: (_c, a) => [ulong(a(1))],
  PR_SET_CHILD_SUBREAPER: (_c, a) => [ulong(a(1))],
  PR_SET_NAME: (c, a) => [formatCString(c.mem, a(1), c.strlen)],
  PR_GET_NAME: (c, a) => [c.ok ? formatCString(c.mem, a(1), c.strlen) : ptr(a(1))],
  PR_SET_SECCOMP: (_c, a) => {
    const mode = formatEnum(BigInt.asUintN(64, a(1)), SECCOMP_MODE);
    return lookup(a(1), SECCOMP_MODE) === 'SECCOMP_MODE_FILTER' ? [mode, ptr(a(2))] : [mode];
  },
  PR_CAPBSET_READ: (_c, a) => [formatEnum(BigInt.asUintN(64, a(1)), CAPS)],
  PR_CAPBSET_DROP: (_c, a) => [formatEnum(BigInt.asUintN(64, a(1)), CAPS)],
  PR_GET_CHILD_SUBREAPER: intOut,
  PR_SET_NO_NEW_PRIVS: fourUlongs,
  PR_GET_NO_NEW_PRIVS: fourUlongs,
  PR_SET_THP_DISABLE: fourUlongs,
  PR_GET_THP_DISABLE: fourUlongs,
  PR_SET_PTRACER: (_c, a) => [BigInt.asUintN(64, a(1)) === PR_SET_PTRACER_ANY ? 'PR_SET_PTRACER_ANY' : int(a(1))],
  PR_SET_VMA: (c, a) => [a(1) === 0n ? 'PR_SET_VMA_ANON_NAME' : hex(a(1)), hex(a(2)), ulong(a(3)), formatCString(c.mem, a(4), c.strlen)],
};

/** The option's name, or undefined. */
function optionName(c: DecodeContext): string | undefined {
  return lookup(BigInt.asUintN(32, arg(c, 0)), PR);
}

/**
 * prctl(option, ...).
 *
 * @example
 * ```ts
 * prctl.args(c); // ['PR_SET_NAME', '"worker"']
 * ```
 */
export const prctl: SyscallDecoder = {
  args(c) {
    const name = formatEnum(BigInt.asUintN(32, arg(c, 0)), PR, 'PR_');
    const a: Args = (i) => arg(c, i);
    const option = optionName(c);
    const rest = option === undefined ? undefined : OPTION_ARGS[option];
    return [name, ...(rest ? rest(c, a) : [hex(a(1)), hex(a(2)), hex(a(3)), hex(a(4))])];
  },
  /** PR_GET_DUMPABLE answers with a SUID_DUMP_* value, which strace names: `1 (SUID_DUMP_USER)`. */
  ret(c, r) {
    if (optionName(c) === 'PR_GET_DUMPABLE') {
      const n = lookup(r, SUID_DUMP);
      return n ? `${r} (${n})` : r.toString();
    }
    return r.toString();
  },
};
