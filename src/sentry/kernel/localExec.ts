import { SYS } from '../../abi/syscalls.js';
import { abi } from '../../abi/stub.js';
import { ERRNO } from '../../abi/linux.js';
import { checkStubReply, type SystrapError } from '../../errors.js';
import type { ProbeCreds } from '../../native.js';
import { Errors } from '../../errors.js';
import { checkExecutable } from '../exec/check.js';
import { closeOnExecCalls, programPath } from '../exec/execSteps.js';
import { loadProgram } from '../exec/loader.js';
import { canonical, nameCall } from '../processSetup.js';
import type { ExecLoadArgs, ExecLoadResult } from '../protocol.js';
import { StubCalls, type SyscallMsg } from './stubCalls.js';
import type { NativeMemoryFile } from '../../native.js';
import { loadedImage, type ExecHost } from './execve.js';
import type { LoadedImage } from '../syscalls/context.js';
import type { TreeHost } from './process.js';

/**
 * How long an execve's load, or a fork, by the sentry waits for the main thread to let go of the
 * stub's syscall thread before it asks the main thread instead (the main thread uses the loop
 * for its own requests: a sysmsg thread for another thread, a fork child's first thread when it
 * forked the child; each ends within a few hundred µs).
 *
 * @example
 * ```ts
 * if (!calls.hold(HOLD_WAIT_MS)) return mainLoad(args, done);
 * ```
 */
export const HOLD_WAIT_MS = 2;
/** How long an execve waits for a fork child's first thread (see PostedFirstThread): it is made within a few hundred µs of the fork. */
const FIRST_THREAD_WAIT_MS = 50;

/** What an execve made by the sentry itself needs of its process. */
export interface LocalExecProcess {
  /** The stub's pid as Node sees it (its /proc entries). */
  readonly hostPid: number;
  /** The program's filesystem ids and groups, when it changed them (see TaskAttrs.creds). */
  readonly creds?: ProbeCreds;
  /** Map a syscall patching table with the new image (the process patches its sites). */
  readonly usertrap: boolean;
  /** The stub region: everything outside it is the old image, gone at the point of no return. */
  readonly region: { readonly start: bigint; readonly end: bigint };
}

/**
 * execve's checks before its point of no return (see checkExecutable), made on this worker's
 * thread: the file probes block it for as long as the file system takes, as the loop's calls
 * of the load do. 0, or the errno the call fails with.
 *
 * @example
 * ```ts
 * const errno = await checkHere(p, './a.out');
 * ```
 */
export function checkHere(p: LocalExecProcess, path: string): Promise<number> {
  return checkExecutable(path, (file) => programPath(p.hostPid, file, p.creds !== undefined), p.creds, true);
}

/**
 * execve past its point of no return, made by the sentry through the stub's syscall thread
 * (no hop through the main thread; see StubCalls): the old image unmapped, the close-on-exec
 * fds closed and the stub renamed in one round trip, then the new image loaded (loader.ts). The
 * same steps, in the same order, as the main thread's (SentryLink). A failure is the errno the
 * program dies of (the old image is gone).
 * Precondition: `calls` is held; the process has no other thread left in its stub.
 *
 * @example
 * ```ts
 * if (calls.hold()) try { done(await loadHere(p, calls, args)); } finally { calls.release(); }
 * ```
 */
export async function loadHere(p: LocalExecProcess, calls: StubCalls, a: ExecLoadArgs): Promise<ExecLoadResult> {
  try {
    const { start, end } = p.region;
    const unmap = [
      { sysno: SYS.munmap, args: [0n, start], expect: 0n },
      { sysno: SYS.munmap, args: [end, abi.STUB_TASK_SIZE - end], expect: 0n },
    ];
    const then = [...closeOnExecCalls(p.hostPid), nameCall(calls, a.path)];
    const first = abi.SYSMSG_BATCH_MAX - unmap.length;
    const ran = await calls.syscalls([...unmap, ...then.slice(0, first)]);
    for (const r of ran.slice(0, unmap.length)) checkStubReply(r, { syscall: 'munmap', expect: 0n, pid: p.hostPid });
    if (ran.length < unmap.length) throw Errors.Protocol(`the stub stopped the unmap of the old image after ${ran.length} calls`, p.hostPid);
    for (let i = first; i < then.length; i += abi.SYSMSG_BATCH_MAX) await calls.syscalls(then.slice(i, i + abi.SYSMSG_BATCH_MAX));
    // The stub opens the path as the program gave it, from its own cwd (see SentryLink).
    const img = await loadProgram(calls, { path: a.file ?? a.path, argv: a.argv, envp: a.envp, execfn: a.path, usertrap: p.usertrap });
    const exe = canonical(programPath(p.hostPid, img.path));
    return { errno: 0, entry: img.entry, sp: img.sp, brkStart: img.brkStart, exe, ...(img.usertrapTable !== undefined ? { usertrapTable: img.usertrapTable } : {}) };
  } catch (e) {
    const errno = (e as SystrapError).errno;
    return { errno: typeof errno === 'number' && errno !== 0 ? Math.abs(errno) : ERRNO.ENOEXEC };
  }
}

