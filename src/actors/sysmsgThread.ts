import type { ActorRefFrom } from 'xstate';
import type { sysmsgThreadMachine, SysmsgThreadEvent } from '../machines/sysmsgThread.js';
import type { TransactionStep } from '../tracer/protocol.js';
import type { FileRange, MemoryFile } from '../memoryFile.js';
import { PER_THREAD } from '../abi/stub.js';
import { FORWARDED_SIGNALS, MSG, ThreadState } from '../abi/sysmsg.js';
import { SA_ONSTACK, SA_RESTART, SA_RESTORER, SA_SIGINFO, SIG, sigset } from '../abi/linux.js';

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

/** The Msg page of a slot's shared part (`shared`, its alternate stack then the Msg), in `file`. */
export function threadMsgView(file: MemoryFile, shared: FileRange): DataView {
  const v = file.view(shared);
  return new DataView(v.buffer, v.byteOffset + PER_THREAD.msgOffset, 4096);
}

/**
 * A sysmsg thread's effects and its shared memory: the alternate signal stack and the Msg page
 * (gVisor's per-thread shared stack), a range of the memory file. Its lifecycle is the
 * sysmsgThread machine actor (`ref`), driven by the steps of the transaction that creates it.
 */
export class SysmsgThread {
  /** Host tid, once cloned. */
  tid = 0;
  /**
   * Made by the stub's loop (CLONE_THREAD): a thread of the stub's own process, which dies
   * with it and is never anyone's child to reap. False for one a transaction made (a process of
   * its own). Set once, when it is made.
   */
  ofStub = false;

  constructor(
    readonly ref: ActorRefFrom<typeof sysmsgThreadMachine>,
    readonly slot: number,
    /** Shared part of the slot: 12 KiB alternate stack, then the Msg page. */
    readonly shared: FileRange,
    private readonly memoryFile: MemoryFile,
  ) {}

  get state(): string {
    return String(this.ref.getSnapshot().value);
  }

  /** Prepares the Msg for the thread's start (see writeThreadMsg). */
  writeMsg(sharedAddr: bigint, contextAddr: bigint, syshandlerAddr: bigint): void {
    writeThreadMsg(threadMsgView(this.memoryFile, this.shared), this.slot, sharedAddr, contextAddr, syshandlerAddr);
  }

  /** Applies a step of the creating transaction that concerns this thread. */
  apply(step: TransactionStep): void {
    if (this.tid === 0 && step.type !== 'EXITED') {
      this.tid = step.tid;
      this.ref.send({ type: 'CLONED', tid: step.tid });
    }
    if (step.tid !== this.tid) return;
    const map: Partial<Record<TransactionStep['type'], SysmsgThreadEvent>> = {
      ATTACHED: { type: 'ATTACHED' },
      STACK_MAPPED: { type: 'STACK_MAPPED' },
      SECCOMP_INSTALLED: { type: 'SECCOMP_INSTALLED' },
      DETACHED: { type: 'DETACHED' },
      STARTED: { type: 'START' },
      EXITED: { type: 'EXITED', reason: 'died while being created' },
    };
    const ev = map[step.type];
    if (ev) this.ref.send(ev);
  }

  failed(reason: string): void {
    if (this.state !== 'dead') this.ref.send({ type: 'FAILED', reason });
  }

  exited(reason: string): void {
    if (this.state !== 'dead') this.ref.send({ type: 'EXITED', reason });
  }
}
