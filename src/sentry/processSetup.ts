import { readFileSync, realpathSync } from 'node:fs';
import { basename } from 'node:path';
import type { AddressSpace } from '../addressSpace.js';
import type { StubPort } from '../platformPort.js';
import { SYS } from '../abi/syscalls.js';
import { F_GETFL, F_SETFL, O_NONBLOCK, PR_SET_NAME, TASK_COMM_LEN } from '../abi/linux.js';
import { Errors, checkStubReply } from '../errors.js';

/**
 * The program's stdio (Node's fds, shared as fork would share them) and working directory, set
 * in a fresh stub before its image is loaded.
 *
 * @example
 * ```ts
 * await setupProcess(as, platform.port.stub(as), [0, 1, 2], process.cwd());
 * ```
 */
export async function setupProcess(as: AddressSpace, stub: StubPort, stdio: [number, number, number], cwd: string): Promise<void> {
  const got = await as.importFds(stdio);
  for (let i = 0; i < 3; i++) {
    if (got[i] === i) continue;
    checkStubReply(await as.syscall(SYS.dup2, BigInt(got[i]), BigInt(i)), { syscall: 'dup2', expect: BigInt(i), pid: as.pid });
  }
  for (const fd of got) if (fd > 2) await as.syscall(SYS.close, BigInt(fd));
  // Node (libuv) puts its pipes and ttys in non-blocking mode; the description is shared, and a
  // program expects blocking stdio, as a shell gives it (`yes | head` must end in SIGPIPE, not
  // EAGAIN). Node's own writes to these fds then block, which the CLI does not mind.
  for (let fd = 0n; fd < 3n; fd++) {
    const fl = await as.syscall(SYS.fcntl, fd, F_GETFL);
    if (fl >= 0n && (fl & O_NONBLOCK) !== 0n) await as.syscall(SYS.fcntl, fd, F_SETFL, fl & ~O_NONBLOCK);
  }
  const sc = stub.scratch();
  const bytes = Buffer.from(cwd + '\0');
  if (bytes.length > sc.bytes.length) throw Errors.InvalidArg('cwd is too long');
  sc.bytes.set(bytes);
  checkStubReply(await as.syscall(SYS.chdir, sc.addr), { syscall: 'chdir', expect: 0n, pid: as.pid });
}

/**
 * Names the stub after the program (what /proc/PID/comm and ps show: the kernel takes the
 * executable's basename, cut to 15 bytes). Best effort: a name is cosmetic. Sysmsg threads
 * cloned from now on take this name too (an execve renames only the stub's main thread:
 * /proc/PID/comm of another process cannot be written).
 */
export async function nameStub(as: AddressSpace, stub: StubPort, path: string): Promise<void> {
  const sc = stub.scratch();
  const name = Buffer.from(basename(path)).subarray(0, TASK_COMM_LEN - 1);
  sc.bytes.fill(0, 0, TASK_COMM_LEN);
  sc.bytes.set(name);
  await as.syscall(SYS.prctl, PR_SET_NAME, sc.addr).catch(() => undefined);
}

/** A path as /proc/PID/exe shows it (symlinks resolved), or as given if that fails. */
export function canonical(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/**
 * The pid a process has in its own pid namespace (the last NSpid of /proc/PID/status): what a
 * sandboxed program sees as its pid.
 *
 * @example
 * ```ts
 * namespacePid(as.pid); // 2 for a sandbox's first stub
 * ```
 */
export function namespacePid(pid: number): number {
  const m = /^NSpid:\s*([\d\s]+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  const ids = m ? m[1].trim().split(/\s+/).map(Number) : [];
  if (ids.length === 0 || !Number.isInteger(ids.at(-1))) throw Errors.Protocol(`no namespace pid for ${pid}`, pid);
  return ids.at(-1)!;
}
