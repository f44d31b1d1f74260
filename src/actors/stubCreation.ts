import type { Runtime } from './runtime.js';
import type { CreateSandboxResult, CreateSourceResult, TransactionFault } from '../tracer/protocol.js';
import { native } from '../native.js';
import { Errors, checkStubReply, toSystrapError } from '../errors.js';
import { forkChildOf, ppidOf } from '../tracer/procfs.js';
import { fstatSync } from 'node:fs';
import { SIG } from '../abi/linux.js';
import { reapWhenGone, untrackWhenGone } from './reaping.js';
import { MemoryFile } from '../memoryFile.js';
import { TRACE_SPEC } from '../abi/traceRing.js';
import { CONTROL_MEMFD_NAME, RULES_SIZE, SYSCALL_THREAD_SLOT, abi, forkRequestArgs, controlBase, controlSize, queueAddr, rulesAddr, threadSlotAddr, type StubRegion } from '../abi/stub.js';
import { ControlMemory } from './controlMemory.js';
import { ContextQueue } from '../shm/contextQueue.js';
import { postFirstThread, type FirstThread } from './sysmsgThreads.js';
import { compileSeccomp, sysmsgThreadFilter, writeSockFprog } from '../abi/seccomp.js';
import { SYS } from '../abi/syscalls.js';
import type { FileRange } from '../memoryFile.js';
import { Subprocess } from './subprocess.js';

/**
 * Every way a stub comes to be (gVisor's createStub, requestStub, and a fork of a process's
 * stub), each a ptrace transaction or two on a tracer worker. See Subprocess for what a stub is.
 *
 * @example
 * ```ts
 * const source = await createSource(rt);
 * const sp = await cloneSource(rt, source);
 * const child = await forkStub(rt, sp); // a copy-on-write copy of sp's address space
 * ```
 */

/** Where forkStub's memfd name goes in the request page (past the other transactions' arguments). */
const ARG_MEMFD_NAME = 0x400;

/** What a tracer needs to clean a freshly forked stub (createSource, createSandbox). */
function freshStubArgs(rt: Runtime) {
  const { start, roEnd, end } = rt.region;
  return { memfd: rt.memoryFile.fd, regionStart: start, regionRoEnd: roEnd, regionEnd: end, taskSize: abi.STUB_TASK_SIZE };
}

/**
 * Creates the source stub (gVisor's createStub): forked by the addon's forker thread, cleaned
 * by a tracer, then parked. Every other stub but sandboxed ones is cloned from it.
 *
 * @example
 * ```ts
 * const source = await createSource(rt);
 * ```
 */
export function createSource(rt: Runtime): Promise<Subprocess> {
  return Subprocess.make(rt, { source: true }, async (sp, h) => {
    const res = await rt.tracers.run<CreateSourceResult>({ op: 'createSource', ...freshStubArgs(rt) });
    if (!res.ok) throw toSystrapError(res.error);
    h.forked(res.value.pid);
    sp.thread.initRegs = res.value.initRegs;
  });
}

/**
 * Creates a program's stub in a sandbox of its own (user, pid, mount and cgroup namespaces:
 * Node's process, its /proc entries and its cgroup do not exist there, and the program has
 * no capability), then prepares its syscall thread as for a clone. Its fd channel is its own.
 * Throws what forkSandbox throws when the namespaces cannot be made here.
 *
 * @example
 * ```ts
 * const sp = await createSandbox(rt); // sp.sandboxed
 * ```
 */
export function createSandbox(rt: Runtime): Promise<Subprocess> {
  // A scenario's fault points are the tracer's transactions: with its hook set, they make it.
  if (rt.tracers.faultHook) return createSandboxTraced(rt);
  return Subprocess.make(rt, {}, async (sp, h) => {
    // No tracer at all: the stub maps its message and rules itself, then stops at the door of
    // its loop (the tracer worker need not even start for a sandboxed program).
    sp.control.allocate();
    const msgAddr = threadSlotAddr(rt.region, SYSCALL_THREAD_SLOT);
    const msg = sp.control.rangeAt(msgAddr, abi.SYSMSG_SIZE);
    const res = native.forkSandbox(rt.memoryFile.fd, { selfInit: { msgAddr, msgFileOffset: msg.start, rulesFileOffset: rt.rules.start } });
    h.sandbox(res.initPid);
    h.forked(res.stubPid);
    h.setMessage(msgAddr);
    native.kill(res.stubPid, SIG.SIGCONT);
  });
}

