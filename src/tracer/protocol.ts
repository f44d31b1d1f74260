import type { SerializedError } from '../errors.js';

/**
 * Typed messages to the tracer pool. They replace gVisor's per-subprocess `requests chan any`
 * (requestStub, requestThread) and its direct ptrace calls: each request is one ptrace
 * transaction (attach → work → detach) run start to end on one tracer worker thread.
 */

/** A stub thread the tracer may attach to, with its injection template (gVisor's thread). */
export interface ThreadRef {
  /** Thread group id of the stub process. */
  tgid: number;
  /** The thread's id (for the syscall thread, equal to tgid). */
  tid: number;
  /**
   * Registers captured at the stub's SIGSTOP (gVisor's initRegs), 27 words. Absent for a stub no
   * tracer has held yet (a sandboxed one that prepared itself): the tracer takes them from the
   * thread once attached (see TracedThread.attachFor).
   */
  initRegs?: BigUint64Array;
  /** Address of the stub's `syscall` instruction (StubRegion.syscallAddr), for that case. */
  syscallAddr: bigint;
}

/** Where a syscall thread's service loop lives, to detach back into it. */
export interface SyscallLoop {
  /** Stub address of the 2-page message. */
  msgAddr: bigint;
  /** Current value of the message's state word (the loop's "last served" state). */
  state: number;
}

/** Named points of a transaction where a fault can be injected (scenario tests). */
export type TransactionPoint = 'attach' | 'attached' | 'injecting' | 'detaching';

/** A fault to inject at a point of the transaction. */
export interface TransactionFault {
  at: TransactionPoint;
  /**
   * kill: SIGKILL the stub; delay: sleep `ms` on the tracer thread; fail: the ptrace request
   * at that point fails with `errno` (as a refused PTRACE_ATTACH would: EPERM by default).
   */
  action: 'kill' | 'delay' | 'fail';
  ms?: number;
  errno?: number;
}

/** A program's stub in a sandbox of its own (see native forkSandbox): its init and itself. */
export interface CreateSandboxResult {
  initPid: number;
  stubPid: number;
}

/** Every request carries a transaction id, added by the TracerPool, to match live steps. */
export type TracerRequest = TracerRequestBody & { txn?: number };

export type TracerRequestBody =
  | { op: 'createSource'; memfd: number; regionStart: bigint; regionRoEnd: bigint; regionEnd: bigint; taskSize: bigint }
  | { op: 'createSandbox'; memfd: number; regionStart: bigint; regionRoEnd: bigint; regionEnd: bigint; taskSize: bigint }
  | { op: 'requestStub'; source: ThreadRef; fault?: TransactionFault }
  | {
      op: 'initStub';
      tgid: number;
      msgAddr: bigint;
      msgFileOffset: number;
      rulesAddr: bigint;
      rulesFileOffset: number;
      rulesSize: number;
      fault?: TransactionFault;
    }
  | {
      op: 'requestThread';
      /** The stub's syscall thread, which clones the new thread. */
      thread: ThreadRef;
      loop?: SyscallLoop;
      /** Stub address of the new thread's per-thread slot. */
      slotAddr: bigint;
      /** Stub address of a stack_t for sigaltstack, inside the shared part. */
      stackTAddr: bigint;
      /** Stub address of the sock_fprog of the sysmsg-thread filter. */
      fprogAddr: bigint;
      /** Stub address of the kernel sigaction to install for the trapping signals. */
      sigactionAddr: bigint;
      /** Start the thread into its handler (fake SIGSEGV) instead of leaving it parked. */
      start: boolean;
      fault?: TransactionFault;
    }
  | {
      op: 'inject';
      thread: ThreadRef;
      sysno: number;
      args: bigint[];
      loop?: SyscallLoop;
      fault?: TransactionFault;
    };

/** One step of a transaction, replayed into the thread's syscallThread actor. */
export interface TransactionStep {
  tid: number;
  type:
    | 'ATTACHED'
    | 'INJECT'
    | 'INJECTED'
    | 'CLONE'
    | 'CLONED'
    | 'DETACH'
    | 'DETACHED'
    | 'EXITED'
    | 'STACK_MAPPED'
    | 'SECCOMP_INSTALLED'
    | 'STARTED';
}

/** A step reported live by a tracer worker while its transaction runs. */
export interface StepMessage {
  txn: number;
  seq: number;
  step: TransactionStep;
}

/** What a transaction returns: its value or its error, and the steps it took either way. */
export type TracerResponse<T = unknown> =
  | { ok: true; value: T; steps: TransactionStep[]; tracerTid: number }
  | { ok: false; error: SerializedError; steps: TransactionStep[]; tracerTid: number };

export interface CreateSourceResult {
  pid: number;
  initRegs: BigUint64Array;
}

export interface InjectResult {
  /** The syscall's return value (negative: -errno). */
  ret: bigint;
  /** Signal stops swallowed while the syscall ran. */
  signalStops: number;
  /** Times the syscall was seen interrupted with -ERESTART* (at a signal stop or at the trap). */
  restarts: number;
  /** OS thread id of the tracer worker that ran the transaction. */
  tracerTid: number;
}
