import { REG } from '../../abi/registers.js';
import { THREAD_CONTEXT, MAX_FPSTATE_LEN } from '../../abi/sysmsg.js';

/** A syscall the stub runs for the task at the passthrough gadget (see native/stub/sysmsg.c). */
export interface Passthrough {
  /** The program's syscall and arguments (what tracing shows). */
  sysno: number;
  args: bigint[];
  /** Return address of the program's `syscall` instruction. */
  rip: bigint;
  /** The program's argument registers, restored if a substitute call changed them. */
  savedArgs: bigint[];
  /** hrtime at the start (for -c). */
  start: bigint;
  /** Turns the result of the call made into the program's result, or makes another call. */
  onDone?: (ret: bigint) => bigint | Substitute;
}

/** Another syscall made in place of the program's (brk as mmap, close_range in two parts). */
export interface Substitute {
  sysno: number;
  args: bigint[];
  onDone?: (ret: bigint) => bigint | Substitute;
}

/** Where a task is (only the sentry worker changes it). */
export type TaskState = 'ready' | 'running' | 'futex' | 'suspended' | 'sleeping' | 'exited';

/**
 * One thread of the program (gVisor's kernel.Task, reduced): its platform context's slot, seen
 * through typed arrays over the memory file, and the per-thread state the sentry emulates.
 * Owned by the sentry worker; no other thread touches it.
 */
export class Task {
  /** ThreadContext registers (user_regs_struct order), in the shared slot. */
  readonly regs: BigUint64Array;
  readonly u32: Uint32Array;
  readonly slot: Uint8Array;
  state: TaskState = 'ready';
  /** performance.now() when queued (preemption). */
  since = 0;
  sigmask = 0n;
  /** Mask to restore after rt_sigsuspend delivers a signal. */
  savedMask?: bigint;
  altstack = { sp: 0n, size: 0n, flags: 2 /* SS_DISABLE */ };
  /** Thread-directed signals not yet delivered. */
  readonly pending: Array<{ signo: number; info?: Uint8Array }> = [];
  clearChildTid = 0n;
  robustList = 0n;
  pass?: Passthrough;
  /** FP images saved per signal frame (the frame itself carries none), innermost last. */
  readonly fpStack: Uint8Array[] = [];
  /** The call the task sleeps in (traced when it returns). */
  blocked?: { sysno: number; args: bigint[]; start: bigint };
  /** A nanosleep in the sentry: when it ends (performance.now() time), where the rest goes. */
  sleep?: { deadline: number; rem: bigint };
  /** The futex this task sleeps on. */
  futex?: { addr: bigint; bitset: number; deadline?: number };
  /** Interrupted by the sentry (signal, preemption) and not yet back. */
  interrupted = false;
  /** Its first syscall was reported to the context's actor. */
  reported = false;
  /** The next trap is a preemption only: requeue without more. */
  preempted = false;

  constructor(
    readonly id: number,
    readonly tid: number,
    slot: ArrayBuffer,
  ) {
    this.slot = new Uint8Array(slot);
    this.u32 = new Uint32Array(slot);
    this.regs = new BigUint64Array(slot, THREAD_CONTEXT.regs, Object.keys(REG).length);
  }

  reg(name: keyof typeof REG): bigint {
    return this.regs[REG[name]];
  }

  setReg(name: keyof typeof REG, v: bigint): void {
    this.regs[REG[name]] = BigInt.asUintN(64, v);
  }

  /** The FP image saved at the last trap. */
  fpImage(): Uint8Array {
    return this.slot.slice(THREAD_CONTEXT.fpstate, THREAD_CONTEXT.fpstate + MAX_FPSTATE_LEN);
  }

  /** Replaces the FP image; the stub loads it on the next switch. */
  setFpImage(img: Uint8Array): void {
    this.slot.set(img, THREAD_CONTEXT.fpstate);
    new DataView(this.slot.buffer, this.slot.byteOffset).setBigUint64(THREAD_CONTEXT.fpstateChanged, 2n, true); // 2: load it even on the same thread
  }
}
