import { ERRNO, FUTEX } from '../../abi/linux.js';
import type { Task } from '../kernel/task.js';
import { err, type Handler, type Outcome, type SyscallKernel } from './context.js';
import { futexKey } from '../kernel/futexKey.js';

/** What futex uses of the kernel (FutexTable.wake calls back the tree's `wakeTask`). */
type FutexKernel = Pick<SyscallKernel, 'mem' | 'futexes' | 'park' | 'wake' | 'tree' | 'tgid' | 'self'>;

/** The key of the word at `addr` for this op (see futexKey): private unless the op says shared. */
function key(k: FutexKernel, addr: bigint, opw: bigint): string | null {
  return futexKey(k.self, addr, (opw & FUTEX.PRIVATE_FLAG) === 0n);
}

const u32 = (v: bigint): number => Number(BigInt.asUintN(32, v));
/** The PI operations that accept CLOCK_REALTIME (the kernel's). */
const FUTEX_WAIT_REQUEUE_PI = 11;
const FUTEX_LOCK_PI2 = 13;

/** Reads a struct timespec as milliseconds: null on a fault, 'invalid' as Linux's timespec64_valid says. */
function timespecMs(k: FutexKernel, addr: bigint): number | null | 'invalid' {
  const b = k.mem.read(addr, 16);
  if (!b) return null;
  const dv = new DataView(b.buffer, b.byteOffset, 16);
  const sec = dv.getBigInt64(0, true);
  const nsec = dv.getBigInt64(8, true);
  if (sec < 0n || nsec < 0n || nsec >= 1_000_000_000n) return 'invalid';
  return Number(sec) * 1000 + Number(nsec) / 1e6;
}

/** FUTEX_WAIT (relative timeout) and FUTEX_WAIT_BITSET (absolute, CLOCK_MONOTONIC or REALTIME). */
function wait(k: FutexKernel, t: Task, a: bigint[], op: number): Outcome {
  const [addr, opw, val, timeout, , val3] = a;
  const bitset = op === FUTEX.WAIT_BITSET ? u32(val3) : FUTEX.BITSET_MATCH_ANY;
  if (bitset === 0) return err(ERRNO.EINVAL);
  const cur = k.mem.readU32(addr);
  if (cur === null) return err(ERRNO.EFAULT);
  if (cur !== u32(val)) return err(ERRNO.EAGAIN);
  let deadline: number | undefined;
  if (timeout !== 0n) {
    const ms = timespecMs(k, timeout);
    if (ms === null) return err(ERRNO.EFAULT);
    if (ms === 'invalid') return err(ERRNO.EINVAL);
    const realtime = (opw & FUTEX.CLOCK_REALTIME) !== 0n;
    const now = op === FUTEX.WAIT ? 0 : realtime ? Date.now() : Number(process.hrtime.bigint() / 1000000n);
    deadline = performance.now() + (ms - now);
  }
  const kw = key(k, addr, opw);
  if (kw === null) return err(ERRNO.EFAULT);
  k.futexes.wait(t, kw, bitset, deadline);
  t.interruptedAs = deadline === undefined ? ERRNO.ERESTARTSYS : ERRNO.ERESTART_RESTARTBLOCK;
  k.park(t, 'WAIT_FUTEX');
  return 'blocked';
}

