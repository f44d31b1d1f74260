import type { ProgramMemory } from '../kernel/memory.js';
import type { Substitute, Task } from '../kernel/task.js';

export type { Substitute };
import type { FutexTable } from '../kernel/futex.js';
import type { SignalDelivery } from '../kernel/signalDelivery.js';
import type { StracePrinter } from '../strace/printer.js';

/**
 * What handling a syscall comes to: a result for the program; `pass` (the stub runs the call
 * as it is, at the gadget); a substitute call; `blocked` (the task sleeps in the sentry);
 * `noreturn` (the registers were replaced: rt_sigreturn); `execed` (a new image, already
 * traced); `exited` (the task is gone).
 */
export type Outcome = bigint | 'pass' | Substitute | 'blocked' | 'noreturn' | 'execed' | 'exited';

/** The new image execve loaded (see {@link ExecPort.load}). */
export interface LoadedImage {
  entry: bigint;
  sp: bigint;
  brkStart: bigint;
  /** What /proc/self/exe reads as from now on. */
  exe: string;
}

/** The main thread's part of execve: checks before the point of no return, then the load. */
export interface ExecPort {
  /** What execve would fail with before the point of no return (0: it can go on). */
  check(path: string): number;
  /** Unmaps the old image and loads the new one; an errno when that fails (the program is lost). */
  load(path: string, argv: string[], envp: string[]): LoadedImage | number;
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
  /** The program's memory (process_vm_readv/writev). */
  readonly mem: ProgramMemory;
  /** The program's pid (its stub's tgid). */
  readonly tgid: number;
  /** What getppid answers (Node's pid: the program's parent). */
  readonly parentPid: number;
  /** The stub region [start, end): no program mapping may touch it. */
  readonly region: { readonly start: bigint; readonly end: bigint };
  readonly signals: SignalDelivery;
  readonly futexes: FutexTable;
  readonly strace: StracePrinter;
  readonly exec: ExecPort;
  /** What /proc/self/exe reads as. */
  exe: string;
  /** The program break: where it started and where it is. */
  brkStart: bigint;
  brk: bigint;
  /** A live thread of the program by tid. */
  task(tid: number): Task | undefined;
  /** Parks `t` in the sentry (it holds no stub thread) until {@link wake}. */
  park(t: Task, why: 'WAIT_FUTEX' | 'SLEEP' | 'SUSPEND'): void;
  /** Ends a park with `ret` as the result of the call it sleeps in. */
  wake(t: Task, ret: bigint): void;
  /** A new thread, a copy of `parent`'s registers in a new context (clone with CLONE_THREAD). */
  newThread(parent: Task): Task;
  /** The thread `t` ends (exit): CLEARTID and its futex wake, then the group if it was the last. */
  exitThread(t: Task, status: number): void;
  /** Stops every thread but `keep` (execve's de_thread). */
  stopOthers(keep: Task): void;
  exitGroup(status: number): never;
  killGroup(signo: number): never;
}

/** A syscall handler: the call's raw arguments in, what comes of it out. */
export type Handler = (k: SyscallKernel, t: Task, args: bigint[]) => Outcome;

/** A negative errno, as a raw syscall returns it. */
export const err = (errno: number): bigint => -BigInt(errno);
