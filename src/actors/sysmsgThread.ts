import type { ActorRefFrom } from 'xstate';
import type { sysmsgThreadMachine, SysmsgThreadEvent } from '../machines/sysmsgThread.js';
import type { TransactionStep } from '../tracer/protocol.js';
import type { FileRange, MemoryFile } from '../memoryFile.js';
import { PER_THREAD } from '../abi/stub.js';
import { writeThreadMsg } from '../shm/threadRequest.js';

export { writeSigaction, writeStackT, writeThreadMsg, type ArgumentPage } from '../shm/threadRequest.js';

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
