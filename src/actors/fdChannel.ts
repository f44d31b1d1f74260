import { SYS } from '../abi/syscalls.js';
import { CMSGHDR, IOVEC, MSGHDR, MSG_DONTWAIT, SCM_RIGHTS, SOL_SOCKET } from '../abi/socket.js';
import { abi } from '../abi/stub.js';
import { Errors, checkStubReply } from '../errors.js';

/** What receiving fds needs of a stub: its syscall thread and that thread's scratch memory. */
export interface FdChannelStub {
  readonly pid: number;
  syscall(sysno: number, args: readonly bigint[]): Promise<bigint>;
  scratch(): { addr: bigint; view: DataView };
}

/** Most fds passed at once (the control buffer below holds this many). */
export const MAX_PASSED_FDS = 16;

/** Scratch layout: msghdr, iovec, one data byte, then the control buffer. */
const AT = { msghdr: 0, iov: 64, data: 96, control: 128 } as const;
const CONTROL_LEN = CMSGHDR.data + 4 * MAX_PASSED_FDS;

/**
 * Receives, in the stub, the fds Node just sent on the fd channel (STUB_FDCHAN, see
 * native.sendFds) and returns their numbers there. The control message is read back from stub
 * memory, so it is checked: anything but exactly `count` SCM_RIGHTS fds is EPROTOCOL.
 * Preconditions: the caller sent exactly `count` fds just before, and serialises send and
 * receive across the stubs of one source (they share the channel).
 *
 * @example
 * ```ts
 * native.sendFds(sourcePid, [0, 1, 2]);
 * const [i, o, e] = await receiveFds(sp, 3);
 * ```
 */
export async function receiveFds(stub: FdChannelStub, count: number): Promise<number[]> {
  if (!Number.isInteger(count) || count < 1 || count > MAX_PASSED_FDS) throw Errors.InvalidArg(`between 1 and ${MAX_PASSED_FDS} fds pass at once`);
  const { addr, view } = stub.scratch();
  for (let i = 0; i < AT.control + CONTROL_LEN; i += 8) view.setBigUint64(i, 0n, true);
  view.setBigUint64(AT.msghdr + MSGHDR.iov, addr + BigInt(AT.iov), true);
  view.setBigUint64(AT.msghdr + MSGHDR.iovlen, 1n, true);
  view.setBigUint64(AT.msghdr + MSGHDR.control, addr + BigInt(AT.control), true);
  view.setBigUint64(AT.msghdr + MSGHDR.controllen, BigInt(CONTROL_LEN), true);
  view.setBigUint64(AT.iov + IOVEC.base, addr + BigInt(AT.data), true);
  view.setBigUint64(AT.iov + IOVEC.len, 1n, true);
  const ret = await stub.syscall(SYS.recvmsg, [BigInt(abi.STUB_FDCHAN), addr + BigInt(AT.msghdr), MSG_DONTWAIT]);
  checkStubReply(ret, { syscall: 'recvmsg', expect: 1n, pid: stub.pid });
  const len = Number(view.getBigUint64(AT.control + CMSGHDR.len, true));
  const level = view.getInt32(AT.control + CMSGHDR.level, true);
  const type = view.getInt32(AT.control + CMSGHDR.type, true);
  const n = (len - CMSGHDR.data) / 4;
  if (level !== SOL_SOCKET || type !== SCM_RIGHTS || n !== count)
    throw Errors.Protocol(`fd channel: expected ${count} fds, got a control message of ${len} bytes`, stub.pid);
  return Array.from({ length: n }, (_, i) => view.getInt32(AT.control + CMSGHDR.data + 4 * i, true));
}
