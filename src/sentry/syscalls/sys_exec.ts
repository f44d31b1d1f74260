import { ERRNO, PATH_MAX, SS_DISABLE } from '../../abi/linux.js';
import { commOf } from '../exec/comm.js';
import { SYS } from '../../abi/syscalls.js';
import { err, type Handler, type LoadedImage, type SyscallKernel } from './context.js';
import { ownExe } from './sys_file.js';
import { capsAtExec } from './sys_attrs.js';
import type { Task } from '../kernel/task.js';

/** Room for argv and envp (strings and pointers): Linux's quarter of the 8 MiB stack limit. */
const ARG_SPACE = (8 << 20) / 4;
/** The user-mode flags a new image starts with (IF set). */
const INITIAL_EFLAGS = 0x202n;

/**
 * execve (gVisor's sys_thread.go Execve with its loader): the arguments read from the old
 * image here, the rest done by the kernel (see ExecInProgress): the checks before the point of
 * no return (a missing or unloadable file fails the
 * call and the program goes on), every other thread dropped, the old image unmapped and the new
 * one loaded in the same stub. A load that fails past that point kills the program, as the
 * kernel's does.
 *
 * @example
 * ```ts
 * execve(kernel, task, [pathAddr, argvAddr, envpAddr]); // 'blocked' until the new image runs
 * ```
 */
export const execve: Handler = (k, t, a) => {
  const start = process.hrtime.bigint();
  const call = k.strace.execCall(t.tid, SYS.execve, a);
  const path = k.mem.readCString(a[0], PATH_MAX);
  if (path === null) return err(ERRNO.EFAULT);
  // The kernel refuses an empty name before looking anything up (only execveat's AT_EMPTY_PATH
  // allows one); resolved against the cwd it would name a directory instead.
  if (path === '') return err(ERRNO.ENOENT);
  const budget = { bytes: ARG_SPACE };
  const argv = k.mem.readArgStrings(a[1], budget);
  if (typeof argv === 'string') return err(ERRNO[argv]);
  const envp = k.mem.readArgStrings(a[2], budget);
  if (typeof envp === 'string') return err(ERRNO[envp]);
  // /proc/self/exe is the stub's link to Node; the program means its own file (busybox sh
  // re-runs itself so to read a script without '#!'). The name stays what it gave.
  const file = ownExe(k, path);
  k.execve(t, { path, argv, envp, ...(file !== undefined ? { file } : {}) }, (img) => {
    applyImage(k, t, img);
    t.comm = commOf(path);
    k.strace.exec(t.tid, call, start);
  });
  return 'blocked';
};

/** What a new image does to the program and the task that execve'd (the registers it starts with). */
function applyImage(k: SyscallKernel, t: Task, img: LoadedImage): void {
  k.signals.resetForExec();
  k.timers.resetForExec();
  capsAtExec(k);
  t.altstack = { sp: 0n, size: 0n, flags: SS_DISABLE };
  t.fpStack.length = 0;
  t.pending.length = 0;
  t.clearChildTid = 0n;
  k.brkStart = k.brk = img.brkStart;
  k.exe = img.exe;
  // A process that had none (its table could not be mapped) stays without.
  k.usertrap = img.usertrapTable !== undefined ? k.usertrap?.forImage(img.usertrapTable) : undefined;
  const keep = { cs: t.reg('cs'), ss: t.reg('ss') };
  t.regs.fill(0n);
  t.setReg('cs', keep.cs);
  t.setReg('ss', keep.ss);
  t.setReg('eflags', INITIAL_EFLAGS);
  t.setReg('rip', img.entry);
  t.setReg('rsp', img.sp);
  t.setReg('orig_rax', -1n);
}
