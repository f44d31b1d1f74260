/**
 * What Node reads of other processes through /proc: a stub's parent, and the pid Node's pid
 * namespace gives a process a stub made in its own (a sandbox's). Used by the tracer workers
 * and by the main thread (stub-made forks and threads, see stub.S).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { Errors } from '../errors.js';

/**
 * The parent of a process, as Node sees it.
 *
 * @example
 * ```ts
 * const parent = ppidOf(stub.pid); // Node's pid, or the sandbox init's
 * ```
 */
export function ppidOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/**
 * The pid, in this (Node's) pid namespace, of the child of `parent` whose pid in its own
 * namespace is `nsPid`: found among the parent's children (/proc/PID/task/TID/children) by the
 * last NSpid of each. The same number outside any namespace. `anyThread`: look under every
 * thread of `parent` (a child is listed under the thread that made it only).
 *
 * Why more than one look: the kernel walks a children list one entry at a time, dropping its
 * lock between them, and when the entry it stood on is reaped meanwhile it goes on by position,
 * skipping the next child ("we might miss some children here", fs/proc/array.c). A fork child
 * is listed right after its elder siblings, which a sandbox's init reaps while Node looks: the
 * fork then failed with EAGAIN. So the list is read again, and last every process whose parent
 * is `parent` is looked at: exact, and slow only on that rare path.
 *
 * @example
 * ```ts
 * const tid = hostPidOfChild(stub.pid, nsTid); // a sysmsg thread the stub cloned
 * ```
 */
export function hostPidOfChild(parent: number, nsPid: number, anyThread = false): number {
  for (let look = 0; look < CHILDREN_LOOKS; look++) {
    const threads = anyThread ? tasksOf(parent) : [parent];
    const found = findChild(threads.flatMap((tid) => childrenOf(parent, tid)), nsPid);
    if (found !== undefined) return found;
  }
  const all = readdirSync('/proc').filter((name) => /^\d+$/.test(name)).map(Number);
  const found = findChild(all.filter((pid) => parentIs(pid, parent)), nsPid);
  if (found !== undefined) return found;
  throw Errors.Protocol(`no child of ${parent} is ${nsPid} in its namespace`, parent);
}

/** How many times hostPidOfChild reads the children lists before it scans /proc. */
const CHILDREN_LOOKS = 3;

/**
 * The one of `candidates` whose innermost pid (the last of NSpid) is `nsPid`. Always read, never
 * guessed from the number alone: a child in a namespace of its own can have, in Node's, the
 * number another has in its own.
 */
function findChild(candidates: number[], nsPid: number): number | undefined {
  // Newest last (the kernel adds a child at the list's tail): the one asked for is most often
  // the one just made.
  for (let i = candidates.length - 1; i >= 0; i--) {
    const pid = candidates[i];
    try {
      const m = /^NSpid:\s*([\d\s]+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m && Number(m[1].trim().split(/\s+/).at(-1)) === nsPid) return pid;
    } catch {
      // exited meanwhile
    }
  }
  return undefined;
}

/** Whether process `pid`'s parent is `parent` (false once it is gone). */
function parentIs(pid: number, parent: number): boolean {
  try {
    return ppidOf(pid) === parent;
  } catch {
    return false;
  }
}

/**
 * The threads of process `pid` (its /proc task folder), the leader included; empty when gone.
 *
 * @example
 * ```ts
 * tasksOf(stub.pid); // [1234, 1240, 1241]: the syscall thread and two sysmsg threads
 * ```
 */
export function tasksOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).map(Number);
  } catch {
    return [];
  }
}

/**
 * The children of process `pid`'s thread `tid` (its main thread by default), as Node numbers
 * them. Empty when the process is gone.
 *
 * @example
 * ```ts
 * const before = childrenOf(stub.pid); // a sysmsg thread is one of these once made
 * ```
 */
export function childrenOf(pid: number, tid = pid): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * The inode of the file process `pid` maps at `addr` (0 if none, or the process is gone): from
 * /proc/PID/maps, which the process cannot forge.
 *
 * @example
 * ```ts
 * mappedInode(child, controlBase(region)) === fstatSync(file.fd).ino;
 * ```
 */
export function mappedInode(pid: number, addr: bigint): number {
  let maps: string;
  try {
    maps = readFileSync(`/proc/${pid}/maps`, 'utf8');
  } catch {
    return 0;
  }
  const start = addr.toString(16);
  for (const line of maps.split('\n')) {
    if (!line.startsWith(start + '-')) continue;
    return Number(line.split(/\s+/)[4] ?? 0);
  }
  return 0;
}

/** What {@link forkChildOf} checks a fork answer against (the parent stub's facts). */
export interface ForkParentFacts {
  /** The stub's pid, as Node sees it. */
  readonly pid: number;
  /** Its parent (a fork child with CLONE_PARENT is that process's child too). */
  readonly stubParent: number;
  /** The stub is in a pid namespace of its own (the answer is a pid there). */
  readonly sandboxed: boolean;
  /** The inode of the file its control memory is in, and that memory's stub address. */
  readonly controlInode: number;
  readonly controlAddr: bigint;
  /** Whether `pid` is a stub the caller knows already (a forged answer could name one). */
  known(pid: number): boolean;
}

/**
 * The host pid of the fork child a parent stub's loop answered (`nsPid`, in its pid namespace),
 * checked through /proc: the answer is in memory the program can write, and the pid is one
 * Node will signal. The child must be a child of the stub's parent (CLONE_PARENT), no stub
 * known, and map the parent's control file at the control memory's address (it does until Node
 * acknowledges it: nothing else maps that file there but the parent's own threads, whose parent
 * is the stub). Inside a sandbox every process is the program's own; outside, a program could
 * still name another program's fork child in the same microseconds (README, Safety). Used by
 * the main thread's fork and the sentry's (src/sentry/kernel/localFork.ts).
 *
 * @example
 * ```ts
 * const pid = forkChildOf(nsPid, { pid, stubParent, sandboxed, controlInode, controlAddr, known });
 * ```
 */
export function forkChildOf(nsPid: number, p: ForkParentFacts): number {
  const pid = p.sandboxed ? hostPidOfChild(p.stubParent, nsPid) : nsPid;
  const ok = pid > 0 && !p.known(pid) && ppidOf(pid) === p.stubParent && mappedInode(pid, p.controlAddr) === p.controlInode;
  if (!ok) throw Errors.ForgedReply('clone', BigInt(nsPid), "the pid of the stub's fork", p.pid);
  return pid;
}
