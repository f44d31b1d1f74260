/**
 * Shared-memory layouts of sysmsg threads and contexts, mirrored from native/stub/sysmsg.h
 * (test/layout.test.ts compiles a C program that prints the C offsets and compares).
 * Offsets in bytes; read and written with DataView (little endian).
 *
 * Everything in these structures can be written by the application: validate what you read.
 */
import { SIG } from './linux.js';

/** `struct sysmsg` (gVisor's Msg): one per sysmsg thread, the last page of its area. */
export const MSG = {
  self: 0x00,
  retAddr: 0x08,
  syshandler: 0x10,
  syshandlerStack: 0x18,
  appStack: 0x20,
  interrupt: 0x28,
  state: 0x2c,
  context: 0x30,
  faultJump: 0x38,
  err: 0x3c,
  errAdditional: 0x40,
  line: 0x44,
  debug: 0x48,
  threadId: 0x50,
  /** The task_attrs generation the thread holds (see TASK_ATTRS). */
  attrsGen: 0x54,
  /**
   * Signals sent to the stub's process that the thread took in the syshandler path: a ring of
   * DEFERRED_SIGNAL entries the thread's handler fills (tail) and the sentry empties (head).
   */
  deferredHead: 0x58,
  deferredTail: 0x5c,
  /** RESUME state: the context whose FP state the thread holds. */
  resumePrev: 0x60,
  /** The kernel's _fpx_sw_bytes of the thread's signal frames (what the syshandler's XSAVE adds). */
  fpxSw: 0x68,
  deferred: 0x98,
} as const;

/** An entry of MSG.deferred: i32 signo, padding, the siginfo (128 bytes). */
export const DEFERRED_SIGNAL = { signo: 0, info: 8, size: 136, count: 16 } as const;

/** `struct thread_context` (gVisor's ThreadContext): one 4 KiB slot per context. */
export const THREAD_CONTEXT = {
  fpstate: 0,
  fpstateChanged: 3584,
  regs: 3592,
  siginfo: 3808,
  signo: 3936,
  threadId: 3944,
  lastThreadId: 3948,
  sigError: 3952,
  /**
   * The call line (native/stub/sysmsg.h): a published syscall's 5th and 6th arguments (r8, r9)
   * and rsp, copied from regs by the stub: read only for a call that takes them.
   */
  callArgsHi: 3968,
  callRsp: 3984,
  /**
   * The handshake line (one cache line, native/stub/sysmsg.h): `state` to `fastRax`, the words
   * both sides write per trap of the direct path, and the published call's rip and first four
   * arguments (`callRip`, `callArgs`: rdi rsi rdx r10). A sentry that reads `fastSysno` and
   * the arguments of a call of up to four, and answers through `fastRax`, touches no other line
   * of the slot.
   */
  state: 4032,
  interrupt: 4036,
  /** Direct-resume handshake: (token << 2) | DIRECT.spinning, swapped to | DIRECT.resumed (or resumedRax) by the sentry. */
  sentryFastPath: 4040,
  /** The trapped call's number as the stub published it (i32 of orig_rax). */
  fastSysno: 4044,
  /** The call's result for a DIRECT.resumedRax resume (the stub moves it into rax). */
  fastRax: 4048,
  callRip: 4056,
  /** The first four arguments (4 u64); the other two are the call line's (`callArgsHi`). */
  callArgs: 4064,
  /** Bytes a slot occupies. */
  allocatedSize: 4096,
} as const;

/** `struct context_queue` (gVisor's contextQueue), cache-line padded by writer. */
export const CONTEXT_QUEUE = {
  end: 0,
  start: 64,
  fastPathDisabled: 128,
  numAwakeContexts: 132,
  numActiveThreads: 192,
  numSpinningThreads: 196,
  numPublished: 200,
  /** Threads of the sentry futex-waiting on numPublished: the stub wakes only when there are some. */
  numSentryWaiters: 204,
  /** 1: the stub handler reads and writes FS base with rdfsbase/wrfsbase (no syscall). */
  fsgsbase: 208,
  /** This stub's token for direct resumes (ThreadContext.sentryFastPath), 30 bits, never 0. */
  directToken: 212,
  /** Bumped by a stub thread that put a signal in its Msg.deferred (see DeferredSignals). */
  numDeferred: 216,
  /** Syscall patching from runner workers (see UserTrap.shared): the next free entry, and a try-lock. */
  usertrapNext: 220,
  usertrapLock: 224,
  /** 1: the syshandler saves FP state with XSAVEOPT (the CPU has it). */
  xsaveopt: 228,
  numThreadsToWakeup: 256,
  numActiveContexts: 320,
  usedFastPath: 324,
  ringbuffer: 384,
  /** The process's task attributes (TASK_ATTRS), written by the sentry. */
  attrs: 33152,
  entries: 4096,
  size: 33880,
} as const;