/** {@link createSandbox} through the tracer's createSandbox and initStub transactions. */
function createSandboxTraced(rt: Runtime): Promise<Subprocess> {
  return Subprocess.make(rt, {}, async (_sp, h) => {
    const res = await rt.tracers.run<CreateSandboxResult>({ op: 'createSandbox', ...freshStubArgs(rt) });
    if (!res.ok) throw toSystrapError(res.error);
    h.sandbox(res.value.initPid);
    h.forked(res.value.stubPid);
    await h.initSyscallThread();
  });
}

/**
 * Creates a stub cloned from the source (requestStub on the source's syscall thread), then
 * prepares its syscall thread: message pages mapped, detached into its service loop.
 *
 * @example
 * ```ts
 * const sp = pool.fetchAvailable() ?? (await cloneSource(rt, pool.source));
 * ```
 */
export function cloneSource(rt: Runtime, source: Subprocess, fault?: TransactionFault): Promise<Subprocess> {
  return Subprocess.make(rt, {}, async (_sp, h) => {
    const src = source.thread;
    const pid = await src.transact<number>(() => ({ op: 'requestStub', source: src.threadRef(), fault }));
    h.forked(pid);
    await h.initSyscallThread();
  });
}

/**
 * Forks `parent` (the program's fork, AddressSpace.fork): a new stub holding a copy-on-write
 * copy of the parent's whole address space, its control memory its own (a memfd the child made,
 * adopted by Node), its syscall thread in its loop, its filter the parent's (installed by its
 * sysmsg threads from its own rules area). No thread of the parent is copied, and nothing of
 * it runs before its control memory is its own. No ptrace: the parent's loop forks itself and
 * the child sets itself up (STUB_REQUEST_FORK in stub.S), with one handshake through the
 * parent's message, which the child shares until it maps its own. Precondition: the parent's
 * syscall loop runs.
 *
 * @example
 * ```ts
 * const child = await forkStub(rt, subprocessOf(as));
 * ```
 */
export async function forkStub(rt: Runtime, parent: Subprocess): Promise<Subprocess> {
  return makeForked(rt, parent, await forkStubEarly(rt, parent));
}

/**
 * A fork's child as its parent's loop made it, acknowledged and set up to run (forkStub's first
 * half, see prepareChild), before its actors exist: what a sentry needs to adopt it at once
 * (see PlatformPort.forkEarly).
 */
export interface ForkedStub {
  readonly pid: number;
  /** Its pid in its pid namespace (the clone's answer). */
  readonly nsPid: number;
  readonly control: ControlMemory;
  readonly queue: ContextQueue;
  /** Its syscall thread's message. */
  readonly msg: { range: FileRange; addr: bigint };
  readonly first?: FirstThread;
}

/**
 * forkStub's first half: the fork, the child's checks and its control memory (see
 * {@link ForkedStub}). The child runs from here on; {@link makeForked} makes its actors.
 *
 * @example
 * ```ts
 * const f = await forkStubEarly(rt, parent);
 * const child = await makeForked(rt, parent, f);
 * ```
 */
export async function forkStubEarly(rt: Runtime, parent: Subprocess): Promise<ForkedStub> {
  const { region } = rt;
  const msgAddr = threadSlotAddr(region, SYSCALL_THREAD_SLOT);
  const size = controlSize(region);
  const fileSize = size + abi.STUB_RULES_SIZE;
  const th = parent.thread;
  return parent.guard(() =>
    th.exclusive(async (call) => {
      const page = parent.argumentPage();
      new Uint8Array(page.view.buffer, page.view.byteOffset + ARG_MEMFD_NAME, CONTROL_MEMFD_NAME.length).set(CONTROL_MEMFD_NAME);
      const args = forkRequestArgs(region, page.addr + BigInt(ARG_MEMFD_NAME));
      // Runner workers patch none of its sites meanwhile (see UserTrap.hold for the sentry's).
      const fork = () => call(abi.STUB_REQUEST_FORK, args);
      const reply = parent.usertrapTable && parent.queue ? await parent.queue.withoutPatching(fork) : await fork();
      const nsPid = Number(checkStubReply(reply, { syscall: 'clone', expect: 'nonneg', pid: parent.pid }));
      const state = th.lastState;
      // clone answers in the stub's pid namespace: a sandbox's own, where the child is the
      // init's (the stub's parent's) child.
      let pid: number;
      try {
        pid = verifiedForkChild(rt, parent, nsPid);
      } catch (e) {
        th.ackFork(state); // a real child then finds its file unsized, and exits
        throw toSystrapError(e);
      }
      if (parent.sandboxed) native.trackExit(pid); // not Node's child: its death is seen through a pidfd
      let fd = -1;
      let file: MemoryFile | undefined;
      try {
        const childFd = Number(await th.forkReply(state, pid));
        if (!Number.isSafeInteger(childFd) || childFd < 0 || childFd > 0xfffff) throw Errors.ForgedReply('memfd_create', BigInt(childFd), 'an fd number', pid);
        fd = native.pidfdGetfd(pid, childFd);
        native.adoptMemfd(fd, fileSize);
        file = MemoryFile.adopt(fd, fileSize, 'systrap-control');
        forkSeams.childAnswered?.(pid);
        const child = prepareChild(rt, parent, file, msgAddr);
        th.ackFork(state);
        return { pid, nsPid, ...child };
      } catch (e) {
        killAndReap(pid, parent.sandboxed);
        file?.close();
        throw toSystrapError(e);
      } finally {
        if (fd >= 0) native.closeFd(fd);
      }
    }),
  );
}

