/**
 * Decoders for the descriptor multiplexing calls: select, pselect6, poll
 * and ppoll. Their results say which descriptors are ready, and the time
 * left when the kernel wrote it back.
 *
 * @module
 */

import type { ArgFormatter, DecoderTable } from './args.js';
import { I, P, U, UL, sigRet, sigset } from './args.js';
import type { DecodeContext } from '../context.js';
import { arg } from '../context.js';
import { formatBitList } from '../structs/arrays.js';
import { formatPollResult, formatPollfds } from '../structs/poll.js';
import { formatTimespec, formatTimeval } from '../structs/time.js';

/** The most fds a select fd_set holds. */
const FD_SETSIZE = 1024;

/** A select fd_set of `nfds` (argument 0) bits: `[0 3]`. */
function fdSet(c: DecodeContext, addr: bigint): string {
  const nfds = Math.max(0, Math.min(Number(BigInt.asIntN(32, arg(c, 0))), FD_SETSIZE));
  if (BigInt.asUintN(64, addr) === 0n) return 'NULL';
  const s = formatBitList(c.mem, addr, Math.ceil(nfds / 64) * 8);
  if (!s.startsWith('[')) return s;
  const fds = s.slice(1, -1).split(' ').filter((x) => x !== '' && Number(x) < nfds);
  return `[${fds.join(' ')}]`;
}

/** The time left, as the kernel wrote it back into the timeout argument: `left {...}`. */
function left(c: DecodeContext, i: number, timeval: boolean): string | undefined {
  const a = arg(c, i);
  if (a === 0n) return undefined;
  const s = timeval ? formatTimeval(c.mem, a) : formatTimespec(c.mem, a);
  return s.startsWith('{') ? `left ${s}` : undefined;
}

/** select / pselect6's result: `N (in [3], out [4], left {...})`; its timeout is a timeval for select. */
function selectRet(timeval: boolean) {
  return (c: DecodeContext, r: bigint): string => {
    if (r === 0n) return '0 (Timeout)';
    const parts: string[] = [];
    for (const [i, label] of [[1, 'in'], [2, 'out'], [3, 'except']] as const) {
      if (arg(c, i) === 0n) continue;
      const s = fdSet(c, arg(c, i));
      if (s !== '[]' && s.startsWith('[')) parts.push(`${label} ${s}`);
    }
    const l = left(c, 4, timeval);
    if (l) parts.push(l);
    return parts.length ? `${r} (${parts.join(', ')})` : r.toString();
  };
}

/** poll / ppoll's result: `N ([{fd=0, revents=POLLIN}], left {...})`, `0 (Timeout)`; only ppoll has a time left. */
function pollRet(withLeft: boolean) {
  return (c: DecodeContext, r: bigint): string => {
    if (r === 0n) return '0 (Timeout)';
    const parts: string[] = [];
    const res = formatPollResult(c, arg(c, 0), arg(c, 1));
    if (res) parts.push(res);
    const l = withLeft ? left(c, 2, false) : undefined;
    if (l) parts.push(l);
    return parts.length ? `${r} (${parts.join(', ')})` : r.toString();
  };
}

const fdsetArg: ArgFormatter = (v, c) => fdSet(c, v);
const pollfds: ArgFormatter = (v, c) => formatPollfds(c, v, arg(c, 1));
const timespec: ArgFormatter = (v, c) => formatTimespec(c.mem, v);

/**
 * Decoders for the multiplexing calls, by name.
 *
 * @example
 * ```ts
 * POLL_DECODERS.poll!.ret!(c, 1n); // '1 ([{fd=3, revents=POLLIN}])'
 * ```
 */
export const POLL_DECODERS: DecoderTable = {
  select: sigRet(selectRet(true), I, fdsetArg, fdsetArg, fdsetArg, (v, c) => formatTimeval(c.mem, v)),
  pselect6: sigRet(selectRet(false), I, fdsetArg, fdsetArg, fdsetArg, timespec, P),
  poll: sigRet(pollRet(false), pollfds, U, I),
  ppoll: sigRet(pollRet(true), pollfds, U, timespec, sigset(4), UL),
};
