import type { ProbeCreds } from '../native.js';
import type { AttrValues } from './kernel/taskAttrs.js';
/**
 * Messages between a program's thread group on the main thread (src/sentry/run.ts) and its
 * sentry on a runner worker (workers/sentry.ts). The worker handles every trap of the program
 * without crossing threads; it asks the main thread only for what needs the actor system or
 * the syscall thread: a context for a new thread, more sysmsg threads, a fork, a new image
 * (execve) when it cannot load it itself (see kernel/localExec.ts).
 * Requests are answered on the same port; the worker blocks on a shared counter meanwhile.
 */
import type { FileRange } from '../memoryFile.js';
import type { SyscallMsg } from '../platformPort.js';

export type { SyscallMsg };
import type { MessagePort } from 'node:worker_threads';
import type { MemoryFileRef } from '../shm/sharedFile.js';
import type { TaskEvent } from '../machines/task.js';
import type { InjectWhen } from './strace/inject.js';
import type { TraceStyle } from './strace/style.js';
import type { SummarySort } from './strace/summary.js';

/** What the sentry worker is given to run a program. */
export interface SentryTask {
  /** The platform's memory file (the stub's queue and the contexts' slots are ranges of it). */
  memory: MemoryFileRef;
  queue: FileRange;
  pid: number;
  /** The stub's pid in its own pid namespace: what the program sees as its pid (= pid when not sandboxed). */
  nsPid: number;
  /** Node's pid: what the program's getppid() answers when not sandboxed. */
  nodePid: number;
  /**
   * The stub is in a sandbox of its own: its parent there is the sandbox's init (pid 1), and
   * Node, outside the namespace, sends signals as pid 0.
   */
  sandboxed: boolean;
  /** The stub region: its bounds, the passthrough gadget, and what a NEW_THREAD request names (a fork the sentry makes, see localFork.ts). */
  region: { start: bigint; end: bigint; gadgetAddr: bigint; sighandlerAddr: bigint; restorerAddr: bigint; syshandlerAddr: bigint };
  maxSysmsgThreads: number;
  /** The first thread: its context and registers (user_regs_struct order). */
  main: { id: number; slot: FileRange; regs: BigUint64Array };
  brkStart: bigint;
  /** The program's executable, absolute (what /proc/self/exe reads as). */
  exe: string;
  /** Syscall patching, when on and its table could be mapped. */
  usertrap?: UsertrapSpec;
  /** The stub's rules area (its program filter), where the sentry writes the trace ring's spec. */
  rules?: FileRange;
  /** The first stub's syscall-thread message in `memory`: the sentry posts an execve's calls there itself. */
  syscallMsg?: SyscallMsg;
  /** execve checked and loaded by the sentry itself (see localExec.ts); false: by the main thread (scenario faults at exec). */
  localExec?: boolean;
  /** fork made by the sentry itself when it can (see localFork.ts); false: by the main thread (scenario faults, test seams). */
  localFork?: boolean;
  /** How long loading it took, in ns (the first execve line's time with -T, and in -c). */
  loadNs?: number;
  /** The first thread's name (the file name it was started as; see Task.comm). */
  comm?: string;
  /** Shared counter the main thread bumps (and notifies) when it posts to `port`. */
  mail: SharedArrayBuffer;
  port: MessagePort;
  trace: TraceOptions;
  /** Report every task's lifecycle events (the platform is inspected): see `taskEvents`. */
  mirror: boolean;
}

