/**
 * Decoders for socket syscalls.
 *
 * @module
 */

import type { ArgFormatter, DecoderTable, SyscallDecoder } from './args.js';
import { FD, I, P, U, UL, enumOf, flags, inBuf, out, outBuf, sig } from './args.js';
import type { DecodeContext } from '../context.js';
import { arg, retval } from '../context.js';
import { int, ptr } from '../scalars.js';
import { formatIntPair, formatIntPtr } from '../structs/arrays.js';
import { formatMsghdr, formatSockaddr } from '../structs/socket.js';
import { readU32 } from '../umove.js';
import type { Xlat } from '../xlat.js';
import { formatEnum, lookup } from '../xlat.js';
import {
  AF, IPPROTO, MSG_FLAGS, NETLINK_PROTO, SHUT, SO, SOCK_FLAGS, SOL, TCP_OPTS, formatSockType,
} from '../xlat/net.js';

const family = enumOf(AF, 'AF_');
const sockType: ArgFormatter = (v) => formatSockType(v);

/** The protocol tables of the families whose protocols strace names. */
const PROTOCOLS: Readonly<Record<string, Xlat>> = { AF_INET: IPPROTO, AF_INET6: IPPROTO, AF_NETLINK: NETLINK_PROTO };

/** socket(2)'s protocol, named after the family in argument 0. */
const protocol: ArgFormatter = (v, c) => {
  const family = lookup(BigInt.asUintN(32, arg(c, 0)), AF);
  const table = family === undefined ? undefined : PROTOCOLS[family];
  return table ? formatEnum(BigInt.asUintN(32, v), table) : int(v);
};

/** A socket address of `len` bytes (an input argument). */
const sockaddrIn = (lenArg: number): ArgFormatter => (v, c) => formatSockaddr(c.mem, v, Number(BigInt.asUintN(32, arg(c, lenArg))), c.strlen);

/** A socket address the call filled in, its length in the int `*arg(lenPtrArg)`. */
const sockaddrOut = (lenPtrArg: number): ArgFormatter => (v, c) => {
  if (!c.ok || v === 0n) return ptr(v);
  const len = readU32(c.mem, arg(c, lenPtrArg));
  return len === null ? ptr(v) : formatSockaddr(c.mem, v, len, c.strlen);
};

/** An in/out socklen_t: `[16]`. */
const lenPtr: ArgFormatter = (v, c) => (v === 0n ? 'NULL' : formatIntPtr(c.mem, v));

/** The option tables of the levels whose options strace names. */
const OPTIONS: Readonly<Record<string, Xlat>> = { SOL_SOCKET: SO, SOL_TCP: TCP_OPTS };

/** A socket option's name, after the level in argument 1. */
const optName: ArgFormatter = (v, c) => {
  const level = lookup(BigInt.asUintN(32, arg(c, 1)), SOL);
  const table = level === undefined ? undefined : OPTIONS[level];
  const n = BigInt.asUintN(32, v);
  return table ? formatEnum(n, table) : n.toString();
};

/** An option value: `[1]` when it is an int, else its address. */
function optVal(c: DecodeContext, v: bigint, len: number | null): string {
  if (v === 0n) return 'NULL';
  return len === 4 ? formatIntPtr(c.mem, v) : ptr(v);
}

/** setsockopt: an int option shows its value. */
const setsockopt = sig(FD, enumOf(SOL, 'SOL_'), optName, (v, c) => optVal(c, v, Number(BigInt.asUintN(32, arg(c, 4)))), U);
/** getsockopt: the value and the in/out length, once the call succeeded. */
const getsockopt = sig(
  FD, enumOf(SOL, 'SOL_'), optName,
  (v, c) => (c.ok ? optVal(c, v, readU32(c.mem, arg(c, 4))) : ptr(v)),
  (v, c) => (c.ok ? lenPtr(v, c) : ptr(v)),
);

/** accept, getsockname, getpeername: the address the call stored and its length. */
const accept: SyscallDecoder = sig(FD, sockaddrOut(2), (v, c) => (c.ok ? lenPtr(v, c) : ptr(v)));

/**
 * Decoders for socket syscalls, by name.
 *
 * @example
 * ```ts
 * NET_DECODERS.socket!.args(c); // ['AF_INET', 'SOCK_STREAM|SOCK_CLOEXEC', 'IPPROTO_IP']
 * ```
 */
export const NET_DECODERS: DecoderTable = {
  socket: sig(family, sockType, protocol),
  socketpair: sig(family, sockType, protocol, out((v, c) => formatIntPair(c.mem, v))),
  connect: sig(FD, sockaddrIn(2), U),
  bind: sig(FD, sockaddrIn(2), U),
  listen: sig(FD, I),
  accept,
  accept4: sig(FD, sockaddrOut(2), (v, c) => (c.ok ? lenPtr(v, c) : ptr(v)), flags(SOCK_FLAGS)),
  getsockname: accept,
  getpeername: accept,
  shutdown: sig(FD, enumOf(SHUT, 'SHUT_')),
  sendto: sig(FD, inBuf(2), UL, flags(MSG_FLAGS), sockaddrIn(5), U),
  recvfrom: sig(FD, outBuf(), UL, flags(MSG_FLAGS), sockaddrOut(5), (v, c) => (c.ok ? lenPtr(v, c) : ptr(v))),
  sendmsg: sig(FD, (v, c) => formatMsghdr(c, v), flags(MSG_FLAGS)),
  recvmsg: sig(FD, (v, c) => (c.ok ? formatMsghdr(c, v, retval(c)) : ptr(v)), flags(MSG_FLAGS)),
  sendmmsg: sig(FD, P, U, flags(MSG_FLAGS)),
  recvmmsg: sig(FD, P, U, flags(MSG_FLAGS), P),
  setsockopt,
  getsockopt,
};