/** What {@link execRequests} needs of a process (a ThreadGroup). */
export interface ExecRequester {
  readonly tgid: number;
  readonly hostPid: number;
  readonly file: NativeMemoryFile;
  readonly syscallMsg?: SyscallMsg;
  readonly tree: Pick<TreeHost, 'request' | 'region' | 'localExec'>;
  readonly attrs: { creds(): ProbeCreds | undefined };
  readonly usertrap?: unknown;
  /** A fork child's first thread the sentry holds the loop for (see PostedFirstThread). */
  readonly firstThread?: { settle(waitMs?: number): void };
  /** Its doorbell: rung (no wake syscall: this thread is the sleeper) when an answer is ready. */
  readonly queue: { ring(wake?: boolean): boolean };
  defer(fn: () => void): void;
}

/** Each process's client of its syscall thread, made at its first execve. */
const clients = new WeakMap<object, StubCalls>();

/**
 * The check and load of an execve (ExecHost's), made by the sentry itself when it can (its tree
 * allows it: no scenario faults armed at exec; the process's syscall-thread message is known;
 * for the load, the loop is free), else asked of the main thread as before. Either way the
 * answers act in the process's own turn (a failed load kills this process, not whichever
 * process's turn it is), and not at all once it ended.
 *
 * @example
 * ```ts
 * new ExecInProgress({ ...execRequests(p), liveTasks, interrupt, … }, t, args, onLoaded);
 * ```
 */
export function execRequests(p: ExecRequester): Pick<ExecHost, 'check' | 'load'> {
  const mainCheck: ExecHost['check'] = (path, load, done) =>
    p.tree.request({ type: 'execCheck', pid: p.tgid, path, creds: p.attrs.creds(), ...(load && { load }) }, 'execChecked', (r) =>
      p.defer(() => done(r.errno, r.loaded && loadedImage(r.loaded))),
    );
  const mainLoad: ExecHost['load'] = (a, done) => p.tree.request({ type: 'execLoad', pid: p.tgid, ...a }, 'execLoaded', (r) => p.defer(() => done(loadedImage(r))));
  const state = p.tree.localExec;
  if (!state || !p.syscallMsg) return { check: mainCheck, load: mainLoad };
  const calls = clientOf(p, p.syscallMsg);
  // Work in promises that resolve at once (every call blocks this thread): counted while under
  // way, so that the host lets them run before it waits (see SentryHost.run); the answer then
  // acts in the next turn. `end` runs once per piece of work, whichever way it ends.
  const begin = () => {
    state.pending++;
    let ended = false;
    return (then?: () => void) => {
      if (ended) return;
      ended = true;
      state.pending--;
      if (!then) return;
      p.defer(then);
      p.queue.ring(false); // the host's next wait returns at once
    };
  };
  const load = async (a: ExecLoadArgs, end: ReturnType<typeof begin>, done: (img: LoadedImage | number) => void): Promise<void> => {
    p.firstThread?.settle(FIRST_THREAD_WAIT_MS); // a fork child's: the sentry holds its loop until the answer
    if (!calls.hold(HOLD_WAIT_MS)) {
      state.main++;
      end();
      return mainLoad(a, done);
    }
    state.here++;
    const img = await loadHere(local(p), calls, a).finally(() => calls.release());
    end(() => done(loadedImage(img)));
  };
  return {
    check: (path, then, done) => {
      const end = begin();
      checkHere(local(p), path)
        .then((errno) => (errno !== 0 || !then ? end(() => done(errno)) : load(then, end, (img) => done(0, img))))
        .catch(() => end(() => done(ERRNO.ENOEXEC)));
    },
    load: (a, done) => {
      const end = begin();
      load(a, end, done).catch(() => end(() => done(ERRNO.ENOEXEC)));
    },
  };
}

/**
 * The process's client of its syscall thread (made at its first execve or fork by the sentry).
 *
 * @example
 * ```ts
 * const calls = clientOf(p, p.syscallMsg);
 * ```
 */
export function clientOf(p: Pick<ExecRequester, 'hostPid' | 'file' | 'tree'>, msg: SyscallMsg): StubCalls {
  let c = clients.get(p);
  if (!c) {
    const start = p.tree.region.start;
    const userLimit = start < abi.STUB_MAX_USER_ADDRESS ? start : abi.STUB_MAX_USER_ADDRESS;
    clients.set(p, (c = new StubCalls(p.file, msg, p.hostPid, userLimit)));
  }
  return c;
}

function local(p: ExecRequester): LocalExecProcess {
  const creds = p.attrs.creds();
  return { hostPid: p.hostPid, usertrap: p.usertrap !== undefined, region: p.tree.region, ...(creds ? { creds } : {}) };
}
