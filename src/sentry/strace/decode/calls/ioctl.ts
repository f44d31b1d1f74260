/**
 * The ioctl(2) decoder: the request's name, and its argument for the
 * requests strace decodes (terminal attributes, window size, int pointers).
 *
 * @module
 */

import type { ArgFormatter, SyscallDecoder } from './args.js';
import { arg } from '../context.js';
import { hex, int, ptr } from '../scalars.js';
import { formatIntPtr } from '../structs/arrays.js';
import { formatTermios, formatWinsize } from '../structs/terminal.js';
import { lookup } from '../xlat.js';
import { IOCTLS, formatIoctlRequest } from '../xlat/ioctl.js';

const termiosIn: ArgFormatter = (v, c) => formatTermios(c.mem, v);
const termiosOut: ArgFormatter = (v, c) => (c.ok ? formatTermios(c.mem, v) : ptr(v));
const winsizeIn: ArgFormatter = (v, c) => formatWinsize(c.mem, v);
const winsizeOut: ArgFormatter = (v, c) => (c.ok ? formatWinsize(c.mem, v) : ptr(v));
const intIn: ArgFormatter = (v, c) => formatIntPtr(c.mem, v);
const intOut: ArgFormatter = (v, c) => (c.ok ? formatIntPtr(c.mem, v) : ptr(v));

/**
 * The argument of each request strace decodes; null for the requests that
 * take none. Any other request's argument prints in hex.
 */
const IOCTL_ARG: Readonly<Record<string, ArgFormatter | null>> = {
  FIONCLEX: null, FIOCLEX: null, TIOCEXCL: null, TIOCNXCL: null, TIOCNOTTY: null, TIOCVHANGUP: null,
  TCGETS: termiosOut,
  TCSETS: termiosIn, TCSETSW: termiosIn, TCSETSF: termiosIn,
  TIOCGWINSZ: winsizeOut,
  TIOCSWINSZ: winsizeIn,
  FIONREAD: intOut, TIOCGPGRP: intOut, TIOCGSID: intOut, TIOCOUTQ: intOut, TIOCGPTN: intOut,
  TIOCSPGRP: intIn, FIONBIO: intIn, FIOASYNC: intIn, TIOCSPTLCK: intIn,
};

/**
 * ioctl(fd, request, arg).
 *
 * @example
 * ```ts
 * ioctl.args(c); // ['1', 'TIOCGWINSZ', '{ws_row=24, ws_col=80, ws_xpixel=0, ws_ypixel=0}']
 * ```
 */
export const ioctl: SyscallDecoder = {
  args(c) {
    const req = BigInt.asUintN(32, arg(c, 1));
    const head = [int(arg(c, 0)), formatIoctlRequest(req)];
    const name = lookup(req, IOCTLS);
    const third = name === undefined ? undefined : IOCTL_ARG[name];
    if (third === null) return head;
    return [...head, third ? third(arg(c, 2), c) : hex(arg(c, 2))];
  },
};
