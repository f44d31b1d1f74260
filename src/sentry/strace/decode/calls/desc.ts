/**
 * Decoders for the calls that make or watch descriptors: dup, pipe,
 * memfd_create, eventfd, signalfd, inotify, epoll, io_uring_setup.
 *
 * @module
 */

import type { ArgFormatter, DecoderTable } from './args.js';
import { FD, I, P, STR, U, UL, enumOf, flags, out, sig, sigset } from './args.js';
import { retval } from '../context.js';
import { ptr } from '../scalars.js';
import { formatIntPair } from '../structs/arrays.js';
import { formatEpollEvent, formatEpollEvents } from '../structs/poll.js';
import { EFD_FLAGS, EPOLL_CREATE_FLAGS, EPOLL_CTL, IN_INIT_FLAGS, SFD_FLAGS } from '../xlat/events.js';
import { MFD_FLAGS, OPEN_FLAGS } from '../xlat/file.js';

/** The two fds pipe(2) stored: `[3, 4]`. */
const fdPair = out((v, c) => formatIntPair(c.mem, v));
/** The events epoll_wait returned, as many as it said. */
const readyEvents: ArgFormatter = (v, c) => (c.ok ? formatEpollEvents(c, v, Number(retval(c))) : ptr(v));

/**
 * Decoders for the descriptor-making calls, by name.
 *
 * @example
 * ```ts
 * DESC_DECODERS.pipe2!.args(c); // ['[3, 4]', 'O_CLOEXEC']
 * ```
 */
export const DESC_DECODERS: DecoderTable = {
  dup: sig(FD),
  dup2: sig(FD, FD),
  dup3: sig(FD, FD, flags(OPEN_FLAGS)),
  pipe: sig(fdPair),
  pipe2: sig(fdPair, flags(OPEN_FLAGS)),
  memfd_create: sig(STR, flags(MFD_FLAGS)),
  eventfd: sig(U),
  eventfd2: sig(U, flags(EFD_FLAGS)),
  signalfd: sig(FD, sigset(2), UL),
  signalfd4: sig(FD, sigset(2), UL, flags(SFD_FLAGS, '0', 'SFD_')),
  inotify_init1: sig(flags(IN_INIT_FLAGS)),
  inotify_rm_watch: sig(FD, I),
  epoll_create: sig(I),
  epoll_create1: sig(flags(EPOLL_CREATE_FLAGS)),
  epoll_ctl: sig(FD, enumOf(EPOLL_CTL, 'EPOLL_CTL_'), FD, (v, c) => formatEpollEvent(c.mem, v)),
  epoll_wait: sig(FD, readyEvents, I, I),
  epoll_pwait: sig(FD, readyEvents, I, I, sigset(5), UL),
  io_uring_setup: sig(U, P),
};
