import { readlinkSync } from 'node:fs';

/** AT_FDCWD: `-y` shows the working directory for it. */
const AT_FDCWD = -100;

/**
 * `-y`: what fd `fd` of a stub process names, as the kernel says in /proc (`/etc/passwd`,
 * `pipe:[1234]`, `socket:[5678]`), or its working directory for AT_FDCWD; undefined for an fd
 * that is not open (or a process that is gone). The stub's fd table and working directory are
 * the program's own (its threads share them), so the stub's /proc entries are the program's.
 *
 * @example
 * ```ts
 * fdPath(stubHostPid, 3); // '/etc/passwd'
 * ```
 */
export function fdPath(hostPid: number, fd: number): string | undefined {
  if (fd < 0 && fd !== AT_FDCWD) return undefined;
  try {
    return readlinkSync(fd === AT_FDCWD ? `/proc/${hostPid}/cwd` : `/proc/${hostPid}/fd/${fd}`);
  } catch {
    return undefined;
  }
}
