import type { ProcessFault } from '../platformPort.js';
import { syncAttrs } from './syncAttrs.js';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ProcessEvent } from '../machines/process.js';
import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { debuglog } from 'node:util';
import { AddressSpace } from '../addressSpace.js';
import type { AdoptedContext, EarlyFork, PlatformPort, StubPort } from '../platformPort.js';
import type { TaskEvent } from '../machines/task.js';
import { SYS } from '../abi/syscalls.js';
import { ERRNO } from '../abi/linux.js';
import type { SystrapError } from '../errors.js';
import { loadProgram } from './exec/loader.js';
import { checkExecutable } from './exec/check.js';
import { canonical, nameCall } from './processSetup.js';
import { closeOnExecCalls, programPath } from './exec/execSteps.js';
import { takeStubSignals } from './takeStubSignals.js';
import { killAndReap } from '../actors/stubCreation.js';
import { native } from '../native.js';
import type { ExecLoadArgs, ExecLoadResult, SentryMail, SentryRequest } from './protocol.js';

/**
 * `NODE_DEBUG=systrap`: why a fork failed inside systrap (the program sees only its errno). A
 * kernel's refusal (a limit) and a failure of ours look the same to the program.
 */
const debug = debuglog('systrap');

/** How often the main thread tells the sentry the tids of sysmsg threads made meanwhile. */
const THREAD_SYNC_MS = 20;

/** One process of the program, on the main thread: its address space, its stub, its contexts. */
interface LinkedProcess {
  readonly as: AddressSpace;
  readonly stub: StubPort;
  readonly contexts: Map<number, AdoptedContext>;
  /** The sysmsg thread tids last sent to the sentry (JSON). */
  tids: string;
  /** The task attributes' generation its syscall thread holds (see syncAttrs); 0: as it started. */
  attrsGen?: number;
}

/**
 * The main thread's side of a sentry worker (the worker's is kernel/mailbox.ts), for the whole
 * tree of processes of one program: answers its requests (contexts for new threads, sysmsg
 * threads, execve images, forks), releases what an ended process held, forwards signals and the
 * sysmsg threads' host tids, and relays lifecycle steps to the context actors and, when the
 * platform is inspected, to one task actor per program thread.
 *
 * @example
 * ```ts
 * const link = new SentryLink(platform.port, { pid, as, contexts }, port1, mail);
 * link.send({ type: 'signal', signo: SIG.SIGINT });
 * await link.releaseAll(); // once the sentry is done
 * ```
 */
export class SentryLink {
  readonly #mail: Int32Array;
  readonly #timer: NodeJS.Timeout;
  /** The program's processes that still hold a stub, by pid (as the program sees it). */
  readonly #procs = new Map<number, LinkedProcess>();
  /** Mirror actors of the program's threads, by tid (inspection only). */
  readonly #tasks = new Map<number, { send(event: TaskEvent): void }>();
  readonly #program: number;
  /** The `process` actors of the program's live and zombie processes, by pid. */
  /** Scenario faults for the load of an execve that passed its check, by pid. */
  readonly #execFaults = new Map<number, ProcessFault>();
  readonly #processActors = new Map<number, { send(event: ProcessEvent): void }>();
  /** Called when the first process stops or continues (see ProgramHandle.onStop). */
  onStop?: (stopped: boolean, signo: number) => void;
  /**
   * Fork children the sentry has whose actors are being made, by pid: requests naming one wait
   * for it (see #fork). Protected by: the event loop.
   */
  readonly #making = new Map<number, Promise<void>>();
  /** First-thread answers to come for children the sentry forked (see PostedFirstThread), by pid; -ESRCH if one ends first. */
  readonly #firstAnswers = new Map<number, (ret: bigint) => void>();
  /** What lets go of a fork child's memory once the sentry is done with it (see EarlyFork.letGo), by pid. */
  readonly #holds = new Map<number, () => void>();
  /** Forks and releases under way (releaseAll waits for them: a program's end is all of it gone). */
  readonly #pending = new Set<Promise<unknown>>();

  /** The calls whose sites the sentry patches (see usertrap.ts), if patching is on: an exec maps a table. */
  readonly #usertrapCalls?: number[];
  /** The program runs in a sandbox (its stubs are not Node's children: the sandbox's init reaps them). */
  readonly #sandboxed: boolean;

