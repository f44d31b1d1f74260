import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** A decoded wait4 status. */
export type WaitStatus =
  | { kind: 'stopped'; pid: number; signal: number; event: number }
  | { kind: 'exited'; pid: number; status: number }
  | { kind: 'signaled'; pid: number; signal: number }
  | { kind: 'continued'; pid: number }
  | { kind: 'unknown'; pid: number; status: number };

/** The credentials an execve check is made with (a program's filesystem ids and groups). */
export interface ProbeCreds {
  uid: number;
  gid: number;
  groups: number[];
}

/** The native MemoryFile (see native/memfile.cc). */
/**
 * A file as execve's checks see it (see NativeAddon.execProbe).
 *
 * @example
 * ```ts
 * const probe = await native.execProbe('/bin/true', 4096); // { mode: 0o100755, size, executable: true, head }
 * ```
 */
export interface ExecProbe {
  /** st_mode. */
  mode: number;
  /** st_size. */
  size: number;
  /** faccessat(X_OK, AT_EACCESS) succeeded (false for anything but a regular file). */
  executable: boolean;
  /** The file's first bytes (empty for anything but a regular file). */
  head: Uint8Array;
}

export interface NativeMemoryFile {
  readonly fd: number;
  readonly size: number;
  readonly maxSize: number;
  grow(size: number): void;
  /** Maps what another thread's grow() added (a worker's view); returns the mapped size. */
  refresh(): number;
  punchHole(offset: number, length: number): void;
  buffer(offset: number, length: number): ArrayBuffer;
  close(): void;
  futexWake(offset: number, count: number): number;
  futexWait(offset: number, expected: number, timeoutMs: number): 'woken' | 'changed' | 'timeout' | 'interrupted';
  /**
   * One sleep on several words: the index woken, -1 timeout, -2 a word changed, -3 interrupted.
   * `files[i]`, when given, is the memory file word i is in (this one otherwise).
   */
  futexWaitv(offsets: Uint32Array, expected: Uint32Array, timeoutMs: number, files?: Array<NativeMemoryFile | undefined>): number;
  waitWordChange(offset: number, value: number, pid: number, timeoutMs: number, waitersOffset?: number): Promise<number>;
  syscallThreadCall(
    msgOffset: number,
    pid: number,
    sysno: number,
    args: BigUint64Array,
    timeoutMs: number,
    spinNs: number,
    /** A Promise that resolves has released the message's SYSMSG_OWNER word (the caller held it). */
    releaseOwner?: boolean,
  ): bigint | Promise<bigint>;
  syscallThreadCallSync(msgOffset: number, pid: number, sysno: number, args: BigUint64Array, timeoutMs: number): bigint;
  /** Posts a request without waiting; returns the state its answer carries (see syscallThreadAwait). */
  syscallThreadPost(msgOffset: number, sysno: number, args: BigUint64Array): number;
  /** The answer to the request posted as `next`, as syscallThreadCall returns it. */
  syscallThreadAwait(msgOffset: number, pid: number, next: number, timeoutMs: number, spinNs: number, releaseOwner?: boolean): bigint | Promise<bigint>;
}

/**
 * A program's sandbox made by {@link Native.forkSandbox}: its init (pid 1 inside) and its stub
 * (pid 2 inside), both under their pids in Node's namespace.
 */
export interface NativeSandbox {
  /**
   * The sandbox's init, a child of Node: the caller reaps it (wait4, or an ExitWatch first). It
   * exits 0 once no process is left in the sandbox; SIGKILL to it kills every process inside.
   */
  readonly initPid: number;
  /**
   * The stub, in group-stop (SIGSTOP) when forkSandbox returns: attach directly. Not Node's
   * child but the init's, so wait4 from Node sees it only while tracing it, and the init reaps it.
   */
  readonly stubPid: number;
  /**
   * Node's end of the stub's fd channel, registered under `stubPid`: use sendFds(stubPid, fds),
   * and closeFdChannel(stubPid) to close it (not close()).
   */
  readonly channel: number;
}

/** Options of {@link Native.forkSandbox}. */
export interface ForkSandboxOptions {
  /**
   * The stub prepares itself, with no tracer (see systrap_sandbox_fork in native/stub/stub.S):
   * nothing but the stub region left, the syscall thread's two message pages mapped at
   * `msgAddr` from the memory file at `msgFileOffset`, the rules from `rulesFileOffset`; it
   * stops itself where SIGCONT starts its service loop (state 0). Excludes `exec`.
   */
  selfInit?: { msgAddr: bigint; msgFileOffset: number; rulesFileOffset: number };
  /**
   * An absolute path the stub execs (with an empty environment) where it would enter the stub
   * code: a test program then runs inside the sandbox with the stub's fds (STUB_MEMFD,
   * STUB_FDCHAN) and nothing else. Such a stub does not stop itself.
   */
  exec?: string;
  /** argv[1..] of `exec` (argv[0] is the path). */
  args?: readonly string[];
}

