import type { ActorRefFrom } from 'xstate';
import type { sysmsgThreadMachine } from '../machines/sysmsgThread.js';
import type { Runtime } from './runtime.js';
import type { SyscallThread } from './syscallThread.js';
import type { ContextQueue } from '../shm/contextQueue.js';
import type { TracerRequestBody, TransactionFault } from '../tracer/protocol.js';
import { SysmsgThread, writeSigaction, writeStackT } from './sysmsgThread.js';
import { FIRST_THREAD_SLOT, newThreadRequest, postThreadRequest, type ArgumentPage, type FirstThread } from '../shm/threadRequest.js';

export type { FirstThread };
import type { FileRange } from '../memoryFile.js';
import { PER_THREAD, abi, rulesAddr, threadSlotAddr } from '../abi/stub.js';
import { SIG } from '../abi/linux.js';
import { tasksOf } from '../tracer/procfs.js';
import { native } from '../native.js';
import { reapWhenGone } from './reaping.js';
import { Errors, checkStubReply } from '../errors.js';
import { SyscallThreadOwner } from '../shm/syscallThreadLock.js';
import type { ControlMemory } from './controlMemory.js';

/** What the sysmsg threads of one stub need of their subprocess. */
export interface SysmsgThreadHost {
  /** The subprocess's actor id (`subprocess:3`): thread ids derive from it. */
  readonly id: string;
  readonly rt: Runtime;
  /** The stub's syscall thread: every creation is a ptrace transaction on it. */
  readonly thread: SyscallThread;
  readonly alive: boolean;
  /** The runtime asked for the stub's death: a thread made meanwhile must die too. */
  readonly killRequested: boolean;
  ensureQueue(): Promise<ContextQueue>;
  /** Runs `fn` unless the stub is dead or faulted; a death it meets becomes the stub's. */
  guard<T>(fn: () => Promise<T>): Promise<T>;
  /** The shared part (signal stack and Msg page) of a sysmsg thread slot, in the control memory. */
  threadShared(slot: number): FileRange;
  /** The stub's control memory (its file holds the shared parts). */
  readonly control: { readonly file: import('../memoryFile.js').MemoryFile };
  /** The syscall thread's request page: where the creating transaction's arguments go. */
  argumentPage(): ArgumentPage;
  /** The stub is in a pid namespace of its own: tids it reports need translating. */
  readonly sandboxed: boolean;
}

/**
 * The sysmsg threads of one stub (gVisor's per-subprocess sysmsg threads and
 * createSysmsgThread/kickSysmsgThread): created lazily, up to `maxSysmsgThreads`, as contexts
 * need them; woken when more contexts than active threads wait.
 *
 * @example
 * ```ts
 * const threads = new SysmsgThreads(subprocess);
 * await threads.ensureRunning(); // at least one thread serves the queue
 * threads.kick();                 // a context was queued
 * ```
 */
export class SysmsgThreads {
  /** The threads, by slot. Protected by: the event loop. */
  readonly bySlot = new Map<number, SysmsgThread>();
  /** Threads being created (they count against maxSysmsgThreads). Protected by: the event loop. */
  #creating = 0;
  /** The first thread's creation under way (see ensureRunning). Protected by: the event loop. */
  #starting?: Promise<void>;
  /**
   * The stub's threads as /proc listed them after the last thread its loop made (the next
   * creation's "before": one /proc read per creation, not two), or undefined: read it then.
   * Nothing but the loop's creations adds a thread to the stub (the program's clone traps),
   * and none ends while the stub lives but one that failed to start (the list is read again
   * after a failure), so no number in it is a new thread's.
   * Protected by: the syscall thread's queue (creations by the loop are serialised there).
   */
  #tasks?: Set<number>;

  constructor(private readonly host: SysmsgThreadHost) {}