/**
 * `struct task_attrs`, at CONTEXT_QUEUE.attrs: what Linux keeps per task that every stub thread
 * must hold alike (credentials, resource limits, nice, CPU affinity). Offsets within it.
 */
export const TASK_ATTRS = {
  gen: 0,
  set: 4,
  uid: 8,
  gid: 24,
  ngroups: 40,
  nice: 44,
  affinityLen: 48,
  groups: 56,
  rlimit: 312,
  affinity: 568,
  /** effective, permitted, inheritable (u64 each), then keepcaps (u32). */
  caps: 696,
  keepcaps: 720,
  size: 728,
} as const;

/** TASK_ATTRS.set bits, and its limits (native/stub/sysmsg.h ATTR_*). */
export const ATTR = { creds: 1, nice: 2, affinity: 4, caps: 8, rlimitShift: 8, groupsMax: 64, rlimits: 16, affinityMax: 128 } as const;

/** ThreadContext.sentryFastPath low bits (see native/stub/sysmsg.h). */
export const DIRECT = { none: 0, spinning: 1, resumed: 2, resumedRax: 3 } as const;

/** Thread states (Msg.state). */
export const ThreadState = { None: 0, Done: 1, Prep: 2, Asleep: 3, Initializing: 4, Resume: 5 } as const;

/** Context states (ThreadContext.state). */
export const ContextState = {
  None: 0,
  Syscall: 1,
  Fault: 2,
  SyscallTrap: 3,
  SyscallNeedTrap: 4,
  UnexpectedDeath: 5,
  Invalid: 6,
} as const;

export const MAX_FPSTATE_LEN = 3584;
export const MAX_GUEST_CONTEXTS = 4095;
export const INVALID_CONTEXT_ID = 0xfefefefe;
export const INVALID_THREAD_ID = 0xfefefefe;
export const STUB_ERROR_BASE = 0x0bad0000;

/**
 * Signals whose handler is the stub's (gVisor's sysmsgSigactions), plus those the kernel raises
 * on a thread for its own syscall (SIGPIPE, SIGXFSZ): their default action would kill the sysmsg
 * thread and so the stub; trapped, they reach the sentry, which acts as the program asked.
 */
export const TRAP_SIGNALS: readonly number[] = [SIG.SIGSYS, SIG.SIGSEGV, SIG.SIGBUS, SIG.SIGFPE, SIG.SIGILL, SIG.SIGTRAP, SIG.SIGCHLD, SIG.SIGPIPE, SIG.SIGXFSZ];

/**
 * Signals sent to the stub's process (by the kernel for the program: F_SETOWN's SIGIO; from
 * outside: a kill of the stub's pid) that the stub's threads catch while they run program code
 * and hand to the sentry, which queues them for the program's process. Not the job-control
 * ones (the tracer stops and continues stubs), nor those the stub already traps.
 */
export const FORWARDED_SIGNALS: readonly number[] = [
  SIG.SIGHUP, SIG.SIGINT, SIG.SIGQUIT, SIG.SIGABRT, SIG.SIGUSR1, SIG.SIGUSR2, SIG.SIGALRM, SIG.SIGTERM, SIG.SIGSTKFLT,
  SIG.SIGURG, SIG.SIGXCPU, SIG.SIGVTALRM, SIG.SIGPROF, SIG.SIGWINCH, SIG.SIGIO, SIG.SIGPWR,
  ...Array.from({ length: 33 }, (_, i) => 32 + i),
];
