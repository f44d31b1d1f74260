import { interruptThread } from '../shm/interrupt.js';
import type { ActorRefFrom } from 'xstate';
import type { platformContextMachine } from '../machines/platformContext.js';
import type { Runtime } from './runtime.js';
import { subprocessOf, type AddressSpace } from '../addressSpace.js';
import type { Subprocess } from './subprocess.js';
import type { FileRange } from '../memoryFile.js';
import type { ContextQueue } from '../shm/contextQueue.js';
import { BUDGETS, spinUntil } from '../shm/budgets.js';
import { resolveWorker } from '../workerFile.js';
import { REGISTER_NAMES, SYSCALL_ARG_REGS, type Registers } from '../abi/registers.js';
import { ContextState, THREAD_CONTEXT } from '../abi/sysmsg.js';
import { Errors, SystrapError, toSystrapError } from '../errors.js';
import type { RunResult, RunTask } from '../../workers/runner.js';
import { UserTrap } from '../shm/usertrap.js';
import { fsgsbaseAllowed } from '../shm/hostCpu.js';
import { native } from '../native.js';
import { SYS } from '../abi/syscalls.js';
import { MAP_ANONYMOUS, MAP_FIXED_NOREPLACE, MAP_PRIVATE, PROT_EXEC, PROT_READ, SIG } from '../abi/linux.js';

/** What a switch ended with (gVisor's Switch results). */
export type SwitchEvent =
  | { kind: 'syscall'; sysno: number; args: bigint[] }
  | { kind: 'signal'; signo: number; code: number; addr: bigint; access: { read: boolean; write: boolean; execute: boolean } }
  | { kind: 'interrupt' };

/**
 * A platform context (gVisor's platformContext + sharedContext): one application thread's
 * ThreadContext slot, queued in a stub's context queue on each switch and run by whichever
 * sysmsg thread takes it; the sentry then waits (off the event loop) for the trap. Its lifecycle
 * is a platformContext machine actor (`ref`).
 *
 * @example
 * ```ts
 * const ctx = platform.newContext();
 * let ev = await ctx.switchToApp(as, regs);
 * while (ev.kind === 'syscall') { regs.rax = handle(ev); ev = await ctx.switchToApp(as, regs); }
 * ```
 */
export class PlatformContext {
  readonly ref: ActorRefFrom<typeof platformContextMachine>;
  /**
   * The stub the context is bound to (gVisor's sharedContext): its id and ThreadContext slot
   * belong to that stub's control memory; switching to another stub binds it there anew.
   */
  #sp?: Subprocess;
  #id = -1;
  #slot: FileRange = { start: 0, end: 0 };
  #view: DataView = new DataView(new ArrayBuffer(0));
  #u32: Uint32Array = new Uint32Array(0);
  /** The stub the context is queued or running in, during a switch. */
  #running?: Subprocess;
  #interruptPending = false;
  #released = false;
  /** The runtime (not the caller) interrupted the running switch to let others run. */
  #preempted = false;
  /** Counted in its stub queue's numAwakeContexts (from its first switch until release). */
  #awake = false;

  constructor(private readonly rt: Runtime) {
    this.ref = rt.spawn({ kind: 'platformContext', id: `platformContext:${rt.nextId('platformContext')}` }) as ActorRefFrom<typeof platformContextMachine>;
  }

  /** The context's id in the stub it is bound to (what the stub's queue carries); -1 before its first switch. */
  get id(): number {
    return this.#id;
  }

  /** Its ThreadContext slot in the memory file (in its stub's control memory). */
  get slotRange(): FileRange {
    return this.#slot;
  }

