import type { Handler, SyscallKernel } from './context.js';

/** What the identity calls use of the kernel. */
type IdentityKernel = Pick<SyscallKernel, 'tgid' | 'parentPid'>;

/**
 * getpid, getppid, gettid (gVisor's sys_thread.go identity calls): the program's pid is its
 * stub's tgid, its parent is Node, each thread's tid is the sentry's.
 *
 * @example
 * ```ts
 * IDENTITY[SYS.getpid](kernel, task, []); // BigInt(kernel.tgid)
 * ```
 */
export const getpid = (k: IdentityKernel): bigint => BigInt(k.tgid);
export const getppid = (k: IdentityKernel): bigint => BigInt(k.parentPid);
export const gettid: Handler = (_k, t) => BigInt(t.tid);
