import type { TaskAttrs } from './taskAttrs.js';
/**
 * The shapes a process, the tree of processes and its table have for whoever uses them without
 * owning them: syscall handlers, the process table, a process's own code reaching its tree.
 * The classes are ThreadGroup (a process), Kernel (the tree) and ProcessTable; these interfaces
 * keep the modules that meet them free of cycles.
 *
 * @example
 * ```ts
 * function parentOf(p: Proc): number { return p.parent?.tgid ?? 1; }
 * ```
 */
import type { CpuTime } from './cpuTime.js';
import type { PidfdNames } from './pidfds.js';
import type { SignalfdTable } from './signalfd.js';
import type { JobReport } from './jobControl.js';
import type { Task } from './task.js';
import type { ProgramMemory } from './memory.js';
import type { SignalDelivery } from './signalDelivery.js';
import type { FutexTable } from './futex.js';
import type { StracePrinter } from '../strace/printer.js';
import type { Policy } from '../policy.js';
import type { WatchedWord } from '../../shm/watchedWord.js';
import type { FileRange } from '../../memoryFile.js';
import type { RingStats, SentryMail, SentryRequest } from '../protocol.js';
import type { Reply, RequestBody } from './mailbox.js';

/** How a process ended (what wait reports). */
export type ProcessEnd = { kind: 'exited'; status: number } | { kind: 'killed'; signal: number };

/** A process of the tree as others see it (ThreadGroup). */
export interface Proc {
  /** Its pid as the program sees it. */
  readonly tgid: number;
  /** Its stub's pid as Node sees it. */
  readonly hostPid: number;
  readonly mem: ProgramMemory;
  readonly signals: SignalDelivery;
  /** Its credentials and limits (a fork's child starts with a copy). */
  readonly attrs: TaskAttrs;
  /** Its parent in the tree; undefined: the tree's own parent (Node, or a sandbox's init). */
  parent?: Proc;
  readonly children: Set<Proc>;
  pgid: number;
  sid: number;
  /** The signal its parent gets when it ends (clone's exit signal; 0 for none). */
  exitSignal: number;
  /** PR_SET_PDEATHSIG: the signal it gets when its parent ends (0: none). */
  pdeathSignal: number;
  /** PR_SET_CHILD_SUBREAPER. */
  subreaper: boolean;
  /** How it ended (a zombie until its parent waits for it). */
  end?: ProcessEnd;
  /** The CPU it used, taken as it ended (see stubCpuTime). */
  cpu?: CpuTime;
  /** What its children used, each added when it waited for them (and theirs), as Linux's cutime. */
  childCpu?: CpuTime;
  /** Job control: stopped or not, and the change its parent has not waited for yet. */
  readonly job: { readonly stopped: boolean; report?: JobReport };
  reaped: boolean;
  readonly live: boolean;
  /** Runs `fn` in this process's own turn (see ThreadGroup.defer). */
  defer(fn: () => void): void;
  /** Wakes its task `t`, parked in the sentry, with `ret` as its call's result. */
  wake(t: Task, ret: bigint): void;
}

/** Which children a wait is for (wait4's pid, waitid's idtype and id). */
export type WaitSelect = { kind: 'any' } | { kind: 'pid'; pid: number } | { kind: 'pgid'; pgid: number };

/** A wait4 or waitid call: which children, its options, where its answer goes. */
export interface WaitCall {
  kind: 'wait4' | 'waitid';
  select: WaitSelect;
  options: bigint;
  /** wait4: the status word's address (0: none); waitid: the siginfo's. */
  out: bigint;
  /** struct rusage's address (0: none). */
  rusage: bigint;
}

/** What a fork asks for (clone's flags and arguments, read by the handler). */
export interface ForkOptions {
  /** CLONE_VFORK: the parent's thread waits until the child execs or ends. */
  vfork: boolean;
  /** CLONE_PARENT: the child is its parent's sibling. */
  sameParent: boolean;
  /** The signal the parent gets when the child ends (0: none). */
  exitSignal: number;
  /** The child's stack pointer (0: the parent's). */
  stack: bigint;
  tls?: bigint;
  childSetTid?: bigint;
  childClearTid?: bigint;
  parentSetTid?: bigint;
  /** CLONE_PIDFD: where the parent's pidfd for the child goes (an int). */
  pidfdAt?: bigint;
}

