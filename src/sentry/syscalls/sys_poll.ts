import { ERRNO } from '../../abi/linux.js';
import { SYS } from '../../abi/syscalls.js';
import { UNBLOCKABLE } from '../kernel/signals.js';
import { err, type Handler, type SyscallKernel } from './context.js';

const EINTR = -BigInt(ERRNO.EINTR);
/** Below the program's stack pointer, the bytes leaf functions may use: left as they are. */
const RED_ZONE = 128n;

/**
 * The waits that take a signal mask for their duration (ppoll, pselect6, epoll_pwait,
 * epoll_pwait2): where the mask is. `size`: the argument giving its size; none for pselect6,
 * whose last argument points at `{ const sigset_t *ss; size_t ss_len; }`. `probe`: the timeout
 * argument, in milliseconds or (`ptr`) a timespec's address, for a look at the fds without
 * waiting (see maskedWait); `sets`: pselect6's fd sets, which a zero result clears, are kept.
 */
export const MASKED_WAITS: Readonly<Record<number, { mask: number; size?: number; probe?: { at: number; ptr: boolean; sets?: true } }>> = {
  [SYS.ppoll]: { mask: 3, size: 4, probe: { at: 2, ptr: true } },
  [SYS.pselect6]: { mask: 5, probe: { at: 4, ptr: true, sets: true } },
  [SYS.epoll_pwait]: { mask: 4, size: 5, probe: { at: 3, ptr: false } },
  [SYS.epoll_pwait2]: { mask: 4, size: 5, probe: { at: 3, ptr: true } },
};

/**
 * A wait with a signal mask (gVisor's setTempSignalSet): the mask is the program's, so the
 * sentry sets it on the task for the wait and the kernel runs the call without one (the stub
 * thread keeps the mask that lets it forward signals). A signal the temporary mask lets in,
 * pending already, ends the wait at once with EINTR, unless an fd is ready (Linux looks at the
 * fds once before it looks at signals: the call is made with a zero timeout, its count
 * returned, the caller's mask restored, the signal left pending); sent during it, interrupts it (the call
 * ends with EINTR, its handler runs with the caller's mask restored after it, as Linux's
 * sigsuspend-like waits do). Any other result restores the caller's mask before signals are
 * taken (Linux's restore_saved_sigmask_unless). Filter: these trap only with a mask.
 *
 * @example
 * ```ts
 * maskedWait(SYS.ppoll)(kernel, task, [fds, 1n, 0n, maskAddr, 8n]); // ppoll(fds, 1, NULL, NULL, 8) at the gadget
 * ```
 */
export function maskedWait(sysno: number): Handler {
  const where = MASKED_WAITS[sysno];
  return (k, t, a) => {
    let maskAddr = a[where.mask];
    let size: bigint;
    if (where.size === undefined) {
      if (maskAddr === 0n) return 'pass';
      const b = k.mem.read(maskAddr, 16);
      if (!b) return err(ERRNO.EFAULT);
      const dv = new DataView(b.buffer, b.byteOffset, 16);
      [maskAddr, size] = [dv.getBigUint64(0, true), dv.getBigUint64(8, true)];
    } else size = a[where.size];
    if (maskAddr === 0n) return 'pass';
    if (size !== 8n) return err(ERRNO.EINVAL);
    const mask = k.mem.readU64(maskAddr);
    if (mask === null) return err(ERRNO.EFAULT);
    t.savedMask = t.sigmask;
    t.sigmask = mask & ~UNBLOCKABLE;
    const code = sysno === SYS.ppoll || sysno === SYS.pselect6 ? ERRNO.ERESTARTNOHAND : ERRNO.EINTR;
    const args = a.map((v, i) => (i === where.mask ? 0n : v));
    const pending = k.signals.deliverable(t) !== undefined;
    const sets = pending && where.probe?.sets ? keepSets(k, a) : undefined;
    if (pending) {
      const zero = (t.reg('rsp') - RED_ZONE - 16n) & ~15n; // a zero timespec where a signal frame would go
      if (!where.probe || (where.probe.sets && !sets) || (where.probe.ptr && !k.mem.write(zero, new Uint8Array(16)))) {
        t.interruptedAs = code;
        return EINTR;
      }
      args[where.probe.at] = where.probe.ptr ? zero : 0n;
    }
    return {
      sysno,
      args,
      onDone: (ret) => {
        if (pending && ret === 0n) {
          sets?.(); // as the caller gave them: Linux's EINTR leaves them
          t.interruptedAs = code;
          return EINTR;
        }
        if (ret !== EINTR && t.savedMask !== undefined) {
          t.sigmask = t.savedMask;
          t.savedMask = undefined;
        }
        return ret;
      },
    };
  };
}

/**
 * pselect6's fd sets as the caller gave them (`n` bits each, in whole longs, as the kernel reads
 * them): a function that writes them back, or undefined when one cannot be read.
 */
function keepSets(k: Pick<SyscallKernel, 'mem'>, a: bigint[]): (() => void) | undefined {
  const n = Number(BigInt.asIntN(32, a[0]));
  if (n < 0 || n > 1 << 20) return undefined;
  const bytes = Math.ceil(n / 64) * 8;
  const kept: Array<[bigint, Uint8Array]> = [];
  for (const addr of a.slice(1, 4)) {
    if (addr === 0n || bytes === 0) continue;
    const b = k.mem.read(addr, bytes);
    if (!b) return undefined;
    kept.push([addr, b]);
  }
  return () => {
    for (const [addr, b] of kept) k.mem.write(addr, b);
  };
}