/** What a sentry that forked a stub itself hands the main thread (see src/sentry/kernel/localFork.ts). */
export interface ForkedBySentry {
  readonly hostPid: number;
  readonly nsPid: number;
  /** Node's fd of the child's control memory (its memfd, sized and sealed): the main thread's to close. */
  readonly fd: number;
  /** Its first sysmsg thread, posted for the main thread (see postThreadRequest). */
  readonly first: FirstThread;
}

/**
 * A fork the sentry made itself, as {@link forkStubEarly} would have returned it: the child's
 * control memory adopted from `f.fd` (closed here, whatever happens) with the layout the sentry
 * wrote into it (control memory, then rules: what allocate() gives in a fresh file), its context
 * queue as the sentry set it up (not set up again), its message. The sentry checked the child
 * (verifiedForkChild's checks) and acknowledged it. Precondition: nothing of it was made yet.
 *
 * @example
 * ```ts
 * const child = await makeForked(rt, parent, forkedBySentry(rt, parent, f));
 * ```
 */
export function forkedBySentry(rt: Runtime, parent: Subprocess, f: ForkedBySentry): ForkedStub {
  const { region } = rt;
  let file: MemoryFile;
  try {
    file = MemoryFile.adopt(f.fd, controlSize(region) + abi.STUB_RULES_SIZE, 'systrap-control');
  } finally {
    native.closeFd(f.fd);
  }
  const control = new ControlMemory(file, region, true);
  control.allocate();
  control.allocateRules();
  if (parent.sandboxed) native.trackExit(f.hostPid); // not Node's child: its death is seen through a pidfd
  const queue = new ContextQueue(control.rangeAt(queueAddr(region), abi.STUB_QUEUE_SIZE), file.shared, false);
  const msgAddr = threadSlotAddr(region, SYSCALL_THREAD_SLOT);
  return { pid: f.hostPid, nsPid: f.nsPid, control, queue, msg: { range: control.rangeAt(msgAddr, abi.SYSMSG_SIZE), addr: msgAddr }, first: f.first };
}

/**
 * forkStub's second half: the child's actors (subprocess, syscall thread, its first sysmsg
 * thread's) over what {@link forkStubEarly} made. A failure kills the child.
 *
 * @example
 * ```ts
 * const child = await makeForked(rt, parent, await forkStubEarly(rt, parent));
 * ```
 */
export function makeForked(rt: Runtime, parent: Subprocess, f: ForkedStub): Promise<Subprocess> {
  const { pid, control, queue, first } = f;
  return Subprocess.make(rt, { control, queue }, async (sp, h) => {
    h.forkedFrom(parent);
    h.forked(pid);
    if (forkSeams.making) await forkSeams.making(pid);
    sp.sysmsgThreads.forkedAlone(pid);
    h.setMessage(f.msg.addr);
    sp.thread.initRegs = parent.thread.initRegs;
    // Its first sysmsg thread, asked for before its loop ran (the sentry's ensureThread waits
    // for this one): a fork's child always runs a context at once.
    (first ? sp.sysmsgThreads.adoptFirst(first) : sp.sysmsgThreads.ensureRunning()).catch(() => undefined);
    // The child closed its own fd to the file before its loop served anything (stub.S).
  });
}

/**
 * What a fork child needs before its loop runs, in its own control memory (`file`, adopted
 * from it): the memory's layout, its context queue, its rules (the parent's filter and trace
 * spec, written again) and, unless a scenario's fault hook wants the thread made by a
 * transaction, the request for its first sysmsg thread (see postFirstThread). Precondition: the
 * child waits for its acknowledgement (it touches none of it before).
 */