/** Tracing and policy, as parsed from the command line (numbers are syscall numbers). */
export interface TraceOptions {
  /** Syscalls printed strace-like. */
  trace: number[];
  /** Where lines go (an fd the worker writes to), -1 for nowhere. */
  outFd: number;
  /**
   * `-ff -o PREFIX`: each process's lines go to PREFIX.PID (its pid as the program sees it),
   * without `[pid N]`; the `-c` table and the lines of no process still go to `outFd`.
   */
  perProcess?: string;
  /** Count calls, errors and time per syscall (`-c`). */
  summary: boolean;
  /** With `summary`: the syscalls counted (`-c -e trace=SET`); undefined: every one. */
  counted?: number[];
  /** With `summary`: the table's order (`-S`); default by time. */
  sortBy?: SummarySort;
  /** `-e inject=`: the call is not made; it returns -error or retval. */
  inject: Array<{ syscalls: number[]; error?: number; retval?: bigint; when?: InjectWhen }>;
  /** `--policy FILE.mjs`: a module URL exporting handle(call). */
  policy?: string;
  /**
   * `--deny`ed calls that trap (traced, counted, or every call under a policy), as [sysno,
   * errno]: the sentry refuses them, so that the trace shows them (see programFilter's deny).
   */
  denied?: Array<[number, number]>;
  /** strace's output options (`-t`, `-T`, `-y`, `-s`, `-f`...); missing fields take strace's defaults. */
  style?: Partial<TraceStyle>;
  /** Lines go to a file (`-o`): with `-f`, each line starts with its pid, as strace writes files. */
  toFile?: boolean;
  /**
   * Observe-only calls through the stub's trace ring (src/sentry/traceRingSpec.ts): the stub
   * makes and records them itself, no round trip. Default on; false: every traced call traps.
   */
  ring?: boolean;
  /** Bytes of the ring's data area used (a power of two, 4096 to 1 MiB; default all): small ones fill, for tests. */
  ringSize?: number;
}

/** What the trace ring did in a run (see TraceRing). */
export interface RingStats {
  /** Calls the stubs made and recorded themselves. */
  records: number;
  /** Times a stub thread found its ring full and waited for the sentry. */
  fullWaits: number;
  /** Argument copies cut short by a fault (memory another thread unmapped). */
  faults: number;
  /** Times a ring held what no stub writes (the program wrote over it): its records were skipped. */
  corrupt: number;
}

/** How the program ended; `traps`: syscalls and faults that reached the sentry. */
export type SentryResult = (
  | { kind: 'exited'; status: number }
  | { kind: 'killed'; signal: number }
  | { kind: 'error'; code: string; message: string }
) & { summary?: string; traps?: number; patched?: { sites: number; calls: number }; ring?: RingStats; execs?: { sentry: number; main: number }; forks?: { sentry: number; main: number } };

/** Worker → main. Requests carry `req`; their reply carries it back. `pid`: which process (as the program sees it). */
export type SentryRequest =
  | { type: 'newContext'; req: number; pid: number }
  /** More tasks are runnable than sysmsg threads awake: make or wake one. */
  | { type: 'needThread'; pid: number }
  /** Lifecycle events of tasks since the last batch, in order: [tid, event]. */
  | { type: 'taskEvents'; events: Array<[number, TaskEvent['type']]> }
  /** `creds`: the program's filesystem ids and groups, when it changed them (see TaskAttrs.creds). */
  /** `load`: the process has no other thread, so nothing waits between the check and the load: load at once (as execLoad). */
  | { type: 'execCheck'; req: number; pid: number; path: string; creds?: ProbeCreds; load?: ExecLoadArgs }
  | ({ type: 'execLoad'; req: number; pid: number } & ExecLoadArgs)
  | { type: 'contextEvent'; pid: number; id: number; event: 'syscall'; sysno: number }
  | { type: 'contextExit'; pid: number; id: number }
  /** Fork process `pid`'s address space (see AddressSpace.fork); the child's first context with it. */
  /** `pidfd`: CLONE_PIDFD, a pidfd for the child made in the parent (ForkedProcess.pidfd). */
  /** `attrs`: the parent's credentials and limits, which its syscall thread takes on first (the child's are a copy of its). */
  | { type: 'fork'; req: number; pid: number; pidfd?: boolean; attrs?: { gen: number; values: AttrValues } }
  /**
   * Process `pid` was forked by the sentry itself (see localFork.ts): its child `child` (as the
   * program sees it) runs already; the main thread takes over its control memory (`fd`, Node's,
   * to close) and makes its actors, its first context the one the sentry bound (`mainId`).
   */
  | { type: 'forkedHere'; pid: number; child: number; hostPid: number; nsPid: number; fd: number; first: { slot: number; state: number }; mainId: number }
  /** The answer (`ret`: a tid, or -errno) to the first-thread request of a child the sentry forked (see PostedFirstThread). */
  | { type: 'firstThread'; pid: number; ret: bigint }
  /** A fork child the sentry made and could not set up: killed; the main thread reaps it where Node must. */
  | { type: 'forkLost'; hostPid: number }
  /** Process `pid` ended: its stub and contexts go. */
  | { type: 'processExit'; pid: number }
  /** Take the signals of `set` pending for process `pid`'s stub, which none of its threads would take (see StubSignals). */
  | { type: 'takeSignals'; req: number; pid: number; set: bigint }
  /** A process's lifecycle, when the platform is inspected (see machines/process.ts); START: it exists. */
  | { type: 'processEvent'; pid: number; parent: number; event: 'START' | 'STOP' | 'CONTINUE' | 'EXIT' | 'REAP'; status?: number; signal?: number }
  /** The first process stopped (by `signo`) or continued: a shell's job would too (see ProgramHandle.onStop). */
  | { type: 'rootStopped'; stopped: boolean; signo: number };