/** FUTEX_WAKE_OP: *addr2 = oldval OP oparg; wake on addr; wake on addr2 if oldval CMP cmparg. */
function wakeOp(k: FutexKernel, a: bigint[]): Outcome {
  const [addr, opw, val, val2, addr2, val3] = a;
  const k1 = key(k, addr, opw);
  const k2 = key(k, addr2, opw);
  if (k1 === null || k2 === null) return err(ERRNO.EFAULT);
  const enc = u32(val3);
  const old = k.mem.readU32(addr2);
  if (old === null) return err(ERRNO.EFAULT);
  let oparg = (enc >> 12) & 0xfff;
  const cmparg = enc & 0xfff;
  const fop = (enc >>> 28) & 7;
  if ((enc >>> 28) & 8) oparg = 1 << oparg; // FUTEX_OP_OPARG_SHIFT
  // SET, ADD, OR, ANDN, XOR
  const nv = [oparg, old + oparg, old | oparg, old & ~oparg, old ^ oparg][fop];
  if (nv === undefined || !k.mem.writeU32(addr2, nv >>> 0)) return err(ERRNO.EFAULT);
  let n = k.futexes.wake(k.tree, k1, u32(val), FUTEX.BITSET_MATCH_ANY);
  // EQ, NE, LT, LE, GT, GE
  const cmp = [old === cmparg, old !== cmparg, old < cmparg, old <= cmparg, old > cmparg, old >= cmparg][(enc >>> 24) & 15];
  if (cmp) n += k.futexes.wake(k.tree, k2, u32(val2), FUTEX.BITSET_MATCH_ANY);
  return BigInt(n);
}

/** FUTEX_REQUEUE and FUTEX_CMP_REQUEUE (val2, in the timeout's place, is the most to move). */
function requeue(k: FutexKernel, a: bigint[], op: number): Outcome {
  const [addr, opw, val, val2, addr2, val3] = a;
  const k1 = key(k, addr, opw);
  const k2 = key(k, addr2, opw);
  if (k1 === null || k2 === null) return err(ERRNO.EFAULT);
  if (op === FUTEX.CMP_REQUEUE) {
    const cur = k.mem.readU32(addr);
    if (cur === null) return err(ERRNO.EFAULT);
    if (cur !== u32(val3)) return err(ERRNO.EAGAIN);
  }
  const r = k.futexes.requeue(k.tree, k1, k2, u32(val), u32(val2));
  return BigInt(op === FUTEX.CMP_REQUEUE ? r.woken + r.moved : r.woken);
}

/**
 * futex(2) in the sentry (gVisor's sys_futex.go): waiters sleep in the sentry, holding no stub
 * thread. PI futexes and the rest are the kernel's (they never block on our side).
 *
 * @example
 * ```ts
 * futex(kernel, task, [addr, BigInt(FUTEX.WAKE), 1n, 0n, 0n, 0n]); // threads woken, as a bigint
 * ```
 */
export const futex: Handler = (k, t, a) => {
  // Linux's futex_cmd: every bit but PRIVATE and CLOCK_REALTIME is the command; an unknown one
  // is ENOSYS, and so is CLOCK_REALTIME with any command but the bitset/PI waits.
  const cmd = BigInt.asUintN(32, a[1]) & ~(FUTEX.PRIVATE_FLAG | FUTEX.CLOCK_REALTIME);
  const op = Number(cmd);
  if (cmd > 13n) return err(ERRNO.ENOSYS);
  if ((a[1] & FUTEX.CLOCK_REALTIME) !== 0n && op !== FUTEX.WAIT_BITSET && op !== FUTEX_WAIT_REQUEUE_PI && op !== FUTEX_LOCK_PI2) return err(ERRNO.ENOSYS);
  switch (op) {
    case FUTEX.WAIT:
    case FUTEX.WAIT_BITSET:
      return wait(k, t, a, op);
    case FUTEX.WAKE:
    case FUTEX.WAKE_BITSET: {
      // An empty bitset matches no waiter: EINVAL, before the address is looked at (futex_wake).
      const bitset = op === FUTEX.WAKE_BITSET ? u32(a[5]) : FUTEX.BITSET_MATCH_ANY;
      if (bitset === 0) return err(ERRNO.EINVAL);
      const kw = key(k, a[0], a[1]);
      if (kw === null) return err(ERRNO.EFAULT);
      return BigInt(k.futexes.wake(k.tree, kw, u32(a[2]), bitset));
    }
    case FUTEX.REQUEUE:
    case FUTEX.CMP_REQUEUE:
      return requeue(k, a, op);
    case FUTEX.WAKE_OP:
      return wakeOp(k, a);
    default:
      return 'pass';
  }
};
