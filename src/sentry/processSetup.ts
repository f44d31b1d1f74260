import { readFileSync, realpathSync } from 'node:fs';
import { basename } from 'node:path';
import type { AddressSpace } from '../addressSpace.js';
import type { StubPort } from '../platformPort.js';
import { SYS } from '../abi/syscalls.js';
import { F_GETFL, F_SETFL, O_NONBLOCK, PR_SET_NAME, TASK_COMM_LEN } from '../abi/linux.js';
import { abi } from '../abi/stub.js';
import { Errors, checkStubReply } from '../errors.js';

/** fcntl's F_DUPFD: the lowest free fd at or above the argument. */
const F_DUPFD = 0n;
/** Most fds the fd channel carries in one message (AddressSpace.importFds). */
const IMPORT_BATCH = 16;

/**
 * The program's stdio and the other fds it inherits (Node's fds, shared as fork would share
 * them: `inherit`, each at its own number) and its working directory, set in a fresh stub
 * before its image is loaded. Fds from STUB_MEMFD up are the stub's: not inherited.
 *
 * @example
 * ```ts
 * await setupProcess(as, platform.port.stub(as), [0, 1, 2], process.cwd(), [63]); // cat <(…)
 * ```
 */
export async function setupProcess(as: AddressSpace, stub: StubPort, stdio: [number, number, number], cwd: string, inherit: readonly number[] = []): Promise<void> {
  const extra = [...new Set(inherit)].filter((fd) => Number.isInteger(fd) && fd > 2 && fd < abi.STUB_MEMFD);
  const from = [...stdio, ...extra];
  const target = [0, 1, 2, ...extra];
  const got: number[] = [];
  for (let i = 0; i < from.length; i += IMPORT_BATCH) got.push(...(await as.importFds(from.slice(i, i + IMPORT_BATCH))));
  await placeFds(as, got, target);
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
 * Moves each received fd `got[i]` to `target[i]`. The stub received them at the lowest free
 * numbers, which may be another's target: those move out of the way first (above the stub's
 * own fds), so that no dup2 closes a received fd still to be placed.
 */
async function placeFds(as: AddressSpace, got: number[], target: number[]): Promise<void> {
  const targets = new Set(target);
  for (let i = 0; i < got.length; i++) {
    if (got[i] === target[i] || !targets.has(got[i])) continue;
    const moved = Number(await as.syscall(SYS.fcntl, BigInt(got[i]), F_DUPFD, BigInt(abi.STUB_FDCHAN + 1)));
    checkStubReply(BigInt(moved), { syscall: 'fcntl', expect: 'nonneg', pid: as.pid });
    await as.syscall(SYS.close, BigInt(got[i]));
    got[i] = moved;
  }
  for (let i = 0; i < got.length; i++) {
    if (got[i] === target[i]) continue;
    checkStubReply(await as.syscall(SYS.dup2, BigInt(got[i]), BigInt(target[i])), { syscall: 'dup2', expect: BigInt(target[i]), pid: as.pid });
    await as.syscall(SYS.close, BigInt(got[i]));
  }
}

/**
 * Names the stub after the program (what /proc/PID/comm and ps show: the kernel takes the
 * executable's basename, cut to 15 bytes). Best effort: a name is cosmetic. Sysmsg threads
 * cloned from now on take this name too (an execve renames only the stub's main thread:
 * /proc/PID/comm of another process cannot be written).
 */
export async function nameStub(as: AddressSpace, stub: StubPort, path: string): Promise<void> {
  const c = nameCall(stub, path);
  await as.syscall(c.sysno, ...c.args).catch(() => undefined);
}

/**
 * {@link nameStub}'s call, to run in a batch: the name is written in the syscall thread's
 * scratch now, so nothing else may use it before the call runs.
 */
export function nameCall(stub: Pick<StubPort, 'scratch'> | { scratch(): { addr: bigint; bytes: Uint8Array } }, path: string): { sysno: number; args: bigint[] } {
  const sc = stub.scratch();
  const name = Buffer.from(basename(path)).subarray(0, TASK_COMM_LEN - 1);
  sc.bytes.fill(0, 0, TASK_COMM_LEN);
  sc.bytes.set(name);
  return { sysno: SYS.prctl, args: [PR_SET_NAME, sc.addr] };
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
