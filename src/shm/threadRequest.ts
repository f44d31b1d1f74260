import type { FileRange } from '../memoryFile.js';
import type { NativeMemoryFile } from '../native.js';
import { PER_THREAD, abi, rulesAddr, threadSlotAddr, type StubRegion } from '../abi/stub.js';
import { FORWARDED_SIGNALS, MSG, ThreadState, TRAP_SIGNALS } from '../abi/sysmsg.js';
import { CLONE_FILES, CLONE_FS, CLONE_SIGHAND, CLONE_SYSVSEM, CLONE_THREAD, CLONE_VM, SA_ONSTACK, SA_RESTART, SA_RESTORER, SA_SIGINFO, SIG, sigset } from '../abi/linux.js';
import { Errors } from '../errors.js';
import { SyscallThreadLock, SyscallThreadOwner } from './syscallThreadLock.js';

/*
 * What the stub reads to make a sysmsg thread (STUB_REQUEST_NEW_THREAD, stub.S): the thread's
 * Msg, the stack_t and sigaction its new thread installs, the request's arguments. Pure writes
 * into memory-file views, so that the main thread and a sentry worker (a fork it makes itself,
 * see src/sentry/kernel/localFork.ts) write them the same way.
 */

/** The stub-region addresses a NEW_THREAD request needs (a StubRegion has them all). */
export type ThreadRequestRegion = Pick<StubRegion, 'start' | 'end' | 'sighandlerAddr' | 'restorerAddr' | 'syshandlerAddr'>;

/**
 * Where the arguments of the creating transaction's injected calls go: in the syscall thread's
 * request page, past its words (read-only in the stub: no program thread can change an argument
 * between Node's write and the kernel's read). The syscall thread is attached, not serving
 * requests, while the transaction runs.
 */
const ARG_STACK_T = 0x200;
const ARG_SIGACTION = 0x300;

/** A page Node writes and the stub reads only: `view` in Node, `addr` in the stub. */
export interface ArgumentPage {
  view: DataView;
  addr: bigint;
}

/**
 * Writes the stack_t that sigaltstack will read (the thread's signal stack at `sharedAddr`,
 * where the shared part of its slot is mapped in the stub) into `args`; returns its stub address.
 *
 * @example
 * ```ts
 * const stackT = writeStackT(page, sharedAddr); // the NEW_THREAD request's 4th argument
 * ```
 */
export function writeStackT(args: ArgumentPage, sharedAddr: bigint): bigint {
  const dv = args.view;
  const at = ARG_STACK_T;
  dv.setBigUint64(at, sharedAddr, true); // ss_sp
  dv.setInt32(at + 8, 0, true); // ss_flags
  dv.setBigUint64(at + 16, BigInt(PER_THREAD.altStackSize), true); // ss_size
  return args.addr + BigInt(at);
}

/**
 * Writes the kernel sigaction every trapping signal gets (handler and restorer in the stub,
 * SA_SIGINFO|SA_ONSTACK|SA_RESTORER|SA_RESTART, SIGSYS and SIGCHLD blocked while it runs) and
 * returns its stub address. Like the stack_t, it goes to `args`. SA_RESTART because an
 * interrupt (SIGCHLD) must not turn a program's blocking syscall into EINTR: the kernel rewinds
 * it, and it runs again once the sentry switches the context back.
 *
 * @example
 * ```ts
 * const act = writeSigaction(page, region.sighandlerAddr, region.restorerAddr);
 * ```
 */
export function writeSigaction(args: ArgumentPage, handler: bigint, restorer: bigint): bigint {
  const dv = args.view;
  const at = ARG_SIGACTION;
  dv.setBigUint64(at, handler, true);
  dv.setBigUint64(at + 8, SA_SIGINFO | SA_ONSTACK | SA_RESTORER | SA_RESTART, true);
  dv.setBigUint64(at + 16, restorer, true);
  // Blocked while the handler runs (and waits for a context): interrupts, and the signals it
  // forwards, which must find a context running (see FORWARDED_SIGNALS).
  dv.setBigUint64(at + 24, sigset(SIG.SIGSYS, SIG.SIGCHLD, ...FORWARDED_SIGNALS), true);
  return args.addr + BigInt(at);
}

/**
 * Prepares the Msg (a DataView of its page) of the thread in `slot` for its start: self, no
 * context yet, Initializing (its first signal makes it look for a context in the queue), the
 * slot as its id. For a thread whose SysmsgThread is not made yet (a fork child's first, see
 * postFirstThread); SysmsgThread.writeMsg otherwise.
 *
 * @example
 * ```ts
 * writeThreadMsg(msgView, 1, sharedAddr, 0n, region.syshandlerAddr);
 * ```
 */
