import { SIGINFO_SIZE } from '../abi/linux.js';
import { SYS } from '../abi/syscalls.js';
import type { AddressSpace } from '../addressSpace.js';
import type { StubPort } from '../platformPort.js';
import type { TakenSignal } from './protocol.js';

/** Bytes at the end of the syscall thread's scratch for takeStubSignals: the set, a zero timespec, a siginfo. */
const TAKE_AREA = 8 + 16 + SIGINFO_SIZE;
/** Most signals taken in one request (each real-time signal may be queued many times). */
const TAKE_MAX = 64;

/**
 * Takes the signals of `set` pending for the process's stub (see StubSignals), with its siginfo
 * each: rt_sigtimedwait with a zero timeout, run by the syscall thread, which blocks them all.
 * Its scratch's tail only: other requests of the process (syncAttrs, the fd channel, nameStub)
 * use its head, and may be on their way.
 *
 * @example
 * ```ts
 * const signals = await takeStubSignals({ as, stub }, sigset(SIG.SIGINT)); // [{ signo: 2, info }]
 * ```
 */
export async function takeStubSignals(p: { readonly as: AddressSpace; readonly stub: Pick<StubPort, 'scratch'> }, set: bigint): Promise<TakenSignal[]> {
  const sc = p.stub.scratch();
  const at = sc.bytes.length - TAKE_AREA;
  sc.view.setBigUint64(at, set, true);
  sc.bytes.fill(0, at + 8, at + 24);
  const [setAddr, tsAddr, infoAddr] = [sc.addr + BigInt(at), sc.addr + BigInt(at + 8), sc.addr + BigInt(at + 24)];
  const taken: TakenSignal[] = [];
  while (taken.length < TAKE_MAX) {
    const signo = await p.as.syscall(SYS.rt_sigtimedwait, setAddr, infoAddr, tsAddr, 8n);
    if (signo <= 0n) break; // EAGAIN: none left
    taken.push({ signo: Number(signo), info: sc.bytes.slice(at + 24, at + 24 + SIGINFO_SIZE) });
  }
  return taken;
}
