import type { ProgramMemory } from '../kernel/memory.js';
import type { Substitute, Task } from '../kernel/task.js';

export type { Substitute };
import type { FutexTable } from '../kernel/futex.js';
import type { SignalDelivery } from '../kernel/signalDelivery.js';
import type { ProcessTimers } from '../kernel/timers.js';
import type { TaskAttrs } from '../kernel/taskAttrs.js';
import type { ProcessCpuClock } from '../kernel/cpuClock.js';
import type { StracePrinter } from '../strace/printer.js';
import type { Proc, ProcessTree } from '../kernel/process.js';
import type { UserTrap } from '../../shm/usertrap.js';

/**
 * What handling a syscall comes to: a result for the program; `pass` (the stub runs the call
 * as it is, at the gadget); a substitute call; `blocked` (the task sleeps in the sentry);
 * `noreturn` (the registers were replaced: rt_sigreturn); `execed` (a new image, already
 * traced); `exited` (the task is gone).
 */
/** `restart`: the call ends with ERESTARTSYS and runs again once its signals are taken (Linux's restart of a call a signal stopped). */
export type Outcome = bigint | 'pass' | Substitute | 'blocked' | 'noreturn' | 'execed' | 'exited' | 'restart';

/** The new image execve loaded (see {@link ExecPort.load}). */
export interface LoadedImage {
  entry: bigint;
  sp: bigint;
  brkStart: bigint;
  /** What /proc/self/exe reads as from now on. */
  exe: string;
  /** Where the new image's syscall patching table is, if patching is on and it could be mapped. */
  usertrapTable?: bigint;
}


/**
 * Everything syscall handlers may use of the kernel (gVisor's `t.Kernel()`, `t.MemoryManager()`,
 * … for a sentry whose program maps its own memory). Each family of handlers declares the part
 * it uses (`Pick<SyscallKernel, …>`), so what a family depends on is written down at its top.
 * The Kernel implements it.
 *
 * @example
 * ```ts
 * type IdentityKernel = Pick<SyscallKernel, 'tgid' | 'parentPid'>;
 * const getpid = (k: IdentityKernel) => BigInt(k.tgid);
 * ```
 */
export interface SyscallKernel {
  /** The program tree (processes, fork, wait, signals between processes). */
  readonly tree: ProcessTree;
  /** The process itself, as the tree knows it. */
  readonly self: Proc;
  /** Its process group and session (emulated: see sys_process.ts). */
  pgid: number;
  sid: number;
  /** The program's memory (process_vm_readv/writev). */
  readonly mem: ProgramMemory;
  /** The program's pid (its stub's tgid). */
  readonly tgid: number;
  /** What getppid answers (Node's pid: the program's parent). */
  readonly parentPid: number;
  /** The stub region [start, end): no program mapping may touch it. */
  readonly region: { readonly start: bigint; readonly end: bigint };
  readonly signals: SignalDelivery;
  /** Its credentials, limits, nice and affinity, kept alike on its stub threads (see TaskAttrs). */
  readonly attrs: TaskAttrs;
  /** Its stub's pid as Node sees it. */
  readonly hostPid: number;
  /** Its CPU clock (CLOCK_PROCESS_CPUTIME_ID, see ProcessCpuClock). */
  readonly cpuClock: ProcessCpuClock;
  /** Its itimers and POSIX timers (see ProcessTimers). */
  readonly timers: ProcessTimers;
  readonly futexes: FutexTable;
  readonly strace: StracePrinter;
  /** What /proc/self/exe reads as. */
  exe: string;
  /** The program break: where it started and where it is. */
  brkStart: bigint;
  brk: bigint;
  /** Syscall patching of this address space, if on (an execve replaces it). */
  usertrap?: UserTrap;
  /** Its live threads, by tid. */
  readonly tasks: ReadonlyMap<number, Task>;
  /** A live thread of the program by tid. */
  task(tid: number): Task | undefined;
  /** Parks `t` in the sentry (it holds no stub thread) until {@link wake}. */
  park(t: Task, why: 'WAIT_FUTEX' | 'SLEEP' | 'SUSPEND' | 'WAIT_EXEC'): void;
  /** Ends a park with `ret` as the result of the call it sleeps in. */
  wake(t: Task, ret: bigint): void;
  /**
   * Runs `fn` once the syscall being handled has returned (its result set and traced), before
   * the task takes its pending signals: what a process does to itself in a call that must
   * return first (kill of itself: Linux returns 0 to the sender, then it dies).
   */
  afterCall(fn: () => void): void;
  /**
   * A new thread, a copy of `parent`'s registers (clone with CLONE_THREAD). It runs once its
   * context arrives from the main thread; its tid is valid at once.
   */
  newThread(parent: Task): Task;
  /**
   * Starts execve for `t` (which waits parked): the main thread's checks, the other threads
   * dropped, the new image loaded; `onLoaded` then sets the task up for it. A failed check ends
   * the call with its errno; a failed load kills the program.
   */
  execve(t: Task, args: { path: string; argv: string[]; envp: string[] }, onLoaded: (img: LoadedImage) => void): void;
  /** The thread `t` ends (exit): CLEARTID and its futex wake, then the group if it was the last. */
  exitThread(t: Task, status: number): void;
  exitGroup(status: number): never;
  killGroup(signo: number): never;
}

/** A syscall handler: the call's raw arguments in, what comes of it out. */
export type Handler = (k: SyscallKernel, t: Task, args: bigint[]) => Outcome;

/** A negative errno, as a raw syscall returns it. */
export const err = (errno: number): bigint => -BigInt(errno);
