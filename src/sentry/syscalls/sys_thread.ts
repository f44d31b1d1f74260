import { ARCH_GET_FS, ARCH_SET_FS, CLONE_CHILD_CLEARTID, CLONE_CHILD_SETTID, CLONE_PARENT_SETTID, CLONE_SETTLS, CLONE_SIGHAND, CLONE_VM, ERRNO } from '../../abi/linux.js';
import { SYS } from '../../abi/syscalls.js';
import { abi } from '../../abi/stub.js';
import { err, type Handler } from './context.js';

/** Bytes of the robust_list_head set_robust_list accepts. */
const ROBUST_LIST_HEAD_SIZE = 24n;
/** exit statuses are 8 bits. */
const STATUS_MASK = 0xffn;
/** Linux's TASK_SIZE_MAX: an FS base at or above it is refused (EPERM), never loaded. */
const TASK_SIZE_MAX = abi.STUB_TASK_SIZE;

/** An FS base the program may not have: non-canonical or above user space, or in the stub region. */
function badFsBase(k: { region: { start: bigint; end: bigint } }, v: bigint): boolean {
  return v >= TASK_SIZE_MAX || (v >= k.region.start && v < k.region.end);
}

/**
 * Threads (gVisor's sys_thread.go, sys_tls.go): clone with CLONE_THREAD makes a new task in
 * a new platform context of the same stub; exit/exit_group; the TID addresses and robust list;
 * the FS base (TLS) the stub loads on each switch. Processes (clone without CLONE_THREAD, fork,
 * vfork) are in sys_process.ts.
 *
 * @example
 * ```ts
 * cloneThread(kernel, task, [flags, newsp, ptid, ctid, tls]); // the child's tid, as a bigint
 * ```
 */
export const cloneThread: Handler = (k, t, a) => {
  const [flags, newsp, ptid, ctid, tls] = a;
  // A thread shares its process's memory and signal actions (Linux: EINVAL otherwise).
  if ((flags & CLONE_VM) === 0n || (flags & CLONE_SIGHAND) === 0n) return err(ERRNO.EINVAL);
  if ((flags & CLONE_SETTLS) !== 0n && badFsBase(k, tls)) return err(ERRNO.EPERM);
  const child = k.newThread(t);
  child.setReg('rax', 0n);
  if (newsp !== 0n) child.setReg('rsp', newsp);
  if (flags & CLONE_SETTLS) child.setReg('fs_base', tls);
  if (flags & CLONE_CHILD_CLEARTID) child.clearChildTid = ctid;
  if (flags & CLONE_PARENT_SETTID) k.mem.writeU32(ptid, child.tid);
  if (flags & CLONE_CHILD_SETTID) k.mem.writeU32(ctid, child.tid);
  return BigInt(child.tid);
};

export const exit: Handler = (k, t, a) => {
  k.strace.exitCall(t.tid, SYS.exit, a);
  k.exitThread(t, Number(a[0] & STATUS_MASK));
  return 'exited';
};

export const exitGroup: Handler = (k, t, a) => {
  k.strace.exitCall(t.tid, SYS.exit_group, a);
  return k.exitGroup(Number(a[0] & STATUS_MASK));
};

export const setTidAddress: Handler = (_k, t, a) => {
  t.clearChildTid = a[0];
  return BigInt(t.tid);
};

export const setRobustList: Handler = (_k, t, a) => {
  if (a[1] !== ROBUST_LIST_HEAD_SIZE) return err(ERRNO.EINVAL);
  t.robustList = a[0];
  return 0n;
};

/** arch_prctl: the FS base is the sentry's (the stub loads it on each switch). */
export const archPrctl: Handler = (k, t, a) => {
  if (a[0] === ARCH_SET_FS) {
    if (badFsBase(k, a[1])) return err(ERRNO.EPERM);
    t.setReg('fs_base', a[1]);
    return 0n;
  }
  if (a[0] === ARCH_GET_FS) return k.mem.writeU64(a[1], t.reg('fs_base')) ? 0n : err(ERRNO.EFAULT);
  return err(ERRNO.EINVAL);
};

/** Calls that fail the same way whatever their arguments. */
export const failsWith =
  (errno: number): Handler =>
  () =>
    err(errno);
