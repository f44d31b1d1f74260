import { ERRNO, PATH_MAX, SIG, SS_DISABLE } from '../../abi/linux.js';
import { SYS } from '../../abi/syscalls.js';
import { err, type Handler } from './context.js';

/** Room for argv and envp (strings and pointers): Linux's quarter of the 8 MiB stack limit. */
const ARG_SPACE = (8 << 20) / 4;
/** The user-mode flags a new image starts with (IF set). */
const INITIAL_EFLAGS = 0x202n;

/**
 * execve (gVisor's sys_thread.go Execve with its loader): the arguments read from the old
 * image, the main thread's checks before the point of no return (a missing or unloadable file
 * fails the call and the program goes on), then every other thread stopped, the old image
 * unmapped and the new one loaded in the same stub. A load that fails past that point kills
 * the program, as the kernel's does.
 *
 * @example
 * ```ts
 * execve(kernel, task, [pathAddr, argvAddr, envpAddr]); // 'execed': the task starts the new image
 * ```
 */
export const execve: Handler = (k, t, a) => {
  const start = process.hrtime.bigint();
  const call = k.strace.execCall(SYS.execve, a);
  const path = k.mem.readCString(a[0], PATH_MAX);
  if (path === null) return err(ERRNO.EFAULT);
  const budget = { bytes: ARG_SPACE };
  const argv = k.mem.readArgStrings(a[1], budget);
  if (typeof argv === 'string') return err(ERRNO[argv]);
  const envp = k.mem.readArgStrings(a[2], budget);
  if (typeof envp === 'string') return err(ERRNO[envp]);
  const errno = k.exec.check(path);
  if (errno !== 0) return err(errno);
  k.stopOthers(t);
  const img = k.exec.load(path, argv, envp);
  if (typeof img === 'number') return k.killGroup(SIG.SIGKILL); // the old image is gone
  k.signals.resetForExec();
  t.altstack = { sp: 0n, size: 0n, flags: SS_DISABLE };
  t.fpStack.length = 0;
  t.pending.length = 0;
  t.clearChildTid = 0n;
  k.brkStart = k.brk = img.brkStart;
  k.exe = img.exe;
  const keep = { cs: t.reg('cs'), ss: t.reg('ss') };
  t.regs.fill(0n);
  t.setReg('cs', keep.cs);
  t.setReg('ss', keep.ss);
  t.setReg('eflags', INITIAL_EFLAGS);
  t.setReg('rip', img.entry);
  t.setReg('rsp', img.sp);
  t.setReg('orig_rax', -1n);
  k.strace.exec(t.tid, call, start);
  return 'execed';
};
