import { fstatSync } from 'node:fs';
import { SIG } from '../../abi/linux.js';
import { CONTROL_MEMFD_NAME, PER_THREAD, SYSCALL_THREAD_SLOT, abi, contextSlotAddr, controlBase, controlSize, forkRequestArgs, queueAddr, threadSlotAddr } from '../../abi/stub.js';
import { THREAD_CONTEXT } from '../../abi/sysmsg.js';
import { Errors, checkStubReply } from '../../errors.js';
import type { FileRange } from '../../memoryFile.js';
import { native, type NativeMemoryFile } from '../../native.js';
import { ContextQueue } from '../../shm/contextQueue.js';
import { adoptWorkerFile, type MemoryFileRef } from '../../shm/sharedFile.js';
import { SyscallThreadOwner } from '../../shm/syscallThreadLock.js';
import { FIRST_THREAD_SLOT, postThreadRequest, type FirstThread, type ThreadRequestRegion } from '../../shm/threadRequest.js';
import { forkChildOf, ppidOf } from '../../tracer/procfs.js';
import type { StubCalls, SyscallMsg } from './stubCalls.js';

/** How long the sentry waits for a fork child to answer before it gives up on it (a stub stopped by a debugger, say). */
const CHILD_ANSWER_MS = 5000;
/** Each sleep of that wait, between looks at whether the child is still there. */
const CHILD_LOOK_MS = 20;

/** What a fork by the sentry needs of the forking process. */
export interface LocalForkParent {
  readonly hostPid: number;
  /** The file its control memory is in (the platform's memory file, or its own). */
  readonly file: NativeMemoryFile;
  /** Its rules area in `file` (its program filter and trace spec): the child's is a copy. */
  readonly rules: FileRange;
  readonly syscallMsg: SyscallMsg;
}

/** What a fork by the sentry needs of the program. */
export interface LocalForkTree {
  readonly region: ThreadRequestRegion;
  readonly sandboxed: boolean;
  /** Whether a live process of the program has stub `hostPid` (a forged answer could name one). */
  knowsStub(hostPid: number): boolean;
}

/** A fork child the sentry made, set up and running (see {@link forkHere}). */
export interface ForkedHere {
  readonly hostPid: number;
  /** Its pid in its pid namespace: what the program sees. */
  readonly nsPid: number;
  /** Its own control memory, mapped on this thread (see adoptWorkerFile). */
  readonly memory: MemoryFileRef;
  /** Node's fd of that memory, for the main thread (which closes it). */
  readonly fd: number;
  readonly queue: FileRange;
  /** Its first thread's context: the first id of its own control memory. */
  readonly main: { id: number; slot: FileRange };
  readonly syscallMsg: SyscallMsg;
  /** Its rules area, in `memory`. */
  readonly rules: FileRange;
  /** Its first sysmsg thread, posted, the loop held for the sentry until the answer (see PostedFirstThread). */
  readonly first: FirstThread;
}

/**
 * A fork child the sentry made and could not set up: killed already; `hostPid` is 0 when none
 * was made (the stub's fork itself failed). Where Node must reap it, the main thread does
 * (the `forkLost` notice).
 *
 * @example
 * ```ts
 * forkHere(tree, p, calls).catch((e) => e instanceof ForkLost && e.hostPid > 0 && post({ type: 'forkLost', hostPid: e.hostPid }));
 * ```
 */
export class ForkLost extends Error {
  constructor(
    readonly hostPid: number,
    readonly reason: unknown,
  ) {
    super(`the fork failed: ${(reason as Error)?.message ?? reason}`);
  }
}

/**
 * fork made by the sentry itself through the parent's syscall thread (gVisor's sentry forks
 * its subprocesses itself): no hop to the main thread and back, which cost a fork two event
 * loop wake-ups (100-250 µs each on a loaded machine). The same steps as the main thread's
 * (forkStubEarly, with verifiedForkChild's checks): the stub's fork (STUB_REQUEST_FORK), the
 * child checked through /proc, its memfd taken (pidfd_getfd), sized and sealed, its control
 * memory laid out as a fresh file's (control memory, then the rules, a copy of the parent's),
 * its queue set up and its first sysmsg thread posted, then the child acknowledged: it maps its
 * memory and makes its thread. The main thread takes the child over afterwards (its actors).
 *
 * A failure after the stub's fork kills the child (ForkLost names it: where Node must reap it,
 * the main thread does). Preconditions: `calls` is the parent's and held (see StubCalls.hold);
 * the parent's patching is held (no site rewritten while the kernel copies its memory).
 *
 * @example
 * ```ts
 * if (calls.hold()) try { child = await forkHere(tree, p, calls); } finally { calls.release(); }
 * ```
 */
