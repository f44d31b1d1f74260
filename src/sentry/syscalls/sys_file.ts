import { ERRNO, PATH_MAX } from '../../abi/linux.js';
import { SYS } from '../../abi/syscalls.js';
import { abi } from '../../abi/stub.js';
import { err, type Handler, type Outcome, type Substitute, type SyscallKernel } from './context.js';

/** What the file calls use of the kernel. */
type FileKernel = Pick<SyscallKernel, 'mem' | 'tgid' | 'exe' | 'task'>;

/** The stub's own fds (the memory file, the fd channel): adjacent, never the program's. */
const STUB_FD_LOW = BigInt(abi.STUB_MEMFD);
const STUB_FD_HIGH = BigInt(abi.STUB_FDCHAN);
const PROC_EXE = /^\/proc\/(self|thread-self|\d+)\/exe$/;

/**
 * close_range without the stub's fds: the call split in up to two around them (the filter
 * already refuses close/dup2/dup3 aimed at them).
 *
 * @example
 * ```ts
 * closeRange(kernel, task, [3n, 0xffffffffn, 0n]); // close_range(3, 999), then (1002, ~0)
 * ```
 */
export const closeRange: Handler = (_k, _t, a) => {
  const [first, last, flags] = a;
  if (last < STUB_FD_LOW || first > STUB_FD_HIGH) return 'pass';
  const upper: Substitute | undefined = last > STUB_FD_HIGH ? { sysno: SYS.close_range, args: [first > STUB_FD_HIGH ? first : STUB_FD_HIGH + 1n, last, flags] } : undefined;
  if (first < STUB_FD_LOW) {
    return { sysno: SYS.close_range, args: [first, STUB_FD_LOW - 1n, flags], onDone: (ret) => (ret === 0n && upper ? upper : ret) };
  }
  return upper ?? 0n;
};

/**
 * The program's executable when `path` is its own /proc exe link (/proc/self/exe,
 * /proc/thread-self/exe, /proc/<its pid or one of its tids>/exe), else undefined. The kernel's
 * link would name the stub's (Node's) file: every call that follows it must use this instead.
 *
 * @example
 * ```ts
 * ownExe(kernel, '/proc/self/exe'); // '/usr/bin/busybox' while busybox runs
 * ```
 */
export function ownExe(k: FileKernel, path: string): string | undefined {
  if (!PROC_EXE.test(path)) return undefined;
  const who = path.split('/')[2];
  if (who !== 'self' && who !== 'thread-self' && Number(who) !== k.tgid && !k.task(Number(who))) return undefined;
  return k.exe;
}

/**
 * readlink of /proc/self/exe (or /proc/<pid>/exe, /proc/thread-self/exe): the stub's own
 * executable is Node's, the program's is the one the sentry loaded. Anything else passes.
 */
function readlink(k: FileKernel, path: bigint, buf: bigint, size: bigint): Outcome {
  const p = k.mem.readCString(path, PATH_MAX);
  if (p === null || ownExe(k, p) === undefined) return 'pass';
  if (BigInt.asIntN(64, size) <= 0n) return err(ERRNO.EINVAL);
  const bytes = Buffer.from(k.exe);
  const n = Math.min(bytes.length, Number(size > BigInt(PATH_MAX) ? BigInt(PATH_MAX) : size));
  return k.mem.write(buf, bytes.subarray(0, n)) ? BigInt(n) : err(ERRNO.EFAULT);
}

export const readlinkCall: Handler = (k, _t, a) => readlink(k, a[0], a[1], a[2]);
/** readlinkat: an absolute path ignores dirfd; a relative one is never /proc/self/exe. */
export const readlinkatCall: Handler = (k, _t, a) => readlink(k, a[1], a[2], a[3]);
