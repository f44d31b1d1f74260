import { REG } from '../../abi/registers.js';
import { ContextState, THREAD_CONTEXT, MAX_FPSTATE_LEN } from '../../abi/sysmsg.js';
import type { WatchedWord } from '../../shm/watchedWord.js';
import { fromTable } from '../../machines/machineTable.js';
import { TASK_TABLE } from '../../machines/taskTable.js';
import type { TaskEvent } from '../../machines/task.js';

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
  /** The call the stub makes now (the program's, or a substitute): what runs again if a signal the program does not take interrupted it. */
  current?: Substitute;
}

/**
 * Another syscall made in place of the program's (brk as mmap, close_range in two parts).
 *
 * @example
 * ```ts
 * const sub: Substitute = { sysno: SYS.munmap, args: [addr, len], onDone: (ret) => (ret === 0n ? want : cur) };
 * ```
 */
export interface Substitute {
  sysno: number;
  args: bigint[];
  onDone?: (ret: bigint) => bigint | Substitute;
}

/**
 * The task machine compiled into a table: one lookup per event (see CompiledMachine). Read from
 * the table written ahead of time: compiling it here would load xstate into the sentry worker
 * and run the interpreter over every state and event, both at the worker's start.
 */
const LIFECYCLE = fromTable<TaskEvent['type']>(TASK_TABLE);

/** Sees every lifecycle event of every task (the sentry mirrors them to the inspector). */
export type TaskObserver = (t: Task, event: TaskEvent['type']) => void;

/** The call as the stub published it in the handshake and call lines (ThreadContext), as word indices. */
const FAST_SYSNO = THREAD_CONTEXT.fastSysno / 4;
const CALL_ARGS = THREAD_CONTEXT.callArgs / 8;
const CALL_ARGS_HI = THREAD_CONTEXT.callArgsHi / 8;
const CALL_RIP = THREAD_CONTEXT.callRip / 8;
const CALL_RSP = THREAD_CONTEXT.callRsp / 8;

/**
 * One thread of the program (gVisor's kernel.Task, reduced): its platform context's slot, seen
 * through typed arrays over the memory file, its lifecycle (the task machine, see
 * src/machines/task.ts), and the per-thread state the sentry emulates. Owned by the sentry
 * worker; no other thread touches it.
 *
 * @example
 * ```ts
 * const t = new Task(ctx.id, tid, file.buffer(ctx.slot.start, 4096));
 * t.send('SWITCH');      // t.state === 'inStub.running'
 * t.reg('rip');
 * ```
 */
export class Task {
  /** ThreadContext registers (user_regs_struct order), in the shared slot. */
  #regs: BigUint64Array;
  /**
   * A syscall's result not yet written into the slot's rax (see setResult): written there by the
   * first look at the registers, or handed to the stub with the resume. Protected by: the
   * worker's turn.
   */
  #result: bigint | undefined;
  u32: Uint32Array;
  /** The whole slot as 64-bit words (for ContextQueue.resumeWithResult). */
  u64: BigUint64Array;
  /** Its state word as watched while it runs in the stub: it moves when its trap is published (see SentryHost's spin). */
  stateWatch: WatchedWord;
  slot: Uint8Array;
  /** Its context id in the stub, -1 until bound (a new thread waits for its context). */
  id: number;
  /** The task machine's state ('ready', 'inStub.running', 'blocked.futex', …). */
  state: string = LIFECYCLE.initial;
  /** Whether `state` is one of inStub.* (asked of every task at every look for traps; kept by send). */
  #inStub = false;
  /** performance.now() when it last went into the stub (preemption). */
  since = 0;
  /** A signal came for it while it was ready to run: it goes in interrupted (see Scheduler.interrupt). */
  interruptOnRun = false;
  sigmask = 0n;
  /** Mask to restore after rt_sigsuspend delivers a signal. */
  savedMask?: bigint;
  altstack = { sp: 0n, size: 0n, flags: 2 /* SS_DISABLE */ };
  /** Thread-directed signals not yet delivered. */
  readonly pending: Array<{ signo: number; info?: Uint8Array; shown?: boolean }> = [];
  /**
   * The thread's name (prctl PR_SET_NAME/PR_GET_NAME): the sentry's, since the host thread that
   * runs a call is any of the stub's sysmsg threads, named whatever they were named when made.
   * Empty when unknown (the call then goes to the kernel). Protected by: the worker's turn.
   */
  comm = '';
  clearChildTid = 0n;
  robustList = 0n;
  /** The call the stub runs for it at the gadget, while in passthrough. */
  pass?: Passthrough;
  /** FP images saved per signal frame (the frame itself carries none), innermost last. */
  readonly fpStack: Uint8Array[] = [];
  /** The call the task sleeps in (traced when it returns). */
  blocked?: { sysno: number; args: bigint[]; start: bigint };
  /** A nanosleep in the sentry: when it ends (performance.now() time), where the rest goes. */
  sleep?: { deadline: number; rem: bigint };
  /** The futex this task sleeps on. */
  futex?: { key: string; bitset: number; deadline?: number };
  /**
   * In rt_sigtimedwait: the signals it takes instead of having them delivered, where their
   * siginfo goes (0: nowhere), and the mask to restore when the wait ends (the waited signals
   * are unblocked meanwhile, so that a signal sent to them picks this thread).
   */
  sigwait?: { set: bigint; info: bigint; mask: bigint };
  /**
   * How Linux's version of the call the task is in ends when a signal interrupts it: its
   * kernel-internal errno. ERESTARTSYS (wait4, waitid, an untimed futex wait) is restarted when
   * the handler has SA_RESTART; ERESTARTNOHAND (pause, sigsuspend, an absolute sleep) and
   * ERESTART_RESTARTBLOCK (a relative sleep, a timed futex wait) never are; to a handler all are
   * EINTR, which strace shows as `= ? CODE`. Undefined: a plain EINTR (rt_sigtimedwait). Set by
   * the call, ended with it (TrapHandler.finish, restart).
   */
  interruptedAs?: number;
  /** Its first syscall was reported to the context's actor. */
  reported = false;