  constructor(
    readonly port: PlatformPort,
    root: { pid: number; as: AddressSpace; contexts: Map<number, AdoptedContext>; usertrapCalls?: number[] },
    readonly messages: MessagePort,
    mail: SharedArrayBuffer,
  ) {
    this.#usertrapCalls = root.usertrapCalls;
    this.#sandboxed = port.sandboxed(root.as);
    this.#mail = new Int32Array(mail);
    this.#procs.set(root.pid, { as: root.as, stub: port.stub(root.as), contexts: root.contexts, tids: '' });
    this.#program = port.nextId('program');
    messages.on('message', (m: SentryRequest) => void this.#onRequest(m));
    // New sysmsg threads appear as the stubs' kicks create them: tell the sentry their tids.
    this.#timer = setInterval(() => this.syncThreads(), THREAD_SYNC_MS);
  }

  send(m: SentryMail): void {
    this.messages.postMessage(m);
    Atomics.add(this.#mail, 0, 1);
    Atomics.notify(this.#mail, 0);
    // The worker may sleep on the stubs' doorbells: ring them. It sleeps once on all of them
    // (futex_waitv): one wake-up is enough, each more a wasted syscall of tens of µs.
    let woke = false;
    for (const p of this.#procs.values()) woke = p.stub.ringDoorbell(!woke) || woke;
  }

  syncThreads(): void {
    for (const [pid, p] of this.#procs) {
      const tids = p.stub.sysmsgThreadTids();
      const key = JSON.stringify(tids);
      if (key === p.tids) continue;
      p.tids = key;
      this.send({ type: 'threads', pid, tids });
    }
  }

  /**
   * Ends the link once the worker's task is over. Its last messages (the final task events,
   * context exits) may still wait on the port: piscina's result travels on another channel and
   * can come first. They are taken now, before the port closes.
   */
  close(): void {
    clearInterval(this.#timer);
    for (let m = receiveMessageOnPort(this.messages); m; m = receiveMessageOnPort(this.messages)) {
      const r = m.message as SentryRequest;
      if (r.type === 'taskEvents' || r.type === 'contextExit' || r.type === 'contextEvent' || r.type === 'processExit' || r.type === 'forkLost') void this.#onRequest(r);
      else if (r.type === 'forkedHere') {
        // A child the sentry forked as the program ended: never taken over.
        native.closeFd(r.fd);
        killAndReap(r.hostPid, this.#sandboxed);
      }
    }
    for (const answer of this.#firstAnswers.values()) answer(-BigInt(ERRNO.ESRCH));
    this.messages.close();
  }

  /** Releases every process still held (the program is over, or never started). */
  async releaseAll(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
    // The sentry is done: an exec it was making when it was stopped holds the loop no more.
    for (const p of this.#procs.values()) p.stub.reclaimSyscallThread();
    await Promise.all([...this.#procs.keys()].map((pid) => this.#release(pid)));
    for (const letGo of this.#holds.values()) letGo(); // children whose actors were never made
    this.#holds.clear();
  }

  #release(pid: number): Promise<void> {
    this.#firstAnswers.get(pid)?.(-BigInt(ERRNO.ESRCH)); // it ended before its first thread was made
    const p = this.#procs.get(pid);
    const letGo = this.#holds.get(pid);
    this.#holds.delete(pid);
    if (!p) {
      letGo?.();
      return Promise.resolve();
    }
    this.#procs.delete(pid);
    return this.#track(
      (async () => {
        await this.#fault(this.port.processFault('exit', pid), p.as.pid);
        await p.as.release().catch(() => undefined);
        for (const c of p.contexts.values()) c.release();
        letGo?.();
      })(),
    );
  }

  /** A scenario's kill or delay at a process's exec or exit (see PlatformPort.processFault). */
  async #fault(f: ProcessFault | undefined, hostPid: number): Promise<void> {
    if (f?.action === 'delay') await sleep(f.ms ?? 0);
    if (f?.action === 'kill') {
      try {
        process.kill(hostPid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
  }

  /** Keeps `work` in #pending until it settles. */
  async #track<T>(work: Promise<T>): Promise<T> {
    this.#pending.add(work);
    try {
      return await work;
    } finally {
      this.#pending.delete(work);
    }
  }

  #proc(pid: number): LinkedProcess {
    const p = this.#procs.get(pid);
    if (!p) throw new ProcessGone(pid);
    return p;
  }

  async #onRequest(m: SentryRequest): Promise<void> {
    if (m.type === 'forkedHere') return this.#forkedHere(m);
    if (m.type === 'firstThread') return this.#firstAnswers.get(m.pid)?.(m.ret);
    if (m.type === 'forkLost') return killAndReap(m.hostPid, this.#sandboxed);
    try {
      const making = 'pid' in m ? this.#making.get(m.pid) : undefined;
      if (making) await making;
      switch (m.type) {
        case 'needThread':
          return this.#procs.get(m.pid)?.stub.kick();
        case 'newContext': {
          const p = this.#proc(m.pid);
          const ctx = await this.port.adoptContext(p.as);
          p.contexts.set(ctx.id, ctx);
          return this.send({ type: 'context', req: m.req, id: ctx.id, slot: ctx.slot });
        }
        case 'contextEvent':
          return this.#contextEvent(m.pid, m.id, m.sysno);
        case 'contextExit': {
          const p = this.#procs.get(m.pid);
          p?.contexts.get(m.id)?.release();
          p?.contexts.delete(m.id);
          return;
        }
        case 'taskEvents':
          return this.#taskEvents(m.events);
        case 'execCheck': {
          const p = this.#proc(m.pid);
          // One fault per execve: a failure here, a kill or a delay at its load.
          const f = this.port.processFault('exec', m.pid);
          if (f?.action === 'fail') return this.send({ type: 'execChecked', req: m.req, errno: f.errno ?? ERRNO.ENOMEM });
          if (f) this.#execFaults.set(m.pid, f);
          // The program's credentials matter only to a root Node (another's cannot differ from its own).
          const creds = process.geteuid?.() === 0 ? m.creds : undefined;
          const errno = await checkExecutable(m.path, (path) => programPath(p.as.pid, path, creds !== undefined), creds);
          if (errno !== 0 || !m.load) return this.send({ type: 'execChecked', req: m.req, errno });
          return this.send({ type: 'execChecked', req: m.req, errno, loaded: await this.#exec(p, m.pid, m.load) });
        }
        case 'execLoad':
          return this.send({ type: 'execLoaded', req: m.req, ...(await this.#exec(this.#proc(m.pid), m.pid, m)) });
        case 'fork':
          return this.send(await this.#track(this.#fork(m)));
        case 'processExit':
          return this.#release(m.pid);
        case 'takeSignals':
          return this.send({ type: 'signalsTaken', req: m.req, signals: await takeStubSignals(this.#proc(m.pid), m.set) });
        case 'processEvent':
          return this.#processEvent(m);
        case 'rootStopped':
          return this.onStop?.(m.stopped, m.signo);
      }
    } catch (e) {
      // A request of a process that has ended meanwhile is moot (its reply would go nowhere):
      // also one that failed because the process ended while it ran (a kill during its exec:
      // its stub died under the request).
      const gone = e instanceof ProcessGone || ('pid' in m && !this.#procs.has(m.pid));
      // A stub that died under the request: the process is killed (the kernel ends it).
      const stubDead = !gone && (e as { code?: string }).code === 'ESTUBDEAD';
      if ('req' in m) this.send({ type: 'failed', req: m.req, message: String((e as Error).message ?? e), gone, stubDead });
    }
  }

  /**
   * A fork: the parent's address space forked (the kernel's copy-on-write copy, see
   * AddressSpace.fork), the child's first context bound and a sysmsg thread on its way. The
   * reply goes before the child's actors are made (PlatformPort.forkEarly: the sentry runs the
   * child meanwhile); requests naming the child wait for them (see #making). A failure is the
   * fork's errno (EAGAIN: no process could be made), the program goes on.
   */
  async #fork(m: Extract<SentryRequest, { type: 'fork' }>): Promise<SentryMail> {
    const parent = this.#proc(m.pid);
    const f = this.port.processFault('fork', m.pid);
    if (f?.action === 'fail') return { type: 'forked', req: m.req, errno: f.errno ?? ERRNO.EAGAIN };
    if (f?.action === 'delay') await sleep(f.ms ?? 0);
    let child: EarlyFork | undefined;
    try {
      // The child is a copy of the syscall thread: it takes on the credentials and limits first.
      if (m.attrs && m.attrs.gen > (parent.attrsGen ?? 0)) {
        await syncAttrs(parent.as, parent.stub, m.attrs.values);
        parent.attrsGen = m.attrs.gen;
      }
      child = await this.port.forkEarly(parent.as);
      const pid = this.port.sandboxed(parent.as) ? child.nsPid : child.hostPid;
      // CLONE_PIDFD: the parent's pidfd for the child, made in the parent (its fd table), by
      // the pid it knows the child by. Close-on-exec, as pidfd_open makes them.
      const pidfd = m.pidfd ? Number(await parent.as.syscall(SYS.pidfd_open, BigInt(pid), 0n)) : undefined;
      if (pidfd !== undefined && pidfd < 0) throw new Error(`pidfd_open: ${-pidfd}`);
      if (f?.action === 'kill') process.kill(child.hostPid, 'SIGKILL'); // the kernel finds it dead
      this.#adopt(pid, child);
      return { type: 'forked', req: m.req, errno: 0, pid, hostPid: child.hostPid, memory: child.memory, queue: child.queue, main: child.main, pidfd, syscallMsg: child.syscallMsg };
    } catch (e) {
      debug('fork of process %d failed: %s (the program sees EAGAIN)', m.pid, (e as Error)?.message ?? e);
      if (child) {
        // The sentry never hears of it.
        const { hostPid, made, letGo } = child;
        killStub(hostPid);
        void made.then(({ as, main }) => {
          main.release();
          return as.release();
        }).catch(() => undefined).finally(letGo);
      }
      return { type: 'forked', req: m.req, errno: ERRNO.EAGAIN };
    }
  }

  /**
   * A fork the sentry made itself (see src/sentry/kernel/localFork.ts): the child, which runs
   * already, taken over as a fork of ours once its parent's actors exist. Registered before
   * anything is awaited: what names the child from now on waits for it. A child that cannot be
   * taken over is killed (the sentry sees it die by SIGKILL).
   */
  #forkedHere(m: Extract<SentryRequest, { type: 'forkedHere' }>): void {
    // Its first thread's answer comes from the sentry, which holds the child's loop for it.
    const answer = new Promise<bigint>((resolve) =>
      this.#firstAnswers.set(m.child, (ret) => {
        this.#firstAnswers.delete(m.child);
        resolve(ret);
      }),
    );
    const take = () => {
      let given = false;
      try {
        const parent = this.#proc(m.pid);
        given = true; // the fd is adoptFork's from here, whatever happens
        const child = this.port.adoptFork(parent.as, { hostPid: m.hostPid, nsPid: m.nsPid, fd: m.fd, first: { ...m.first, answer } });
        if (child.main.id !== m.mainId) throw new Error(`the fork child's first context is ${child.main.id} here, ${m.mainId} in the sentry`);
        return this.#adopt(m.child, child);
      } catch (e) {
        debug('fork child %d made by the sentry could not be taken over: %s (it is killed)', m.child, (e as Error)?.message ?? e);
        if (!given) native.closeFd(m.fd);
        killAndReap(m.hostPid, this.#sandboxed);
      }
    };
    const parentMade = this.#making.get(m.pid);
    if (!parentMade) return void take();
    // Meanwhile what names the child waits for its parent's actors, then for its own (#adopt's).
    const entry: Promise<void> = this.#track(
      parentMade.then(() => {
        take();
        return this.#making.get(m.child);
      }),
    ).finally(() => {
      if (this.#making.get(m.child) === entry) this.#making.delete(m.child);
    });
    this.#making.set(m.child, entry);
  }

  /**
   * The fork child `pid` (the sentry has it): its process entry once its actors are made, its
   * first sysmsg thread awaited (a child whose thread cannot be made is killed: the sentry sees
   * it end by SIGKILL), as is a child whose actors could not be made.
   */
  #adopt(pid: number, child: EarlyFork): void {
    this.#holds.set(pid, child.letGo);
    const done = this.#track(
      child.made.then(
        ({ as, main }) => {
          const stub = this.port.stub(as);
          this.#procs.set(pid, { as, stub, contexts: new Map([[main.id, main]]), tids: '' });
          stub.ensureThread().catch(() => killStub(child.hostPid));
        },
        (e) => {
          debug('fork child %d could not be made: %s (it is killed)', pid, (e as Error)?.message ?? e);
          killStub(child.hostPid);
        },
      ),
    ).finally(() => this.#making.delete(pid));
    this.#making.set(pid, done);
  }

  /** One trap and the switch back, as the context's actor would have seen them on the slow path. */
  #contextEvent(pid: number, id: number, sysno: number): void {
    const ctx = this.#procs.get(pid)?.contexts.get(id);
    if (!ctx) return;
    ctx.report('TRAPPED_SYSCALL', sysno);
    ctx.report('SWITCH');
    ctx.report('RUNNING');
  }

  /** A program process's lifecycle, into its `process` actor (made at START, under its parent's). */
  #processEvent(m: Extract<SentryRequest, { type: 'processEvent' }>): void {
    const id = (pid: number) => `process:${this.#program}/${pid}`;
    if (m.event === 'START') {
      this.#processActors.set(m.pid, this.port.mirrorProcess(id(m.pid), { pid: m.pid, ...(m.parent ? { parent: id(m.parent) } : {}) }));
      return;
    }
    const actor = this.#processActors.get(m.pid);
    if (m.event === 'EXIT') actor?.send({ type: 'EXIT', ...(m.status !== undefined ? { status: m.status } : {}), ...(m.signal !== undefined ? { signal: m.signal } : {}) });
    else if (m.event === 'STOP') actor?.send({ type: 'STOP', ...(m.signal !== undefined ? { signal: m.signal } : {}) });
    else actor?.send({ type: m.event });
    if (m.event === 'REAP') this.#processActors.delete(m.pid);
  }

  #taskEvents(events: Array<[number, TaskEvent['type']]>): void {
    for (const [tid, type] of events) {
      let actor = this.#tasks.get(tid);
      if (!actor) {
        actor = this.port.mirrorTask(`task:${this.#program}/${tid}`);
        this.#tasks.set(tid, actor);
      }
      actor.send({ type });
    }
  }

  /** An execve's load, past its point of no return (the old image goes first). */
  async #exec(p: LinkedProcess, pid: number, m: ExecLoadArgs): Promise<ExecLoadResult> {
    const f = this.#execFaults.get(pid);
    this.#execFaults.delete(pid);
    await this.#fault(f, p.as.pid);
    // One round trip: the old image gone, the close-on-exec fds closed, the stub named after
    // the file execve was given, as given (a script's name, not its interpreter's; `exe` for
    // /proc/self/exe, which busybox renames), as Linux names it right after its point of no return.
    const calls = [...closeOnExecCalls(p.as.pid), nameCall(p.stub, m.path)];
    const first = AddressSpace.MAX_BATCH - 2;
    await p.stub.unmapApplication(calls.slice(0, first));
    for (let i = first; i < calls.length; i += AddressSpace.MAX_BATCH) await p.as.syscalls(calls.slice(i, i + AddressSpace.MAX_BATCH));
    try {
      // The stub opens the path as the program gave it, from its own cwd: Node's /proc/PID/cwd
      // form names a pid the stub cannot see from inside a sandbox's pid namespace.
      const calls = this.#usertrapCalls;
      const img = await loadProgram(p.as, { path: m.file ?? m.path, argv: m.argv, envp: m.envp, execfn: m.path, usertrap: calls !== undefined });
      // /proc/self/exe is the ELF file mapped: for a script, the interpreter, whose path (maybe
      // relative) was opened from the program's cwd.
      const loaded = canonical(programPath(p.as.pid, img.path));
      const usertrap = img.usertrapTable !== undefined ? { usertrapTable: img.usertrapTable } : {};
      return { errno: 0, entry: img.entry, sp: img.sp, brkStart: img.brkStart, exe: loaded, ...usertrap };
    } catch (e) {
      const errno = (e as SystrapError).errno;
      return { errno: typeof errno === 'number' ? Math.abs(errno) : ERRNO.ENOEXEC };
    }
  }
}

/** SIGKILL to a stub (gone already: nothing to do). */
function killStub(hostPid: number): void {
  try {
    process.kill(hostPid, 'SIGKILL');
  } catch {
    // gone already
  }
}

/** A request named a process that no longer holds a stub (it ended while the request was on its way). */
class ProcessGone extends Error {
  constructor(pid: number) {
    super(`process ${pid} has ended`);
  }
}
