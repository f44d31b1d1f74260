import type { ActorRefFrom } from 'xstate';
import type { sysmsgThreadMachine } from '../machines/sysmsgThread.js';
import type { Runtime } from './runtime.js';
import type { SyscallThread } from './syscallThread.js';
import type { ContextQueue } from '../shm/contextQueue.js';
import type { TracerRequestBody, TransactionFault } from '../tracer/protocol.js';
import { SysmsgThread, type ArgumentPage } from './sysmsgThread.js';
import type { FileRange } from '../memoryFile.js';
import { PER_THREAD, abi, rulesAddr, threadSlotAddr } from '../abi/stub.js';
import { CLONE_FILES, CLONE_FS, CLONE_SIGHAND, CLONE_SYSVSEM, CLONE_THREAD, CLONE_VM, SIG } from '../abi/linux.js';
import { FORWARDED_SIGNALS, TRAP_SIGNALS } from '../abi/sysmsg.js';
import { tasksOf } from '../tracer/procfs.js';
import { native } from '../native.js';
import { reapWhenGone } from './reaping.js';
import { Errors, checkStubReply } from '../errors.js';

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

  constructor(private readonly host: SysmsgThreadHost) {}

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
      const id = `${this.host.id.replace('subprocess:', 'sysmsgThread:')}/${slot}`;
      const ref = rt.spawn({ kind: 'sysmsgThread', id, input: { slot } }) as ActorRefFrom<typeof sysmsgThreadMachine>;
      const smt = new SysmsgThread(ref, slot, this.host.threadShared(slot), this.host.control.file);
      this.bySlot.set(slot, smt);
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
          stackTAddr: smt.writeStackT(args, sharedAddr),
          fprogAddr: rulesAddr(rt.region),
          sigactionAddr: smt.writeSigaction(args, rt.region.sighandlerAddr, rt.region.restorerAddr),
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
      before = new Set(tasksOf(thread.pid));
      // Written when this request's turn comes: one page serves every creation in turn.
      const page = this.host.argumentPage();
      let mask = 0n;
      for (const sig of [...TRAP_SIGNALS, ...FORWARDED_SIGNALS]) mask |= 1n << BigInt(sig - 1);
      page.view.setBigUint64(abi.SYSMSG_THREAD_SIGNALS, mask, true);
      // A thread of the stub takes the signals sent to the stub's process: those it forwards to
      // the sentry (FORWARDED_SIGNALS, with the handler's) and no other, which stay pending (the
      // default action of one would kill the stub). The handler blocks the forwarded ones while
      // it runs (writeSigaction): they arrive only while program code runs.
      page.view.setBigUint64(abi.SYSMSG_THREAD_MASK, ~mask & 0xffffffffffffffffn, true);
      // A thread of the stub (gVisor's sysmsg threads are processes of their own; here threads,
      // so that /proc/self, resource limits and the process CPU clock are the stub's, as the
      // program's getpid says): its death by a signal is the stub's.
      const flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
      const priv = slotAddr + BigInt(PER_THREAD.privateStackOffset);
      const stackT = smt.writeStackT(page, sharedAddr);
      const act = smt.writeSigaction(page, rt.region.sighandlerAddr, rt.region.restorerAddr);
      args.push(flags, priv, BigInt(PER_THREAD.privateStackSize), stackT, act, rulesAddr(rt.region));
      // The loop is free once the stub answers: what follows reads /proc, not the message (a
      // fork child's first thread is made while the child runs, and its execve waits for the loop).
    }, true);
    // The answer is in memory the program can write: the tid is the stub's one new thread, as
    // /proc says (a wrong tid here would be a process Node kills later).
    const made = tasksOf(thread.pid).filter((c) => !before.has(c));
    try {
      checkStubReply(ret, { syscall: 'clone', expect: 'nonneg', pid: thread.pid });
      if (made.length !== 1) throw Errors.Protocol(`the stub made ${made.length} threads for one request`, thread.pid);
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