  /**
   * A task over the ThreadContext `slot` of context `id`, or, with `id` -1, over private memory
   * laid out as a slot until {@link bind} gives it one (a thread whose context the main thread
   * has not handed over yet: it is prepared, not run).
   */
  constructor(
    id: number,
    readonly tid: number,
    slot: ArrayBuffer,
    private readonly observer?: TaskObserver,
  ) {
    this.id = id;
    this.slot = new Uint8Array(slot);
    this.u32 = new Uint32Array(slot);
    this.u64 = new BigUint64Array(slot);
    this.stateWatch = { words: new Int32Array(slot), index: THREAD_CONTEXT.state / 4, value: ContextState.None };
    this.#regs = new BigUint64Array(slot, THREAD_CONTEXT.regs, Object.keys(REG).length);
  }

  /** ThreadContext registers (user_regs_struct order), in the shared slot, the call's result in rax. */
  get regs(): BigUint64Array {
    this.#flushResult();
    return this.#regs;
  }

  /** A result held by {@link setResult} into the slot's rax. */
  #flushResult(): void {
    if (this.#result === undefined) return;
    this.#regs[REG.rax] = this.#result;
    this.#result = undefined;
  }

  /**
   * Sets a syscall's result (rax) without writing the slot yet: the scheduler hands it to the
   * stub thread spinning for this task in the slot's handshake line (ContextQueue.resumeWithResult),
   * so that the sentry writes no cache line of the registers the stub would then fetch back.
   * Anything that looks at the registers first (a signal frame, strace, a fork) sees it there.
   */
  setResult(v: bigint): void {
    this.#result = BigInt.asUintN(64, v);
  }

  /** The result {@link setResult} holds, now the caller's to hand over (undefined if none). */
  takeResult(): bigint | undefined {
    const r = this.#result;
    this.#result = undefined;
    return r;
  }

  /** True once it has a context (see the constructor). */
  get bound(): boolean {
    return this.id >= 0;
  }

  /** Moves the task into its context's slot: registers and FP state copied there. */
  bind(id: number, slot: ArrayBuffer): void {
    this.#flushResult(); // into the slot before it is copied
    const into = new Uint8Array(slot);
    into.set(this.slot.subarray(0, into.length));
    this.id = id;
    this.slot = into;
    this.u32 = new Uint32Array(slot);
    this.u64 = new BigUint64Array(slot);
    this.stateWatch = { words: new Int32Array(slot), index: THREAD_CONTEXT.state / 4, value: ContextState.None };
    this.#regs = new BigUint64Array(slot, THREAD_CONTEXT.regs, Object.keys(REG).length);
  }

  /** Sends a lifecycle event: the task machine decides the next state (unchanged if it ignores it). */
  send(event: TaskEvent['type']): void {
    this.state = LIFECYCLE.next(this.state, event);
    this.#inStub = this.state.startsWith('inStub.');
    this.observer?.(this, event);
  }

  /** In the stub (program code or the gadget): only then can its trap be published. */
  get inStub(): boolean {
    return this.#inStub;
  }

  /** Interrupted in the stub and not back yet: no second interrupt. */
  get kicked(): boolean {
    return this.state === 'inStub.runningKicked' || this.state === 'inStub.passthroughKicked';
  }

  /** Parked in the sentry (futex, sleep, sigsuspend/pause). */
  get parked(): boolean {
    return this.state.startsWith('blocked.');
  }

  get exited(): boolean {
    return this.state === 'exited';
  }

  reg(name: keyof typeof REG): bigint {
    return this.regs[REG[name]];
  }

  setReg(name: keyof typeof REG, v: bigint): void {
    this.regs[REG[name]] = BigInt.asUintN(64, v);
  }

  /** The trapped call's number as the stub published it (orig_rax's low 32 bits, as Linux takes it). */
  get callSysno(): number {
    return this.u32[FAST_SYSNO] | 0;
  }

  /**
   * The trapped call's arguments (rdi, rsi, rdx, r10, r8, r9), as published: the first four from
   * the handshake line, the last two from the call line, read only when `count` (the call's own,
   * see syscallArgCount) is over four: 0n in their place otherwise, and that line stays in the
   * stub's cache.
   */
  callArgs(count = 6): bigint[] {
    const u = this.u64;
    const hi = count > 4;
    return [u[CALL_ARGS], u[CALL_ARGS + 1], u[CALL_ARGS + 2], u[CALL_ARGS + 3], hi ? u[CALL_ARGS_HI] : 0n, hi ? u[CALL_ARGS_HI + 1] : 0n];
  }

  /** rip (the handshake line's) and rsp (the call line's) at the trapped call. */
  get callRip(): bigint {
    return this.u64[CALL_RIP];
  }

  get callRsp(): bigint {
    return this.u64[CALL_RSP];
  }

  /** The FP image saved at the last trap. */
  fpImage(): Uint8Array {
    return this.slot.slice(THREAD_CONTEXT.fpstate, THREAD_CONTEXT.fpstate + MAX_FPSTATE_LEN);
  }

  /** Replaces the FP image; the stub loads it on the next switch. */
  setFpImage(img: Uint8Array): void {
    this.slot.set(img, THREAD_CONTEXT.fpstate);
    // 2: load it even when the context runs on the same stub thread again.
    new DataView(this.slot.buffer, this.slot.byteOffset).setBigUint64(THREAD_CONTEXT.fpstateChanged, 2n, true);
  }
}
