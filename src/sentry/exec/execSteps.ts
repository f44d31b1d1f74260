import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { O_CLOEXEC } from '../../abi/linux.js';
import { SYS } from '../../abi/syscalls.js';
import { abi } from '../../abi/stub.js';

/*
 * Steps of an execve that read the process's /proc entries: the same whichever thread of Node
 * runs the exec (the main thread's SentryLink, or the sentry itself, see kernel/localExec.ts).
 */

/**
 * A path the program names, as Node opens it: relative ones under the working directory of the
 * stub `hostPid`, through /proc (`absolute`: by the folder's name, for a check made with the
 * program's credentials, which may not pass through another process's /proc entries).
 *
 * @example
 * ```ts
 * programPath(1234, 'a.out'); // '/proc/1234/cwd/a.out'
 * ```
 */
export function programPath(hostPid: number, path: string, absolute = false): string {
  if (isAbsolute(path)) return path;
  const cwd = `/proc/${hostPid}/cwd`;
  if (absolute) {
    try {
      const dir = readlinkSync(cwd);
      if (isAbsolute(dir) && !dir.endsWith(' (deleted)')) return join(dir, path);
    } catch {
      // gone: the /proc path fails as the stub's would
    }
  }
  return join(cwd, path);
}

/**
 * The closes of the close-on-exec fds of the stub `hostPid` (the flags are in
 * /proc/PID/fdinfo, in octal), to run at execve's point of no return. The stub's own fds stay.
 * A stub that is gone (killed meanwhile: a sandbox's init reaps it at once) has none to close:
 * the calls that follow find it dead and say so (ESTUBDEAD), not this read.
 *
 * @example
 * ```ts
 * const calls = closeOnExecCalls(as.pid); // [{ sysno: SYS.close, args: [5n] }, …]
 * ```
 */
export function closeOnExecCalls(hostPid: number): Array<{ sysno: number; args: bigint[] }> {
  const dir = `/proc/${hostPid}/fdinfo`;
  const closes: Array<{ sysno: number; args: bigint[] }> = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return closes;
  }
  for (const name of names) {
    const fd = Number(name);
    if (fd === abi.STUB_MEMFD || fd === abi.STUB_FDCHAN) continue;
    try {
      const flags = /flags:\s*([0-7]+)/.exec(readFileSync(join(dir, name), 'utf8'));
      if (flags && (BigInt(parseInt(flags[1], 8)) & O_CLOEXEC) !== 0n) closes.push({ sysno: SYS.close, args: [BigInt(fd)] });
    } catch {
      // closed meanwhile
    }
  }
  return closes;
}
