import { openSync, constants } from 'node:fs';
import { ERRNO, O_CLOEXEC, O_NONBLOCK } from '../../abi/linux.js';
import { SYS } from '../../abi/syscalls.js';
import { MAX_SIGNALFDS } from '../kernel/signalfd.js';
import { UNBLOCKABLE } from '../kernel/signals.js';
import { err, type Handler, type Outcome, type SyscallKernel } from './context.js';

/** What signalfd uses of the kernel. */
type SignalfdKernel = Pick<SyscallKernel, 'mem' | 'tree' | 'tgid' | 'hostPid' | 'signals'>;

/** The size of a sigset signalfd accepts (the kernel's, 8 bytes; glibc passes _NSIG / 8). */
const SIGSET_SIZE = 8n;

/**
 * signalfd4(fd, mask, sizemask, flags), and signalfd (flags 0): an emulated signalfd (see
 * SignalfdTable), made of a pipe the task itself creates with pipe2 (so the program gets the
 * lowest free fd, with SFD_CLOEXEC/SFD_NONBLOCK as O_CLOEXEC/O_NONBLOCK). Node opens the write
 * end through /proc, non-blocking, and the task closes its own copy. With fd ≥ 0, changes an
 * existing signalfd's mask. Precondition: the program's stack below its red zone is writable
 * (pipe2 writes its two fds there, as a signal frame would).
 *
 * @example
 * ```ts
 * signalfd4(kernel, task, [-1n, maskAddr, 8n, SFD_CLOEXEC]); // pipe2, then the read end's fd
 * ```
 */
function signalfd(k: SignalfdKernel, rsp: bigint, a: bigint[], flags: bigint): Outcome {
  const fd = Number(BigInt.asIntN(32, a[0]));
  if (a[2] !== SIGSET_SIZE || (flags & ~(O_CLOEXEC | O_NONBLOCK)) !== 0n) return err(ERRNO.EINVAL);
  const raw = k.mem.readU64(a[1]);
  if (raw === null) return err(ERRNO.EFAULT);
  const mask = raw & ~UNBLOCKABLE;
  const table = k.tree.table.signalfds;
  if (fd !== -1) {
    if (fd < 0) return err(ERRNO.EBADF);
    const found = table.find(k.tgid, k.hostPid, fd);
    if (typeof found === 'string') return err(ERRNO[found]);
    found.setMask(mask);
    k.signals.toSignalfds();
    return BigInt(fd);
  }
  if (table.size >= MAX_SIGNALFDS) table.sweep();
  if (table.size >= MAX_SIGNALFDS) return err(ERRNO.EMFILE);
  const at = (rsp - 128n - 16n) & ~15n;
  return {
    sysno: SYS.pipe2,
    args: [at, flags],
    onDone: (ret) => {
      if (BigInt.asIntN(64, ret) < 0n) return ret;
      const ends = k.mem.read(at, 8);
      if (!ends) return err(ERRNO.EFAULT);
      const dv = new DataView(ends.buffer, ends.byteOffset, 8);
      const [readFd, writeFd] = [dv.getInt32(0, true), dv.getInt32(4, true)];
      let nodeFd: number;
      try {
        nodeFd = openSync(`/proc/${k.hostPid}/fd/${writeFd}`, constants.O_WRONLY | constants.O_NONBLOCK);
      } catch {
        // Node is out of fds (or the stub is gone): the program's two ends go, it sees EMFILE.
        return { sysno: SYS.close, args: [BigInt(writeFd)], onDone: () => ({ sysno: SYS.close, args: [BigInt(readFd)], onDone: () => err(ERRNO.EMFILE) }) };
      }
      table.add({ tgid: k.tgid, hostPid: k.hostPid, fd: readFd, writeFd: nodeFd, mask });
      return {
        sysno: SYS.close,
        args: [BigInt(writeFd)],
        onDone: () => {
          k.signals.toSignalfds(); // signals pending already are readable at once
          return BigInt(readFd);
        },
      };
    },
  };
}

export const signalfd4: Handler = (k, t, a) => signalfd(k, t.reg('rsp'), a, a[3]);
export const signalfdCall: Handler = (k, t, a) => signalfd(k, t.reg('rsp'), a, 0n);