export function writeThreadMsg(dv: DataView, slot: number, sharedAddr: bigint, contextAddr: bigint, syshandlerAddr: bigint): void {
  dv.setBigUint64(MSG.self, sharedAddr + BigInt(PER_THREAD.msgOffset), true);
  // The syshandler path (patched call sites): its entry, and its stack, the signal stack (a
  // signal taken there nests below: the kernel sees it already on it).
  dv.setBigUint64(MSG.syshandler, syshandlerAddr, true);
  dv.setBigUint64(MSG.syshandlerStack, sharedAddr + BigInt(PER_THREAD.altStackSize), true);
  dv.setBigUint64(MSG.context, contextAddr, true);
  dv.setUint32(MSG.threadId, slot, true);
  // A new thread takes on the process's task attributes before its first context (it may be
  // a clone of a syscall thread that has not taken on the latest).
  dv.setUint32(MSG.attrsGen, 0, true);
  dv.setUint32(MSG.state, ThreadState.Initializing, true);
}

/**
 * The NEW_THREAD request for the thread of the slot at `slotAddr` (its shared part at
 * `sharedAddr`): what it reads from the request page written into `page`, and the request's
 * arguments (see stub.S, STUB_REQUEST_NEW_THREAD).
 *
 * @example
 * ```ts
 * const args = newThreadRequest(region, page, slotAddr, slotAddr + BigInt(PER_THREAD.sharedOffset));
 * ```
 */
export function newThreadRequest(region: ThreadRequestRegion, page: ArgumentPage, slotAddr: bigint, sharedAddr: bigint): bigint[] {
  let mask = 0n;
  for (const sig of [...TRAP_SIGNALS, ...FORWARDED_SIGNALS]) mask |= 1n << BigInt(sig - 1);
  page.view.setBigUint64(abi.SYSMSG_THREAD_SIGNALS, mask, true);
  // A thread of the stub takes the signals sent to the stub's process: those it forwards to
  // the sentry (FORWARDED_SIGNALS, with the handler's) and no other, which stay pending (the
  // default action of one would kill the stub). The handler blocks the forwarded ones while
  // it runs (writeSigaction): they arrive only while program code runs.
  page.view.setBigUint64(abi.SYSMSG_THREAD_MASK, ~mask & 0xffffffffffffffffn, true);
  // A thread of the stub (gVisor's sysmsg threads are processes of their own; here threads,
  // so that /proc/self, resource limits and the process CPU clock are the stub's, as the
  // program's getpid says): its death by a signal is the stub's.
  const flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
  const priv = slotAddr + BigInt(PER_THREAD.privateStackOffset);
  const stackT = writeStackT(page, sharedAddr);
  const act = writeSigaction(page, region.sighandlerAddr, region.restorerAddr);
  return [flags, priv, BigInt(PER_THREAD.privateStackSize), stackT, act, rulesAddr(region)];
}


/** A fork child's first thread, asked of its loop before the loop ran (see postThreadRequest). */
export interface FirstThread {
  /** Its slot (the first: the child has no thread yet). */
  readonly slot: number;
  /** The state the loop's answer carries. */
  readonly state: number;
  /**
   * The answer, from whoever holds the loop for it (a sentry that forked the child itself, see
   * PostedFirstThread); none: the main thread awaits it itself (SyscallThread.adoptPosted).
   */
  readonly answer?: Promise<bigint>;
}

/** The slot of a fork child's first sysmsg thread (slot 0 is the syscall thread's). */
export const FIRST_THREAD_SLOT = 1;

/**
 * Asks a fork child's loop for its first sysmsg thread before the loop runs: writes the
 * thread's Msg (in its slot's shared part, `threadShared` in `file`), what the loop reads (in
 * the child's own message, `msg`), takes the loop for `owner` and posts. The loop finds the
 * request as it starts and makes the thread at once. Preconditions: the control memory is laid
 * out in `file`, its context queue set up with the thread counted active in it (the thread
 * looks there first) and its rules written (the thread installs them); nothing was posted to
 * the message yet.
 *
 * @example
 * ```ts
 * const first = postThreadRequest(file, region, threadShared, { range, addr }, SyscallThreadOwner.Main);
 * ```
 */
export function postThreadRequest(file: NativeMemoryFile, region: ThreadRequestRegion, threadShared: FileRange, msg: { range: FileRange; addr: bigint }, owner: SyscallThreadOwner): FirstThread {
  const slot = FIRST_THREAD_SLOT;
  const slotAddr = threadSlotAddr(region, slot);
  const sharedAddr = slotAddr + BigInt(PER_THREAD.sharedOffset);
  const shared = file.buffer(threadShared.start, threadShared.end - threadShared.start);
  writeThreadMsg(new DataView(shared, PER_THREAD.msgOffset, 4096), slot, sharedAddr, 0n, region.syshandlerAddr);
  const page = new DataView(file.buffer(msg.range.start, 4096));
  const args = newThreadRequest(region, { view: page, addr: msg.addr }, slotAddr, sharedAddr);
  if (!new SyscallThreadLock(file, msg.range.start).tryAcquire(owner)) throw Errors.Protocol("a fork child's new message is held already", 0);
  const state = file.syscallThreadPost(msg.range.start, abi.STUB_REQUEST_NEW_THREAD, BigUint64Array.from(args));
  return { slot, state };
}