function prepareChild(rt: Runtime, parent: Subprocess, file: MemoryFile, msgAddr: bigint): Omit<ForkedStub, 'pid' | 'nsPid'> {
  const { region } = rt;
  const control = new ControlMemory(file, region, true);
  control.allocate();
  const rules = control.allocateRules();
  if (parent.rulesProg) {
    writeSockFprog(file.view(rules), parent.rulesProg, rulesAddr(region));
    // The trace ring's spec too: the child's observed calls go through its own ring.
    const from = parent.control.rules;
    if (from) file.view(rules).set(parent.control.file.view(from).subarray(TRACE_SPEC.offset), TRACE_SPEC.offset);
  } else file.view(rules).set(rt.memoryFile.view(rt.rules));
  const queue = new ContextQueue(control.rangeAt(queueAddr(region), abi.STUB_QUEUE_SIZE), file.shared);
  const msg = { range: control.rangeAt(msgAddr, abi.SYSMSG_SIZE), addr: msgAddr };
  if (rt.tracers.faultHook) return { control, queue, msg };
  // Counted active before it can run: a thread with nothing to do counts itself out as it
  // sleeps, and the sentry wakes one only when fewer are counted than contexts wait.
  queue.threadStarting();
  return { control, queue, msg, first: postFirstThread(rt, control, msg) };
}

/**
 * Seams for tests (not API): `childAnswered(pid)` runs once a fork child has answered and
 * before Node acknowledges it, so a test can hold the child (SIGSTOP) across the parent's next
 * requests and forks — the order a loaded machine gives at random. `making(pid)` runs as the
 * child's actors are being made (a sentry runs the child already, see forkForSentry): a test
 * can hold that (a slow main thread) or fail it.
 *
 * @internal
 * @example
 * ```ts
 * forkSeams.childAnswered = (pid) => process.kill(pid, 'SIGSTOP');
 * forkSeams.making = () => held; // a promise the test settles
 * ```
 */
export const forkSeams: { childAnswered?: (pid: number) => void; making?: (pid: number) => Promise<void> | void } = {};

/** Facts verifiedForkChild reads once per stub: its parent, its control file's inode. */
const stubParents = new WeakMap<Subprocess, number>();
const controlInodes = new WeakMap<MemoryFile, number>();

/** The host pid of the fork child the parent's loop answered, checked (see forkChildOf). */
function verifiedForkChild(rt: Runtime, parent: Subprocess, nsPid: number): number {
  // Neither the stub's parent nor its control file ever changes: read once.
  let stubParent = stubParents.get(parent);
  if (stubParent === undefined) stubParents.set(parent, (stubParent = ppidOf(parent.pid)));
  let ino = controlInodes.get(parent.control.file);
  if (ino === undefined) controlInodes.set(parent.control.file, (ino = fstatSync(parent.control.file.fd).ino));
  return forkChildOf(nsPid, { pid: parent.pid, stubParent, sandboxed: parent.sandboxed, controlInode: ino, controlAddr: controlBase(rt.region), known: (pid) => rt.tracks(pid) });
}

/**
 * Kills a stub that failed while being made, and reaps it once it is gone when it is Node's
 * child (outside a sandbox; inside, the sandbox's init reaps it, and its pidfd in the liveness
 * registry is closed once it is gone).
 *
 * @example
 * ```ts
 * killAndReap(child.pid, parent.sandboxed); // a fork child that could not be set up
 * ```
 */
export function killAndReap(pid: number, sandboxed: boolean): void {
  try {
    native.kill(pid, SIG.SIGKILL);
  } catch {
    // Gone already (and reaped: a zombie can still be signalled).
    if (sandboxed) native.untrackExit(pid);
    return;
  }
  if (sandboxed) untrackWhenGone(pid);
  else reapWhenGone(pid);
}

/**
 * Writes the platform's rules area (gVisor's stubSysmsgRules, see writeSockFprog): the
 * sysmsg-thread filter, mapped read-only in every stub.
 *
 * @example
 * ```ts
 * const rules = buildRules(memoryFile, region); // a range of the memory file
 * ```
 */
export function buildRules(memoryFile: MemoryFile, region: StubRegion): FileRange {
  const prog = compileSeccomp(sysmsgThreadFilter(region.start, SYS, region.end));
  const range = memoryFile.allocate(RULES_SIZE);
  writeSockFprog(memoryFile.view(range), prog, rulesAddr(region));
  return range;
}

/**
 * An error of forkSandbox saying that the namespaces cannot be made (not a stub's death).
 *
 * @example
 * ```ts
 * if (isSandboxUnavailable(toSystrapError(e))) fallBackToPlainStubs();
 * ```
 */
export function isSandboxUnavailable(e: { code: string; syscall?: string }): boolean {
  return ['EPERM', 'EACCES', 'ENOSPC', 'EINVAL', 'EUSERS', 'ENOSYS'].includes(e.code);
}