/**
 * What execve loads (an execLoad request, or an execCheck's `load`).
 *
 * @example
 * ```ts
 * const a: ExecLoadArgs = { path: './x.sh', argv: ['x.sh'], envp: [] };
 * ```
 */
export interface ExecLoadArgs {
  path: string;
  /** The file to open instead of `path`, which stays the name. */
  file?: string;
  argv: string[];
  envp: string[];
}

/**
 * The main thread's answer to a load: errno 0 and the new image, or the errno it failed with.
 *
 * @example
 * ```ts
 * const r: ExecLoadResult = { errno: 0, entry, sp, brkStart, exe: '/usr/bin/true' };
 * ```
 */
export interface ExecLoadResult {
  errno: number;
  entry?: bigint;
  sp?: bigint;
  brkStart?: bigint;
  exe?: string;
  /** Where the new image's syscall patching table is mapped (see usertrap.ts), if patching is on and it could be. */
  usertrapTable?: bigint;
}

/** A program's syscall patching: where its table is mapped, which calls' sites it patches, where they jump. */
export interface UsertrapSpec {
  table: bigint;
  calls: number[];
  /** The stub's systrap_syshandler (StubRegion.syshandlerAddr). */
  syshandler: bigint;
}

/** A signal a stub's syscall thread took for its process (see StubSignals, 'takeSignals'). */
export interface TakenSignal {
  signo: number;
  /** Its siginfo as the kernel filled it (128 bytes). */
  info: Uint8Array;
}

/** A forked process as the main thread made it (see ProcessSpec). */
export interface ForkedProcess {
  /** The child's stub's pid as Node sees it, and as the program does. */
  hostPid: number;
  pid: number;
  memory: MemoryFileRef;
  queue: FileRange;
  main: { id: number; slot: FileRange };
  /** CLONE_PIDFD: the fd number of the parent's pidfd for the child. */
  pidfd?: number;
  /** The child's syscall-thread message in `memory` (see SentryTask.syscallMsg). */
  syscallMsg?: SyscallMsg;
}

/** Main → worker. */
export type SentryMail =
  | { type: 'context'; req: number; id: number; slot: FileRange }
  /** `loaded`: the load that followed a check asked with `load`. */
  | { type: 'execChecked'; req: number; errno: number; loaded?: ExecLoadResult }
  | ({ type: 'execLoaded'; req: number } & ExecLoadResult)
  | ({ type: 'forked'; req: number; errno: number } & Partial<ForkedProcess>)
  | { type: 'threads'; pid: number; tids: Array<[number, number]> }
  | { type: 'signal'; signo: number }
  | { type: 'signalsTaken'; req: number; signals: TakenSignal[] }
  /** The main thread could not answer; `gone`: the request's process had ended (the reply is moot). */
  | { type: 'failed'; req: number; message: string; gone?: boolean; stubDead?: boolean };