export async function forkHere(tree: LocalForkTree, p: LocalForkParent, calls: StubCalls): Promise<ForkedHere> {
  const { region } = tree;
  const size = controlSize(region);
  const fileSize = size + abi.STUB_RULES_SIZE;
  const scratch = calls.scratch();
  scratch.bytes.set(CONTROL_MEMFD_NAME);
  let nsPid: number;
  try {
    nsPid = Number(checkStubReply(await calls.syscall(abi.STUB_REQUEST_FORK, ...forkRequestArgs(region, scratch.addr)), { syscall: 'clone', expect: 'nonneg', pid: p.hostPid }));
  } catch (e) {
    throw new ForkLost(0, e);
  }
  const msg = p.syscallMsg.offset;
  const state = new Uint32Array(p.file.buffer(msg, 4096))[abi.SYSMSG_STATE / 4];
  let hostPid = 0;
  let fd = -1;
  let file: NativeMemoryFile | undefined;
  try {
    hostPid = verifiedChild(tree, p, nsPid);
    if (tree.sandboxed) native.trackExit(hostPid); // not Node's child: its death is seen through a pidfd
    const childFd = Number(childAnswer(p.file, msg, state, hostPid));
    if (!Number.isSafeInteger(childFd) || childFd < 0 || childFd > 0xfffff) throw Errors.ForgedReply('memfd_create', BigInt(childFd), 'an fd number', hostPid);
    fd = native.pidfdGetfd(hostPid, childFd);
    native.adoptMemfd(fd, fileSize);
    file = new native.MemoryFile('systrap-control', fileSize, fd);
    const child = layOut(file, region, p);
    // The fork's ack (serial-number order, see stub.S): the child maps its own memory, then its
    // loop finds the thread request.
    const ack = new Uint32Array(p.file.buffer(msg, abi.SYSMSG_SIZE));
    Atomics.store(ack, abi.SYSMSG_FORK_ACK / 4, state);
    p.file.futexWake(msg + abi.SYSMSG_FORK_ACK, 1);
    const memory = adoptWorkerFile(`fork:${hostPid}:${++forks}`, file);
    return { hostPid, nsPid, memory, fd, ...child };
  } catch (e) {
    if (hostPid > 0) kill(hostPid);
    file?.close();
    if (fd >= 0) native.closeFd(fd);
    throw new ForkLost(hostPid, e);
  }
}

/** Forks made here so far (each child's memory gets a token of its own). */
let forks = 0;

/**
 * The child's control memory in its fresh file, as ControlMemory lays one out (the control
 * memory from offset 0, the rules after it): the rules copied from the parent's (mapped
 * read-only in every stub, so the parent's are as Node wrote them), the queue set up with the
 * first thread counted active (a thread with nothing to do counts itself out as it sleeps),
 * the first thread posted, the loop held for the sentry (see PostedFirstThread).
 */
function layOut(file: NativeMemoryFile, region: ThreadRequestRegion, p: LocalForkParent): Omit<ForkedHere, 'hostPid' | 'nsPid' | 'memory' | 'fd'> {
  const size = controlSize(region);
  const base = controlBase(region);
  const at = (addr: bigint, len: number): FileRange => ({ start: Number(addr - base), end: Number(addr - base) + len });
  const rules = { start: size, end: size + abi.STUB_RULES_SIZE };
  if (p.file.size < p.rules.end) p.file.refresh(); // the parent's rules may lie past what this thread mapped so far
  new Uint8Array(file.buffer(rules.start, abi.STUB_RULES_SIZE)).set(new Uint8Array(p.file.buffer(p.rules.start, abi.STUB_RULES_SIZE)));
  const queue = at(queueAddr(region), abi.STUB_QUEUE_SIZE);
  new ContextQueue(queue, file).threadStarting();
  const msg = { range: at(threadSlotAddr(region, SYSCALL_THREAD_SLOT), abi.SYSMSG_SIZE), addr: threadSlotAddr(region, SYSCALL_THREAD_SLOT) };
  const shared = at(threadSlotAddr(region, FIRST_THREAD_SLOT) + BigInt(PER_THREAD.sharedOffset), PER_THREAD.sharedSize);
  const first = postThreadRequest(file, region, shared, msg, SyscallThreadOwner.Sentry);
  return { queue, rules, main: { id: 0, slot: at(contextSlotAddr(region, 0), THREAD_CONTEXT.allocatedSize) }, syscallMsg: { offset: msg.range.start, addr: msg.addr }, first };
}

/** Facts read once per file or stub: the parent stub's parent, the parent's control file's inode. */
const stubParents = new Map<number, number>();
const inodes = new WeakMap<NativeMemoryFile, number>();

/** The host pid of the child the parent's loop answered, checked as the main thread's fork checks it (see forkChildOf). */
function verifiedChild(tree: LocalForkTree, p: LocalForkParent, nsPid: number): number {
  let stubParent = stubParents.get(p.hostPid);
  if (stubParent === undefined) {
    stubParent = ppidOf(p.hostPid);
    if (stubParents.size > 4096) stubParents.clear(); // pids of stubs long gone
    stubParents.set(p.hostPid, stubParent);
  }
  let ino = inodes.get(p.file);
  if (ino === undefined) inodes.set(p.file, (ino = fstatSync(p.file.fd).ino));
  return forkChildOf(nsPid, { pid: p.hostPid, stubParent, sandboxed: tree.sandboxed, controlInode: ino, controlAddr: controlBase(tree.region), known: (pid) => tree.knowsStub(pid) });
}

/**
 * The fork child's answer (its memfd's fd number), written in the parent's message while the
 * child still shares it: waited for on this thread, spinning first (the child answers within
 * tens of µs), then in short futex sleeps between looks at whether it is still there.
 */
function childAnswer(file: NativeMemoryFile, msg: number, state: number, pid: number): bigint {
  const words = new Uint32Array(file.buffer(msg, abi.SYSMSG_SIZE));
  const done = abi.SYSMSG_FORK_DONE / 4;
  const start = performance.now();
  for (let spins = 0; ; spins++) {
    const now = Atomics.load(words, done);
    if (now === state) return new BigUint64Array(words.buffer, words.byteOffset + abi.SYSMSG_FORK_REPLY, 1)[0];
    if (spins < 2000) continue;
    if (native.processExited(pid)) throw Errors.StubDead(pid, 'the fork child died before it answered');
    if (performance.now() - start > CHILD_ANSWER_MS) throw Errors.Timeout(`fork child ${pid} did not answer within ${CHILD_ANSWER_MS} ms`);
    file.futexWait(msg + abi.SYSMSG_FORK_DONE, now, CHILD_LOOK_MS);
  }
}

function kill(pid: number): void {
  try {
    native.kill(pid, SIG.SIGKILL);
  } catch {
    // gone already
  }
}
