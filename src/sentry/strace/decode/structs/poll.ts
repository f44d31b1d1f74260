/**
 * Printers for the event arrays: poll's `struct pollfd[]` (events in,
 * revents out) and epoll's `struct epoll_event`.
 *
 * Each printer takes the struct's address and prints `NULL` for a null
 * pointer, the address in hex when the memory cannot be read.
 *
 * @module
 */

import type { DecodeContext } from '../context.js';
import { ptr } from '../scalars.js';
import type { MemoryReader } from '../umove.js';
import { view, withStruct } from '../umove.js';
import { formatFlags } from '../xlat.js';
import { EPOLL_EVENTS, POLL_EVENTS } from '../xlat/events.js';

/**
 * A pollfd array, input side: `[{fd=0, events=POLLIN}, ...]`.
 *
 * @example
 * ```ts
 * formatPollfds(c, addr, 2n); // '[{fd=0, events=POLLIN}, {fd=4, events=POLLOUT}]'
 * ```
 */
export function formatPollfds(c: DecodeContext, addr: bigint, count: bigint): string {
  return pollfds(c, addr, count, false);
}

/**
 * The pollfds with events, output side: `[{fd=0, revents=POLLIN}]`, or undefined when unreadable.
 *
 * @example
 * ```ts
 * formatPollResult(c, addr, 2n); // '[{fd=0, revents=POLLIN}]'
 * ```
 */
export function formatPollResult(c: DecodeContext, addr: bigint, count: bigint): string | undefined {
  const s = pollfds(c, addr, count, true);
  return s.startsWith('[') ? s : undefined;
}

/** The most pollfds read (a bogus count must not make us read gigabytes). */
const MAX_POLLFDS = 4096n;
/** sizeof(struct pollfd): int fd, short events, short revents. */
const POLLFD_SIZE = 8;

/** The pollfd array, with `events` (input) or only the entries with `revents` (output), at most -s of them. */
function pollfds(c: DecodeContext, addr: bigint, count: bigint, revents: boolean): string {
  if (BigInt.asUintN(64, addr) === 0n) return 'NULL';
  const n = Number(BigInt.asUintN(32, count) > MAX_POLLFDS ? MAX_POLLFDS : BigInt.asUintN(32, count));
  const v = view(c.mem, addr, n * POLLFD_SIZE);
  if (!v) return ptr(addr);
  const items: string[] = [];
  for (let i = 0; i < n; i++) {
    const fd = v.getInt32(i * POLLFD_SIZE, true);
    const ev = BigInt(v.getUint16(i * POLLFD_SIZE + (revents ? 6 : 4), true));
    if (revents && (ev === 0n || fd < 0)) continue;
    if (items.length >= c.strlen) { items.push('...'); break; }
    items.push(fd < 0 ? `{fd=${fd}}` : `{fd=${fd}, ${revents ? 'revents' : 'events'}=${formatFlags(ev, POLL_EVENTS)}}`);
  }
  return `[${items.join(', ')}]`;
}

/** sizeof(struct epoll_event): packed on x86-64, a u32 of events then a u64 of data. */
const EPOLL_EVENT_SIZE = 12;

/** The `struct epoll_event` at offset `o`. */
function epollEventAt(v: DataView, o: number): string {
  const data = v.getBigUint64(o + 4, true);
  return `{events=${formatFlags(BigInt(v.getUint32(o, true)), EPOLL_EVENTS)}, data={u32=${data & 0xffffffffn}, u64=${data}}}`;
}

/**
 * One epoll_event (epoll_ctl).
 *
 * @example
 * ```ts
 * formatEpollEvent(mem, addr); // '{events=EPOLLIN|EPOLLET, data={u32=5, u64=5}}'
 * ```
 */
export function formatEpollEvent(mem: MemoryReader, addr: bigint): string {
  return withStruct(mem, addr, EPOLL_EVENT_SIZE, (v) => epollEventAt(v, 0));
}

/**
 * `count` epoll_events (epoll_wait results).
 *
 * @example
 * ```ts
 * formatEpollEvents(c, addr, 1); // '[{events=EPOLLIN, data={u32=5, u64=5}}]'
 * ```
 */
export function formatEpollEvents(c: DecodeContext, addr: bigint, count: number): string {
  const shown = Math.min(count, c.strlen);
  return withStruct(c.mem, addr, shown * EPOLL_EVENT_SIZE, (v) => {
    const items: string[] = [];
    for (let i = 0; i < shown; i++) items.push(epollEventAt(v, i * EPOLL_EVENT_SIZE));
    if (count > shown) items.push('...');
    return `[${items.join(', ')}]`;
  });
}