/** The addon's exports (one file per group in native/). */
export interface Native {
  ptraceAttach(tid: number): void;
  ptraceDetach(tid: number, signal: number): void;
  ptraceCont(tid: number, signal: number): void;
  ptraceSetOptions(tid: number, options: number): void;
  ptraceGetRegs(tid: number, out: BigUint64Array): void;
  ptraceSetRegs(tid: number, regs: BigUint64Array): void;
  ptraceGetSiginfo(tid: number): { signo: number; errno: number; code: number; pid: number; addr: bigint };
  ptraceGetEventMsg(tid: number): number;
  ptraceSetSigmask(tid: number, mask: bigint): void;
  wait4(tid: number, options: number): WaitStatus | null;
  /** Registers a pidfd for a stub that is not Node's child (false: already gone). See native/liveness.cc. */
  trackExit(pid: number): boolean;
  /** Forgets a pid registered with trackExit (its pidfd closed). */
  untrackExit(pid: number): void;
  /** Whether the stub `pid` exited: by its pidfd when tracked, else as Node's child (ECHILD: reaped). */
  processExited(pid: number): boolean;
  /** A duplicate in Node of fd `fd` of process `pid` (pidfd_getfd). See native/procfd.cc. */
  pidfdGetfd(pid: number, fd: number): number;
  /** Checks a memfd a stub made is fresh, sizes it and seals it (shrink, grow, seal). */
  adoptMemfd(fd: number, size: number): void;
  closeFd(fd: number): void;
  /** The inode of a pidfd for `pid` (unique per process since Linux 6.9's pidfs). See native/procfd.cc. */
  pidfdInode(pid: number): number;
  /**
   * What execve's checks read of `path`, in one task off the event loop (native/execprobe.cc):
   * its mode and size, and for a regular file whether it is executable and its first
   * `maxBytes` (1..65536). With `creds`, all of it with those filesystem ids and groups (a
   * program that dropped root; the pool thread's own credentials are put back after). Rejects
   * like a failed fs call ({ code, errno, syscall }).
   */
  execProbe(path: string, maxBytes: number, creds?: ProbeCreds): Promise<ExecProbe>;
  /**
   * {@link execProbe} on the calling thread, which it blocks (a sentry worker's exec: never the
   * event loop thread); throws what execProbe rejects with.
   */
  execProbeSync(path: string, maxBytes: number, creds?: ProbeCreds): ExecProbe;
  /** The CPU time of processes together, in ns, from their kernel CPU clocks (gone ones add nothing). */
  cpuClockNs(pids: number[]): bigint;
  /** Whether Node's fd `fd` is a terminal (isatty(3)): tty.isatty without node:tty's cost. */
  isTerminal(fd: number): boolean;
  /** `length` (1..256) bytes from the kernel's CSPRNG (getrandom(2)): without node:crypto's cost. */
  getRandom(length: number): Buffer;
  tgkill(tgid: number, tid: number, signal: number): void;
  kill(pid: number, signal: number): void;
  setpriority(which: number, who: number, prio: number): void;
  gettid(): number;
  processVmReadv(pid: number, addr: bigint, length: number): Buffer;
  processVmWritev(pid: number, addr: bigint, data: Uint8Array): number;
  MemoryFile: new (name: string, maxSize: number, fd?: number) => NativeMemoryFile;
  ExitWatch: new (pid: number, onExit: () => void) => { close(): void };
  /** Whether every exit watch (those alive and those made later) keeps the event loop alive. */
  setExitWatchesKeepAlive(on: boolean): void;
  stubRegionInit(): {
    start: bigint;
    roEnd: bigint;
    end: bigint;
    initOffset: number;
    syscallOffset: number;
    sighandlerOffset: number;
    restorerOffset: number;
    gadgetOffset: number;
    syshandlerOffset: number;
    ringSyscallOffset: number;
  };
  forkSourceStub(memfd: number): number;
  /**
   * Forks a program's stub into a sandbox of its own where Node's process does not exist: new
   * user (Node's effective uid and gid mapped 1:1), pid, mount and cgroup namespaces, a proc of
   * the new pid namespace (/proc/sys read-only), an empty read-only tmpfs over /sys/fs/cgroup,
   * no nested user namespaces, every capability dropped, no_new_privs. The stub's fd table is
   * exactly the memory file at STUB_MEMFD and its fd channel at STUB_FDCHAN. Runs on the forker
   * thread, so the sandbox dies with Node.
   *
   * Without capabilities the program keeps the rights of Node's uid on files: with Node as root,
   * those of root's files (owner rights) that the mount namespace shows.
   *
   * Cost: one fork of Node (the init; the stub is forked from it without Node's memory), so it
   * grows with Node's memory: about 0.9 ms for a 40 MiB Node, 1.5 to 2.2 ms at 95 MiB (where
   * forkSourceStub takes 0.6 ms).
   *
   * Preconditions: stubRegionInit() has run; `memfd` is open. Node is root of the initial user
   * namespace, or its /proc is not masked (a container's read-only /proc/sys makes the kernel
   * refuse the sandbox's proc to a user namespace: the error says so).
   *
   * @throws TypeError for a bad argument.
   * @throws a SystemError-shaped error (`code`, `errno`, `syscall`) when a host call fails:
   * user namespaces unavailable (clone: EPERM, ENOSPC, EINVAL, EUSERS, with what to check in
   * the message), or a setup step of the sandbox (`step` set, `syscall` naming it). Nothing is
   * left behind: every fd is closed and the init reaped.
   *
   * @example
   * ```ts
   * native.stubRegionInit();
   * const mem = new native.MemoryFile('stub', 1 << 20);
   * const { initPid, stubPid } = native.forkSandbox(mem.fd);
   * native.ptraceAttach(stubPid); // on the tracer's thread; the stub is stopped already
   * ```
   */
  forkSandbox(memfd: number, options?: ForkSandboxOptions): NativeSandbox;
  sendFds(sourcePid: number, fds: number[]): void;
  closeFdChannel(sourcePid: number): void;
  stubAbi: {
    STUB_MEMFD: number;
    STUB_FDCHAN: number;
    STUB_RO_SIZE: number;
    STUB_REGION_SIZE: number;
    STUB_MAX_USER_ADDRESS: bigint;
    STUB_TASK_SIZE: bigint;
    STUB_RULES_OFFSET: number;
    STUB_RULES_SIZE: number;
    STUB_PER_THREAD_MEM_SIZE: number;
    STUB_MAX_THREAD_SLOTS: number;
    STUB_THREADS_MIN_OFFSET: number;
    STUB_QUEUE_OFFSET: number;
    STUB_QUEUE_SIZE: number;
    STUB_CONTEXTS_OFFSET: number;
    STUB_TRACE_RING_OFFSET: number;
    STUB_TRACE_RING_DATA: number;
    STUB_TRACE_RING_SIZE: number;
    STUB_TRACE_SPEC_OFFSET: number;
    STUB_MODE_TRAP: number;
    STUB_MODE_NEW_STUB: number;
    STUB_MODE_RUN_SYSCALL_LOOP: number;
    SYSMSG_STATE: number;
    SYSMSG_SYSNO: number;
    SYSMSG_ARGS: number;
    SYSMSG_REPLY: number;
    SYSMSG_DONE: number;
    SYSMSG_SPIN: number;
    STUB_REQUEST_NEW_THREAD: number;
    STUB_REQUEST_FORK: number;
    STUB_REQUEST_BATCH: number;
    SYSMSG_BATCH: number;
    SYSMSG_BATCH_ENTRY: number;
    SYSMSG_BATCH_MAX: number;
    SYSMSG_BATCH_STOP: number;
    SYSMSG_BATCH_RESULTS: number;
    SYSMSG_THREAD_SIGNALS: number;
    SYSMSG_THREAD_MASK: number;
    SYSMSG_FORK_REPLY: number;
    SYSMSG_FORK_DONE: number;
    SYSMSG_FORK_ACK: number;
    SYSMSG_OWNER: number;
    SYSMSG_OWNER_WAITERS: number;
    SYSMSG_SPIN_CYCLES: number;
    SYSMSG_SIZE: number;
  };
}

// src/native.ts and dist/src/native.js sit one and two levels below the package root.
const root = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '..' : '../..', import.meta.url));
const require = createRequire(import.meta.url);

/**
 * The native addon, loaded once per thread (Node-API addons are per environment).
 *
 * @example
 * ```ts
 * import { native } from './native.js';
 * const tid = native.gettid();
 * ```
 */
export const native: Native = require('node-gyp-build')(root);