  /**
   * The stub is a fork's child: its only thread is the syscall thread `pid` (the kernel's fork
   * copies the calling thread alone), so its first creation need not list them.
   *
   * @example
   * ```ts
   * child.sysmsgThreads.forkedAlone(child.pid);
   * ```
   */
  forkedAlone(pid: number): void {
    this.#tasks = new Set([pid]);
  }

  get size(): number {
    return this.bySlot.size;
  }

  /** Host tids of the threads made so far, by slot (for interrupts from another thread). */
  tids(): Array<[slot: number, tid: number]> {
    return [...this.bySlot].filter(([, t]) => t.tid > 0).map(([slot, t]) => [slot, t.tid]);
  }

  /** The host tid of the thread in `slot` (0 when there is none yet); the slot comes from shared memory. */
  tid(slot: number): number {
    return this.bySlot.get(slot)?.tid ?? 0;
  }

  #running(): number {
    let n = 0;
    for (const t of this.bySlot.values()) if (t.state === 'running') n++;
    return n;
  }

  /**
   * Makes sure at least one thread runs (the fast path wakes threads, never makes them). Callers
   * that come while the first is being made wait for that one (a fork's stub starts making it
   * before anyone asks, see forkStub).
   */
  ensureRunning(): Promise<void> {
    if (this.#running() > 0) return Promise.resolve();
    this.#starting ??= this.#startOne().finally(() => (this.#starting = undefined));
    return this.#starting;
  }

  async #startOne(): Promise<void> {
    const q = await this.host.ensureQueue();
    q.threadStarting();
    this.#creating++;
    try {
      await this.create(undefined, 0n);
    } finally {
      this.#creating--;
    }
  }

  /**
   * Makes sure a thread will pick up what is queued (gVisor's kickSysmsgThread): when fewer
   * threads are active than contexts, wake a sleeping one, or create one up to
   * maxSysmsgThreads. With every thread busy, the next one to trap takes the context.
   * Precondition: the queue exists.
   */
  kick(q: ContextQueue): void {
    const running = this.#running();
    const active = Math.min(q.threadsComing, running + this.#creating); // stub-written: a hint, clamped
    if (active >= q.numActiveContexts) return;
    if (active < running) {
      q.wakeOne();
      return;
    }
    if (this.bySlot.size + this.#creating >= this.host.rt.maxSysmsgThreads) return;
    q.threadStarting();
    this.#creating++;
    this.create(undefined, 0n)
      .catch(() => {
        // the stub is dead or faulted: waiting contexts see it through their own wait
      })
      .finally(() => {
        this.#creating--;
        // Contexts queued while it was being made were not kicked (it counted as coming):
        // look again now that it runs.
        if (this.host.alive) this.kick(q);
      });
  }

  /** The thread of `slot`: its actor, counted in bySlot from now on. */
  #track(slot: number): SysmsgThread {
    const id = `${this.host.id.replace('subprocess:', 'sysmsgThread:')}/${slot}`;
    const ref = this.host.rt.spawn({ kind: 'sysmsgThread', id, input: { slot } }) as ActorRefFrom<typeof sysmsgThreadMachine>;
    const smt = new SysmsgThread(ref, slot, this.host.threadShared(slot), this.host.control.file);
    this.bySlot.set(slot, smt);
    return smt;
  }

  /**
   * Creates one sysmsg thread (gVisor's createSysmsgThread): a ptrace transaction on the
   * syscall thread clones and prepares it. `startWith`: the Msg.context it starts with (0n:
   * none, it looks in the queue); undefined: it is left parked.
   */
  create(fault?: TransactionFault, startWith?: bigint): Promise<SysmsgThread> {
    return this.host.guard(async () => {
      const { rt } = this.host;
      if (this.bySlot.size >= rt.maxSysmsgThreads) throw Errors.InvalidArg(`${this.host.id} has its ${rt.maxSysmsgThreads} sysmsg threads`);
      let slot = 1;
      while (this.bySlot.has(slot)) slot++;
      const smt = this.#track(slot);
      try {
        await this.host.ensureQueue(); // its signal stack and Msg page: mapped with the control memory
        smt.tid = await this.#clone(smt, fault, startWith);
        if (this.host.killRequested) killThread(smt.tid); // made while the stub was being killed
        return smt;
      } catch (e) {
        smt.failed(String((e as Error).message ?? e));
        this.bySlot.delete(slot);
        throw e;
      }
    });
  }

  /**
   * Makes the thread; returns its host tid. A thread that starts at once is made by the stub's
   * own loop (STUB_REQUEST_NEW_THREAD: no ptrace transaction, see stub.S); a parked one, or one
   * a scenario injects a fault into, by the requestThread transaction.
   */
  #clone(smt: SysmsgThread, fault: TransactionFault | undefined, startWith: bigint | undefined): Promise<number> {
    const { rt, thread } = this.host;
    const slotAddr = threadSlotAddr(rt.region, smt.slot);
    const sharedAddr = slotAddr + BigInt(PER_THREAD.sharedOffset);
    if (startWith !== undefined) smt.writeMsg(sharedAddr, startWith, rt.region.syshandlerAddr);
    // A scenario's fault for the next requestThread is taken now: it makes this creation one.
    fault ??= rt.tracers.faultHook?.({ op: 'requestThread' } as TracerRequestBody);
    if (startWith !== undefined && !fault && thread.msg) return this.#cloneByStub(smt, slotAddr, sharedAddr);
    return thread.transact<number>(
      () => {
        // stack_t and sigaction, where the new thread can read them and no program thread can
        // change them: the syscall thread's request page, read-only in the stub. Written when
        // this transaction's turn comes: one page serves every creation in turn.
        const args = this.host.argumentPage();
        return {
          op: 'requestThread',
          thread: thread.threadRef(),
          loop: thread.loop(),
          slotAddr,
          stackTAddr: writeStackT(args, sharedAddr),
          fprogAddr: rulesAddr(rt.region),
          sigactionAddr: writeSigaction(args, rt.region.sighandlerAddr, rt.region.restorerAddr),
          start: startWith !== undefined,
          fault,
        };
      },
      (step) => smt.apply(step),
    );
  }

  /** The thread made and started by the stub's loop; its steps are reported once it answers. */
  async #cloneByStub(smt: SysmsgThread, slotAddr: bigint, sharedAddr: bigint): Promise<number> {
    const { rt, thread } = this.host;
    const args: bigint[] = [];
    let before = new Set<number>();
    const ret = await thread.syscall(abi.STUB_REQUEST_NEW_THREAD, args, () => {
      before = this.#tasks ?? new Set(tasksOf(thread.pid));
      this.#tasks = undefined; // until this creation's list is read
      // Written when this request's turn comes: one page serves every creation in turn.
      args.push(...newThreadRequest(rt.region, this.host.argumentPage(), slotAddr, sharedAddr));
      // The loop is free once the stub answers: what follows reads /proc, not the message (a
      // fork child's first thread is made while the child runs, and its execve waits for the loop).
    }, true);
    return this.#made(smt, ret, before);
  }

  /**
   * The stub answered the NEW_THREAD request of `smt` with `ret`. The answer is in memory the
   * program can write: the tid is the stub's one new thread, as /proc says (a wrong tid here
   * would be a process Node kills later). Returns it.
   */
  #made(smt: SysmsgThread, ret: bigint, before: Set<number>): number {
    const pid = this.host.thread.pid;
    const after = tasksOf(pid);
    const made = after.filter((c) => !before.has(c));
    try {
      checkStubReply(ret, { syscall: 'clone', expect: 'nonneg', pid });
      if (made.length !== 1) throw Errors.Protocol(`the stub made ${made.length} threads for one request`, pid);
      this.#tasks = new Set(after);
    } catch (e) {
      for (const tid of made) killThread(tid); // a thread of the stub: SIGKILL ends the stub
      throw e;
    }
    const tid = made[0];
    smt.ofStub = true;
    for (const type of ['STACK_MAPPED', 'SECCOMP_INSTALLED', 'STARTED'] as const) smt.apply({ type, tid });
    return tid;
  }

  /**
   * A fork child's first thread, asked of its loop before the loop ran (see postFirstThread):
   * its actor, and the answer awaited as the first operation of the syscall thread's queue.
   * The sentry's ensureThread waits for it as for any first thread. Precondition: called once,
   * right after the subprocess is made, before anything else uses its syscall thread.
   *
   * @example
   * ```ts
   * sp.sysmsgThreads.adoptFirst(first); // first = postFirstThread(...) before the fork's ack
   * ```
   */
  adoptFirst(first: FirstThread): Promise<void> {
    // The syscall thread's first operation, queued now (nothing may be posted to the loop
    // before this answer: the answer's state is the one the request was posted with).
    const answer = first.answer ?? this.host.guard(() => this.host.thread.adoptPosted(first.state));
    answer.catch(() => undefined); // awaited below, unless the queue failed first
    const smt = this.#track(first.slot);
    this.#creating++;
    this.#starting = (async () => {
      try {
        await this.host.ensureQueue(); // counted active as it was posted (see prepareChild)
        const ret = await answer;
        smt.tid = this.#made(smt, ret, new Set([this.host.thread.pid]));
        if (this.host.killRequested) killThread(smt.tid); // made while the stub was being killed
      } catch (e) {
        smt.failed(String((e as Error).message ?? e));
        this.bySlot.delete(first.slot);
        throw e;
      } finally {
        this.#creating--;
      }
    })().finally(() => (this.#starting = undefined));
    return this.#starting;
  }

  /**
   * Kills every thread: those the loop made are the stub's own threads (their SIGKILL is the
   * stub's); those a transaction made are processes of their own, which PDEATHSIG ends when the
   * stub dies, but they are killed first all the same, so that none outlives it.
   */
  killAll(): void {
    // The stub's own threads die with the stub's SIGKILL, which follows: one kill is enough.
    for (const t of this.bySlot.values()) if (t.tid > 0 && !t.ofStub) killThread(t.tid);
  }

  /** Records their death (the stub's). */
  exited(reason: string): void {
    for (const t of this.bySlot.values()) t.exited(reason);
  }

  /**
   * After the stub's exit: its threads (children of the stub, dying of PDEATHSIG) were
   * reparented to the nearest reaper. When that is Node (PID 1 of a container, or a
   * subreaper), nobody else will reap them: each is reaped here once its exit is seen. When it
   * is another process, wait4 says ECHILD and there is nothing to do. (Programs run in a pid
   * namespace whose init reaps its orphans: see the sandbox.)
   */
  reapOrphans(): void {
    for (const t of this.bySlot.values()) {
      if (t.tid <= 0 || t.ofStub) continue; // a thread of the stub: nobody's child
      reapWhenGone(t.tid);
    }
  }
}

function killThread(tid: number): void {
  try {
    native.kill(tid, SIG.SIGKILL);
  } catch {
    // already gone
  }
}

/**
 * Asks a fork child's loop for its first sysmsg thread before the loop runs (before Node
 * acknowledges the child's memfd, see forkStub): the loop finds the request as it starts, and
 * the thread is made while Node builds the child's actors, not after (a few hundred µs of
 * every fork). The loop is held for the main thread (the answer lets go of it, see
 * SyscallThread.adoptPosted). Preconditions: see postThreadRequest.
 *
 * @example
 * ```ts
 * const first = postFirstThread(rt, control, { range: msgRange, addr: msgAddr });
 * thread.ackFork(state); // the child maps its memory, and its loop makes the thread
 * ```
 */
export function postFirstThread(rt: Runtime, control: ControlMemory, msg: { range: FileRange; addr: bigint }): FirstThread {
  return postThreadRequest(control.file.shared, rt.region, control.threadShared(FIRST_THREAD_SLOT), msg, SyscallThreadOwner.Main);
}
