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
 * @example
 * ```ts
 * const tid = hostPidOfChild(stub.pid, nsTid); // a sysmsg thread the stub cloned
 * ```
 */
export function hostPidOfChild(parent: number, nsPid: number, anyThread = false): number {
  const threads = anyThread ? readdirSync(`/proc/${parent}/task`) : [String(parent)];
  const children = threads.flatMap((tid) => {
    try {
      return readFileSync(`/proc/${parent}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return []; // the thread exited meanwhile
    }
  });
  // Newest last (the kernel adds a child at the list's tail): the one asked for is most often
  // the one just made.
  for (const pid of children.reverse()) {
    if (pid === nsPid) return pid; // no namespace between them
    try {
      const m = /^NSpid:\s*([\d\s]+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m && Number(m[1].trim().split(/\s+/).at(-1)) === nsPid) return pid;
    } catch {
      // exited meanwhile
    }
  }
  throw Errors.Protocol(`no child of ${parent} is ${nsPid} in its namespace`, parent);
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