/** The table of the tree's processes and threads (ProcessTable). */
export interface ProcTable {
  process(pid: number): Proc | undefined;
  thread(tid: number): { task: Task; process: Proc } | undefined;
  /** Every process, live or zombie. */
  all(): Iterable<Proc>;
  /** wait4/waitid (see ProcessTable.wait). */
  wait(p: Proc, t: Task, call: WaitCall): bigint | undefined;
  addThread(t: Task, p: Proc): void;
  removeThread(tid: number): void;
  /** What the program's pidfds name (see PidfdNames). */
  readonly pidfds: Pick<PidfdNames, 'resolve'>;
  /** The program's signalfds (see SignalfdTable). */
  readonly signalfds: SignalfdTable;
}

/** The tree as syscall handlers use it (Kernel). */
export interface ProcessTree {
  readonly table: ProcTable;
  readonly root: Proc;
  readonly sandboxed: boolean;
  /** The first process's parent, outside the tree: Node's pid, or the sandbox's init (1). */
  readonly outsideParentPid: number;
  readonly futexes: FutexTable;
  /** The controlling terminal's foreground group (undefined: the first process's group; see sys_tty.ts). */
  readonly terminal: { foreground?: number; device?: string };
  /** fork/vfork/clone of process `p` by its thread `t` (see Kernel.fork). */
  fork(p: Proc, t: Task, o: ForkOptions): 'blocked';
  /** Wakes `t` in its own process's turn. */
  wakeTask(t: Task, ret: bigint): void;
  /** No process of group `pgid` has a parent in another group of its session (POSIX's orphaned group). */
  orphanedGroup(pgid: number): boolean;
}

/**
 * The sentry's own execves (see localExec.ts). Protected by: the worker's turn.
 *
 * @example
 * ```ts
 * if (tree.localExec && tree.localExec.pending > 0) yieldToMicrotasks();
 * ```
 */
export interface LocalExecState {
  /** Under way in promises (every call blocks this thread): the host lets them run before it sleeps. */
  pending: number;
  /** Execves loaded by the sentry, and those it asked of the main thread (the loop was busy). */
  here: number;
  main: number;
}

/** The tree as a process's own code uses it (Kernel): its mail, its shared parts. */
export interface TreeHost extends ProcessTree {
  readonly strace: StracePrinter;
  /** Observed calls go through the stubs' trace rings: their data size, and the counts of processes that ended. */
  readonly traceRing?: { readonly size: number; readonly calls: ReadonlySet<number>; readonly stats: RingStats };
  readonly policy: Policy;
  readonly region: { readonly start: bigint; readonly end: bigint; readonly gadgetAddr: bigint };
  /**
   * The execves the sentry checks and loads itself (see localExec.ts); undefined: every one goes
   * through the main thread (scenario faults at exec are armed).
   */
  readonly localExec?: LocalExecState;
  readonly maxSysmsgThreads: number;
  readonly senderPid: number;
  readonly mailCounter: WatchedWord;
  readonly taskObserver: ((t: Task, e: import('../../machines/task.js').TaskEvent['type']) => void) | undefined;
  /** The process whose turn it is. */
  readonly current?: Proc;
  post(msg: SentryRequest): void;
  request<T extends SentryMail['type']>(body: RequestBody, replyType: T, onReply: (r: Reply<T>) => void): void;
  requestContext(p: Proc, onReply: (r: { id: number; slot: FileRange }) => void): void;
  allocateTid(): number;
  forgetWaiter(t: Task): void;
  execed(p: Proc): void;
  /** `p` stopped or continued: its parent hears of it (SIGCHLD, waits). */
  jobChanged(p: Proc): void;
  /** No process of group `pgid` has a parent in another group of its session (POSIX's orphaned group). */
  orphanedGroup(pgid: number): boolean;
  flush(): void;
}
