import { ERRNO } from '../../abi/linux.js';
import { releaseWorkerFile } from '../../shm/sharedFile.js';
import { native } from '../../native.js';
import type { SentryRequest } from '../protocol.js';
import type { Task } from './task.js';
import type { ThreadGroup } from './threadGroup.js';
import type { ForkOptions, LocalExecState, Proc } from './process.js';
import type { ProcessSpec } from './processSpec.js';
import { HOLD_WAIT_MS, clientOf } from './localExec.js';
import { PostedFirstThread } from './postedFirstThread.js';
import { ForkLost, forkHere, type ForkedHere, type LocalForkTree } from './localFork.js';
import { abi, controlSize } from '../../abi/stub.js';
import type { FileRange } from '../../memoryFile.js';
import type { ThreadRequestRegion } from '../../shm/threadRequest.js';

/**
 * The rules area in a fork child's own control file (the control memory first, then the rules:
 * ControlMemory's allocation in a fresh file, and localFork's layout).
 *
 * @example
 * ```ts
 * adoptChild({ ...spec, ownMemory: true, rules: forkRules(region) }, parent);
 * ```
 */
export function forkRules(region: ThreadRequestRegion): FileRange {
  const start = controlSize(region);
  return { start, end: start + abi.STUB_RULES_SIZE };
}

/** What a fork by the sentry needs of the tree (Kernel). */
export interface LocalForkKernel extends LocalForkTree {
  /** Forks by the sentry are allowed (see SentryTask.localFork). */
  readonly localFork: boolean;
  /** Forks made by the sentry, and those asked of the main thread (the program's result has them). */
  readonly forks: { sentry: number; main: number };
  /** The sentry's own async work (its execves, its forks): the host lets it run before it sleeps. */
  readonly localExec?: LocalExecState;
  readonly result?: unknown;
  /** A process made from a fork's child (Kernel's adoption of it). */
  adoptChild(spec: ProcessSpec, parent: Proc | undefined): ThreadGroup;
  post(msg: SentryRequest): void;
}

/**
 * fork, vfork or clone of `p` made by the sentry itself when it can (see forkHere): the child
 * adopted in `p`'s turn once made, and handed to the main thread for its actors ('forkedHere');
 * `t` gets its pid as with the main thread's fork, or EAGAIN. False when it cannot (the main
 * thread's fork then): not allowed (scenario faults, test seams), no syscall-thread message or
 * rules area known for `p`, CLONE_PIDFD (a pidfd made in the parent), credentials or limits
 * changed (the main thread syncs them into the syscall thread first), or the main thread holds
 * the parent's loop. `released` runs once the stub's part is over (the parent's patching goes on).
 * Precondition: `t` is parked in the fork.
 *
 * @example
 * ```ts
 * if (forkLocally(kernel, p, t, options, () => patching?.release())) return 'blocked';
 * ```
 */
export function forkLocally(k: LocalForkKernel, p: ThreadGroup, t: Task, o: ForkOptions, released: () => void): boolean {
  const state = k.localExec;
  if (!k.localFork || !state || !p.syscallMsg || !p.rules || o.pidfdAt !== undefined || p.attrs.gen > 0) return false;
  const calls = clientOf(p, p.syscallMsg);
  // As an execve's load: a short wait for the main thread's own use of the loop (making a
  // sysmsg thread for another thread of p) spares the round trip through it.
  if (!calls.hold(HOLD_WAIT_MS)) return false;
  state.pending++;
  const parent = { hostPid: p.hostPid, file: p.file, rules: p.rules, syscallMsg: p.syscallMsg };
  // Its answer acts in p's own turn, the next one (the host's wait returns at once).
  const then = (fn: () => void) => {
    calls.release();
    released();
    state.pending--;
    p.defer(fn);
    p.queue.ring(false);
  };
  forkHere(k, parent, calls).then(
    (f) => {
      k.forks.sentry++;
      then(() => adopt(k, p, t, o, f));
    },
    (e: unknown) => {
      const lost = e instanceof ForkLost ? e.hostPid : 0;
      if (lost > 0) k.post({ type: 'forkLost', hostPid: lost });
      then(() => p.wake(t, -BigInt(ERRNO.EAGAIN)));
    },
  );
  return true;
}

/** The child forkHere made, adopted under `p` (or, parent gone or program over, let go). */
function adopt(k: LocalForkKernel, p: ThreadGroup, t: Task, o: ForkOptions, f: ForkedHere): void {
  if (!p.live || k.result) {
    try {
      native.kill(f.hostPid, 9);
    } catch {
      // gone already
    }
    releaseWorkerFile(f.memory);
    native.closeFd(f.fd);
    k.post({ type: 'forkLost', hostPid: f.hostPid });
    return;
  }
  const parent = o.sameParent ? p.parent : p;
  const child = k.adoptChild({ pid: f.hostPid, nsPid: f.nsPid, memory: f.memory, queue: f.queue, main: f.main, brkStart: p.brkStart, exe: p.exe, ownMemory: true, syscallMsg: f.syscallMsg, rules: f.rules }, parent);
  k.post({ type: 'forkedHere', pid: p.tgid, child: child.tgid, hostPid: f.hostPid, nsPid: f.nsPid, fd: f.fd, first: f.first, mainId: f.main.id });
  child.firstThread = new PostedFirstThread(child.file, f.syscallMsg.offset, f.first.state, (ret) => k.post({ type: 'firstThread', pid: child.tgid, ret }));
  setUpForkChild(p, child, t, o, undefined);
}

/**
 * A fork child made from its parent `p` as fork, vfork or clone (not CLONE_THREAD) leaves it
 * (Linux's copy_process, the sentry's part: the kernel copied the memory, the stub's fork made
 * the rest): its break, patching table, process group, session, exit signal and signal actions
 * are the parent's; its one thread is a copy of `t` returning 0, on clone's stack and TLS if
 * given; the tid words clone was asked to write are written; the parent's `t` gets the child's
 * pid now, or (CLONE_VFORK) once the child execs or ends. `pidfd`: CLONE_PIDFD's fd in the parent.
 * Precondition: `child` was just adopted; `t` is parked in the fork.
 *
 * @example
 * ```ts
 * setUpForkChild(p, child, t, options, r.pidfd);
 * ```
 */
export function setUpForkChild(p: ThreadGroup, child: ThreadGroup, t: Task, o: ForkOptions, pidfd: number | undefined): void {
  child.brk = p.brk;
  child.usertrap = p.usertrap?.fork(); // the kernel copied the table and the patched code
  child.pgid = p.pgid;
  child.sid = p.sid;
  child.exitSignal = o.exitSignal;
  child.signals.forkFrom(p.signals);
  const ct = child.adoptForkedThread(t);
  ct.setReg('rax', 0n);
  if (o.stack !== 0n) ct.setReg('rsp', o.stack);
  if (o.tls !== undefined) ct.setReg('fs_base', o.tls);
  if (o.childClearTid !== undefined) ct.clearChildTid = o.childClearTid;
  if (o.childSetTid !== undefined) child.mem.writeU32(o.childSetTid, child.tgid);
  if (o.parentSetTid !== undefined) p.mem.writeU32(o.parentSetTid, child.tgid);
  if (o.pidfdAt !== undefined) p.mem.writeU32(o.pidfdAt, pidfd ?? -1);
  if (o.vfork) child.vforkParent = t;
  else p.defer(() => p.wake(t, BigInt(child.tgid)));
}
