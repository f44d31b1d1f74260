import type { ActorRefFrom } from 'xstate';
import type { sysmsgThreadMachine, SysmsgThreadEvent } from '../machines/sysmsgThread.js';
import type { TransactionStep } from '../tracer/protocol.js';
import type { FileRange, MemoryFile } from '../memoryFile.js';
import { PER_THREAD } from '../abi/stub.js';

/**
 * A sysmsg thread's effects and its shared memory: the alternate signal stack and the Msg page
 * (gVisor's per-thread shared stack), a range of the memory file. Its lifecycle is the
 * sysmsgThread machine actor (`ref`), driven by the steps of the transaction that creates it.
 */
export class SysmsgThread {
  /** Host tid, once cloned. */
  tid = 0;

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

  /**
   * Writes the stack_t that sigaltstack will read (at the start of the Msg page) and returns
   * its stub address. `sharedAddr` is where the shared part is mapped in the stub.
   */
  writeStackT(sharedAddr: bigint): bigint {
    const v = this.memoryFile.view(this.shared);
    const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
    const at = PER_THREAD.msgOffset;
    dv.setBigUint64(at, sharedAddr, true); // ss_sp
    dv.setInt32(at + 8, 0, true); // ss_flags
    dv.setBigUint64(at + 16, BigInt(PER_THREAD.altStackSize), true); // ss_size
    return sharedAddr + BigInt(at);
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
