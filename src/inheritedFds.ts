import { readdirSync, readlinkSync } from 'node:fs';

/** Global key of the fds bin/systrap.js saw open (name → link) before it started the sentry's worker. */
const FDS_AT_START = Symbol.for('systrap.fdsAtStart');

/** Fds from here up are the stub's own (STUB_MEMFD, STUB_FDCHAN): never a program's. */
const FIRST_STUB_FD = 1000;

/**
 * The fds Node inherited from its parent besides stdio (a shell's `3<file`, the pipe of
 * `<(…)` that a program opens as /dev/fd/63), which `systrap run` passes on to the program at
 * the same numbers, as strace's child gets them. Node's own fds are told apart by kind (close-
 * on-exec cannot tell: Node sets it on some inherited ones too): anon_inode ones (eventfd,
 * epoll) and pipes and sockets whose ends it holds both (its signal and wake-up pipes). So a
 * pipe inherited with both ends (make 4.3's jobserver) is not passed on. Precondition: called
 * before Node opens fds of its own beyond its start-up ones (workers, files, the trace file),
 * or after the launcher noted the fds open before it started a worker (FDS_AT_START).
 *
 * @example
 * ```ts
 * const inherit = inheritedFds(); // [63] for `systrap run -- cat <(echo hi)`
 * ```
 */
export function inheritedFds(): number[] {
  const links = new Map<number, string>();
  let names: string[];
  try {
    names = readdirSync('/proc/self/fd');
  } catch {
    return []; // no /proc: nothing is passed on
  }
  const atStart = (globalThis as Record<symbol, Record<string, string> | undefined>)[FDS_AT_START];
  for (const name of names) {
    const fd = Number(name);
    if (!Number.isInteger(fd) || fd < 3 || fd >= FIRST_STUB_FD) continue;
    try {
      const link = readlinkSync(`/proc/self/fd/${name}`);
      if (!atStart || atStart[name] === link) links.set(fd, link);
    } catch {
      // the directory's own fd, closed by now
    }
  }
  const seen = new Map<string, number>();
  for (const l of links.values()) seen.set(l, (seen.get(l) ?? 0) + 1);
  const own = (l: string) => l.startsWith('anon_inode:') || (/^(pipe|socket):/.test(l) && seen.get(l)! > 1) || l === `/proc/${process.pid}/fd`;
  return [...links].filter(([, l]) => !own(l)).map(([fd]) => fd).sort((a, b) => a - b);
}
