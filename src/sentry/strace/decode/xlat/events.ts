/**
 * Event bits and flags of the descriptor event calls: poll, epoll, eventfd,
 * signalfd, inotify (x86-64 values, in strace's print order).
 *
 * @module
 */

import { xlat } from '../xlat.js';

/**
 * poll(2) events.
 *
 * @example
 * ```ts
 * formatFlags(5n, POLL_EVENTS); // 'POLLIN|POLLOUT'
 * ```
 */
export const POLL_EVENTS = xlat({
  POLLIN: 0x1, POLLPRI: 0x2, POLLOUT: 0x4, POLLERR: 0x8, POLLHUP: 0x10, POLLNVAL: 0x20, POLLRDNORM: 0x40,
  POLLRDBAND: 0x80, POLLWRNORM: 0x100, POLLWRBAND: 0x200, POLLMSG: 0x400, POLLREMOVE: 0x1000,
  POLLRDHUP: 0x2000,
});

/**
 * epoll_ctl(2) operations.
 *
 * @example
 * ```ts
 * formatEnum(1n, EPOLL_CTL, 'EPOLL_CTL_'); // 'EPOLL_CTL_ADD'
 * ```
 */
export const EPOLL_CTL = xlat({ EPOLL_CTL_ADD: 1, EPOLL_CTL_DEL: 2, EPOLL_CTL_MOD: 3 });

/**
 * epoll event bits.
 *
 * @example
 * ```ts
 * formatFlags(0x80000001n, EPOLL_EVENTS); // 'EPOLLIN|EPOLLET'
 * ```
 */
export const EPOLL_EVENTS = xlat({
  EPOLLIN: 0x1, EPOLLPRI: 0x2, EPOLLOUT: 0x4, EPOLLERR: 0x8, EPOLLHUP: 0x10, EPOLLNVAL: 0x20,
  EPOLLRDNORM: 0x40, EPOLLRDBAND: 0x80, EPOLLWRNORM: 0x100, EPOLLWRBAND: 0x200, EPOLLMSG: 0x400,
  EPOLLRDHUP: 0x2000, EPOLLEXCLUSIVE: 0x10000000, EPOLLWAKEUP: 0x20000000, EPOLLONESHOT: 0x40000000,
  EPOLLET: 0x80000000,
});

/**
 * epoll_create1(2) flags.
 *
 * @example
 * ```ts
 * formatFlags(0x80000n, EPOLL_CREATE_FLAGS); // 'EPOLL_CLOEXEC'
 * ```
 */
export const EPOLL_CREATE_FLAGS = xlat({ EPOLL_CLOEXEC: 0x80000 });

/**
 * eventfd2(2) flags.
 *
 * @example
 * ```ts
 * formatFlags(0x80001n, EFD_FLAGS); // 'EFD_SEMAPHORE|EFD_CLOEXEC'
 * ```
 */
export const EFD_FLAGS = xlat({ EFD_SEMAPHORE: 1, EFD_CLOEXEC: 0x80000, EFD_NONBLOCK: 0x800 });

/**
 * signalfd4(2) flags.
 *
 * @example
 * ```ts
 * formatFlags(0x80800n, SFD_FLAGS); // 'SFD_CLOEXEC|SFD_NONBLOCK'
 * ```
 */
export const SFD_FLAGS = xlat({ SFD_CLOEXEC: 0x80000, SFD_NONBLOCK: 0x800 });

/**
 * inotify_init1(2) flags.
 *
 * @example
 * ```ts
 * formatFlags(0x80800n, IN_INIT_FLAGS); // 'IN_NONBLOCK|IN_CLOEXEC'
 * ```
 */
export const IN_INIT_FLAGS = xlat({ IN_NONBLOCK: 0x800, IN_CLOEXEC: 0x80000 });