  /** Binds the context to `sp`: an id and a slot there, the old stub's given back. */
  #bind(sp: Subprocess): void {
    if (this.#sp === sp) return;
    this.#unbind();
    const { id, slot } = sp.control.bindContext();
    this.#sp = sp;
    this.#id = id;
    this.#slot = slot;
    const v = sp.control.file.view(this.#slot);
    this.#view = new DataView(v.buffer, v.byteOffset, v.byteLength);
    this.#u32 = new Uint32Array(v.buffer, v.byteOffset, v.byteLength / 4);
    this.#view.setBigUint64(THREAD_CONTEXT.fpstateChanged, 0n, true); // a reused slot's FP state is not ours
  }

  /** Leaves its stub: out of its awake count, its id free again, its slot no longer used. */
  #unbind(): void {
    const sp = this.#sp;
    if (!sp) return;
    if (this.#awake && sp.alive) sp.queue?.awake(-1);
    this.#awake = false;
    sp.control.unbindContext(this.#id);
    this.#sp = undefined;
    this.#id = -1;
  }

  get state(): string {
    return String(this.ref.getSnapshot().value);
  }

  /**
   * Runs `regs` in the address space until the application makes a syscall, faults or is
   * interrupted; `regs` is updated in place to the registers at the trap. To return a value from
   * a syscall, set `regs.rax` and switch again.
   */
  async switchToApp(as: AddressSpace, regs: Registers): Promise<SwitchEvent> {
    if (this.#released) throw Errors.Released('context');
    if (this.#running) throw Errors.InvalidArg('switchToApp is already running on this context');
    if (this.#interruptPending) {
      this.#interruptPending = false;
      return { kind: 'interrupt' };
    }
    const sp = this.#enter(as);
    try {
      let q: ContextQueue;
      try {
        q = await this.#prepare(sp);
      } catch (e) {
        // A dead stub (or any failure to map the slot): the context's switch failed for good.
        this.ref.send({ type: 'FAULTED', reason: toSystrapError(e).message });
        throw toSystrapError(e);
      }
      // interrupt() while the switch was being prepared must not be lost: the flag below is
      // cleared for the new run.
      if (this.#interruptPending) {
        this.#interruptPending = false;
        this.ref.send({ type: 'RUNNING' });
        this.ref.send({ type: 'INTERRUPTED' });
        return { kind: 'interrupt' };
      }
      writeRegs(this.#view, regs);
      this.#store(THREAD_CONTEXT.interrupt, 0);
      this.#store(THREAD_CONTEXT.state, ContextState.None);
      for (;;) {
        // Straight back to the stub thread spinning for it, if any; else queued and kicked.
        if (!q.resume(this.id, this.#u32)) sp.kick();
        this.ref.send({ type: 'RUNNING' });
        let state = ContextState.None as number;
        const trapped = () => (state = Atomics.load(this.#u32, THREAD_CONTEXT.state / 4)) !== ContextState.None;
        this.#preempted = false;
        try {
          // Bounded spin on this thread first (the trap usually comes within microseconds when a
          // stub thread spins too); then one wait per stub on the libuv pool.
          if (!spinUntil(trapped, BUDGETS.switchSpinNs)) await sp.dispatcher!.waitContext(this, trapped, () => this.#preempt(sp));
        } catch (e) {
          const err = toSystrapError(e);
          this.ref.send({ type: 'FAULTED', reason: err.message });
          if (err.code === 'ESTUBDEAD') throw Errors.StubDead(sp.pid, 'while running a context');
          throw err;
        }
        // A preemption is the runtime's business, not the caller's: back into the queue.
        if (this.#preempted && !this.#interruptPending && state === ContextState.Fault && this.#signo() === SIG.SIGCHLD) {
          this.ref.send({ type: 'INTERRUPTED' });
          readRegs(this.#view, regs);
          this.ref.send({ type: 'SWITCH' });
          this.#store(THREAD_CONTEXT.interrupt, 0);
          this.#store(THREAD_CONTEXT.state, ContextState.None);
          continue;
        }
        return this.#decode(sp, state, regs);
      }
    } finally {
      this.#running = undefined;
      if (this.#released) this.#unbind();
    }
  }

  /**
   * The fast path: runs the program on a runner worker, where `handler` (a module URL exporting
   * `handle(event, regs): boolean`) answers each syscall by setting `regs.rax` and returning
   * true to go on. Resolves with the first event the handler declines (returns false), or a
   * fault or interrupt; `regs` is updated to the registers at that point. No message crosses
   * threads per syscall; the context's actor sees the run start and end.
   *
   * @example
   * ```ts
   * const ev = await ctx.run(as, regs, new URL('./handler.mjs', import.meta.url).href);
   * ```
   */
  async run(as: AddressSpace, regs: Registers, handler: string): Promise<SwitchEvent> {
    if (this.#released) throw Errors.Released('context');
    if (this.#running) throw Errors.InvalidArg('this context is already running');
    const sp = this.#enter(as);
    try {
      const q = await this.#prepare(sp);
      await sp.sysmsgThreads.ensureRunning();
      const arr = new BigUint64Array(REGISTER_NAMES.length);
      REGISTER_NAMES.forEach((n, i) => (arr[i] = BigInt.asUintN(64, regs[n])));
      this.ref.send({ type: 'RUNNING' });
      const table = this.rt.syscallPatching && !sp.rulesProg ? await (sp.usertrapTable ??= mapUsertrapTable(sp)) : undefined;
      const { region } = this.rt;
      const task: RunTask = {
        memory: sp.control.ref,
        slot: this.#slot,
        queue: q.range,
        pid: sp.pid,
        id: this.id,
        regs: arr,
        handler,
        ...(table !== undefined ? { usertrap: { table, syshandler: region.syshandlerAddr, rdgsbase: fsgsbaseAllowed(), region: { start: region.start, end: region.end } } } : {}),
      };
      const res = await this.rt.runners().run<RunResult>(resolveWorker('runner').file, task);
      this.switches += res.switches;
      if (res.state === -1) {
        this.ref.send({ type: 'FAULTED', reason: 'stub died' });
        throw Errors.StubDead(sp.pid, 'while running a context');
      }
      return this.#decode(sp, res.state, regs);
    } finally {
      this.#running = undefined;
      if (this.#released) this.#unbind();
    }
  }

  /**
   * Hands the context to a sentry (see PlatformPort.adoptContext): its slot mapped in the
   * address space's stub and counted there, the actor in `running`. From then on the sentry
   * queues and handles it; lifecycle steps come back through {@link report}.
   */
  async adopt(as: AddressSpace): Promise<{ id: number; slot: FileRange }> {
    if (this.#released) throw Errors.Released('context');
    const sp = this.#enter(as);
    this.#running = undefined; // the sentry, not switchToApp, runs it
    const q = await this.#prepare(sp);
    // The sentry counts its tasks awake itself.
    if (this.#awake) {
      q.awake(-1);
      this.#awake = false;
    }
    this.ref.send({ type: 'RUNNING' });
    return { id: this.id, slot: this.#slot };
  }

  /** A lifecycle step a sentry reports (one syscall and its switch back, a fault). */
  report(type: 'TRAPPED_SYSCALL' | 'SWITCH' | 'RUNNING' | 'FAULTED', sysno = -1): void {
    if (type === 'TRAPPED_SYSCALL') this.ref.send({ type, sysno });
    else if (type === 'FAULTED') this.ref.send({ type, reason: 'the program was killed' });
    else this.ref.send({ type });
  }

  /** Switches made through run() (the fast path reports them in bulk). */
  switches = 0;

  /**
   * Interrupts a running switch (gVisor's NotifyInterrupt): the slot's interrupt flag (a context
   * still in the queue bounces back at once), then SIGCHLD to the thread running it. A context
   * not switching returns `interrupt` from its next switch.
   */
  interrupt(): void {
    this.#interruptPending = true;
    const sp = this.#running;
    if (sp) this.#kickOut(sp);
  }

  /** Interrupt flag, then SIGCHLD to the thread running the context (gVisor's NotifyInterrupt). */
  #kickOut(sp: Subprocess): void {
    this.#store(THREAD_CONTEXT.interrupt, 1);
    // Read once: shared memory. An id that is no thread of ours is ignored (the flag still works).
    const slot = Atomics.load(this.#u32, THREAD_CONTEXT.threadId / 4);
    const tid = sp.sysmsgThreads.tid(slot);
    if (tid === 0) return;
    interruptThread(sp.pid, tid); // gone: the wait reports ESTUBDEAD
  }

  /** Preempts this context (see Subprocess): the interrupt path, marked as the runtime's own. */
  #preempt(sp: Subprocess): void {
    this.#preempted = true;
    this.#kickOut(sp);
  }

  #signo(): number {
    return Number(this.#view.getBigInt64(THREAD_CONTEXT.signo, true));
  }

  /**
   * Releases the context; its id is reused. A context still running is interrupted first, and
   * its id is given back only once its switch has ended (it may still sit in a stub's queue).
   */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.ref.send({ type: 'RELEASE' });
    if (this.#running) this.interrupt();
    else this.#unbind();
  }

  /** Marks the context as running in this address space's stub (bound there first). */
  #enter(as: AddressSpace): Subprocess {
    const sp = subprocessOf(as);
    this.#bind(sp);
    this.#running = sp;
    return sp;
  }

  /** The stub's queue and control memory ready, the context counted awake there. */
  async #prepare(sp: Subprocess): Promise<ContextQueue> {
    this.ref.send({ type: 'SWITCH' });
    const q = await sp.ensureQueue();
    if (!this.#awake) {
      this.#awake = true;
      q.awake(1);
    }
    return q;
  }

  #decode(sp: Subprocess, state: number, regs: Registers): SwitchEvent {
    const v = this.#view;
    readRegs(v, regs);
    if (state === ContextState.Syscall || state === ContextState.SyscallTrap) {
      this.ref.send({ type: 'TRAPPED_SYSCALL', sysno: Number(regs.orig_rax) });
      return { kind: 'syscall', sysno: Number(BigInt.asIntN(64, regs.orig_rax)), args: SYSCALL_ARG_REGS.map((r) => regs[r]) };
    }
    if (state === ContextState.Fault) {
      const signo = Number(v.getBigInt64(THREAD_CONTEXT.signo, true));
      if (signo === SIG.SIGCHLD && this.#interruptPending) {
        this.#interruptPending = false;
        this.ref.send({ type: 'INTERRUPTED' });
        return { kind: 'interrupt' };
      }
      const code = v.getInt32(THREAD_CONTEXT.siginfo + 8, true);
      const addr = v.getBigUint64(THREAD_CONTEXT.siginfo + 16, true);
      const err = v.getBigUint64(THREAD_CONTEXT.sigError, true);
      this.ref.send({ type: 'TRAPPED_FAULT', signo });
      return {
        kind: 'signal',
        signo,
        code,
        addr,
        // x86 page-fault error code: bit 1 write, bit 4 instruction fetch.
        access: { read: (err & 2n) === 0n && (err & 16n) === 0n, write: (err & 2n) !== 0n, execute: (err & 16n) !== 0n },
      };
    }
    // Anything else was not written by our handler: the application scribbled on the slot.
    const e = new SystrapError('ECORRUPT', `context ${this.id}: impossible state ${state} in shared memory`, { pid: sp.pid });
    this.ref.send({ type: 'FAULTED', reason: e.message });
    throw e;
  }

  #store(offset: number, value: number): void {
    Atomics.store(this.#u32, offset / 4, value);
  }
}

function writeRegs(v: DataView, regs: Registers): void {
  REGISTER_NAMES.forEach((name, i) => v.setBigUint64(THREAD_CONTEXT.regs + 8 * i, BigInt.asUintN(64, regs[name]), true));
}

function readRegs(v: DataView, regs: Registers): void {
  REGISTER_NAMES.forEach((name, i) => {
    regs[name] = v.getBigUint64(THREAD_CONTEXT.regs + 8 * i, true);
  });
}

/**
 * Maps a syscall patching table into the address space of `sp` (see UserTrap) at a random page
 * of its range, as the loader does for `systrap run`: where it could, its address.
 */
async function mapUsertrapTable(sp: Subprocess): Promise<bigint | undefined> {
  const pages = (UserTrap.RANGE.end - UserTrap.RANGE.start - BigInt(UserTrap.TABLE_SIZE)) / 4096n + 1n;
  const at = UserTrap.RANGE.start + (BigInt(native.getRandom(1)[0]) % pages) * 4096n;
  const r = await sp.syscall(SYS.mmap, [at, BigInt(UserTrap.TABLE_SIZE), PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1n, 0n]).catch(() => -1n);
  return r === at ? at : undefined;
}
