import type { ActorRefFrom } from 'xstate';
import { platformContextMachine } from '../machines/platformContext.js';
import type { Runtime } from './runtime.js';
import type { AddressSpace } from '../addressSpace.js';
import type { Subprocess } from './subprocess.js';
import type { SysmsgThread } from './sysmsgThread.js';
import type { FileRange } from '../memoryFile.js';
import { REGISTER_NAMES, SYSCALL_ARG_REGS, type Registers } from '../abi/registers.js';
import { ContextState, THREAD_CONTEXT } from '../abi/sysmsg.js';
import { abi, contextSlotAddr } from '../abi/stub.js';
import { MAP_FIXED, MAP_SHARED, PROT_READ, PROT_WRITE, SIG } from '../abi/linux.js';
import { SYS } from '../abi/syscalls.js';
import { native } from '../native.js';
import { Errors, SystrapError, toSystrapError } from '../errors.js';

/** What a switch ended with (gVisor's Switch results). */
export type SwitchEvent =
  | { kind: 'syscall'; sysno: number; args: bigint[] }
  | { kind: 'signal'; signo: number; code: number; addr: bigint; access: { read: boolean; write: boolean; execute: boolean } }
  | { kind: 'interrupt' };

/** A context bound to a stub: its slot and the sysmsg thread running it. */
interface Binding {
  sp: Subprocess;
  slot: FileRange;
  view: DataView;
  thread: SysmsgThread;
}

/**
 * The effects of a platform context: its ThreadContext slot in shared memory, the switch into
 * the stub and the wait for the trap. Its lifecycle is a platformContext machine actor (`ref`).
 *
 * This first version runs a context on one sysmsg thread of the stub at a time: a free thread
 * (whose context was released) is reused, else a new one is created, up to maxSysmsgThreads.
 * The shared context queue that lets any thread pick any context comes next.
 */
export class PlatformContext {
  readonly id: number;
  readonly ref: ActorRefFrom<typeof platformContextMachine>;
  #binding?: Binding;
  #interruptPending = false;
  #released = false;
  #switching = false;

  readonly #slot: FileRange;
  readonly #view: DataView;
  static #seq = 0;

  constructor(private readonly rt: Runtime) {
    const { id, slot } = rt.contexts.alloc();
    this.id = id;
    this.#slot = slot;
    const v = rt.memoryFile.view(slot);
    this.#view = new DataView(v.buffer, v.byteOffset, v.byteLength);
    const name = `platformContext:${PlatformContext.#seq++}`;
    rt.spawn(name, platformContextMachine);
    this.ref = rt.get(name) as ActorRefFrom<typeof platformContextMachine>;
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
    if (this.#switching) throw Errors.InvalidArg('switchToApp is already running on this context');
    this.#switching = true;
    try {
      const sp = as._subprocess;
      if (this.#interruptPending) {
        this.#interruptPending = false;
        return { kind: 'interrupt' };
      }
      this.ref.send({ type: 'SWITCH' });
      if (this.#binding && this.#binding.sp !== sp) this.#unbind(); // the task moved (execve)
      writeRegs(this.#view, regs);
      const b = this.#binding ?? (await this.#bind(sp));
      Atomics.store(new Uint32Array(b.view.buffer, b.view.byteOffset + THREAD_CONTEXT.state, 1), 0, ContextState.None);
      this.#wake(this.id);
      this.ref.send({ type: 'RUNNING' });
      let state: number;
      try {
        state = await this.rt.memoryFile._file.waitWordChange(b.slot.start + THREAD_CONTEXT.state, ContextState.None, sp.pid);
      } catch (e) {
        const err = toSystrapError(e);
        this.ref.send({ type: 'FAULTED', reason: err.message });
        if (err.code === 'ESTUBDEAD') throw Errors.StubDead(sp.pid, 'while running a context');
        throw err;
      }
      return this.#decode(b, state, regs);
    } finally {
      this.#switching = false;
    }
  }

  /** Interrupts a running switch (tgkill SIGCHLD to its thread); a later switch returns at once. */
  interrupt(): void {
    const b = this.#binding;
    if (!b || this.state !== 'running') {
      this.#interruptPending = true;
      return;
    }
    this.#interruptPending = true;
    try {
      native.tgkill(b.thread.tid, b.thread.tid, SIG.SIGCHLD);
    } catch {
      // the thread is gone: the wait reports ESTUBDEAD
    }
  }

  /** Releases the context: its thread is free for others, its id is reused. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#unbind();
    this.ref.send({ type: 'RELEASE' });
    this.rt.contexts.free(this.id);
  }

  /**
   * Binds this context to a sysmsg thread of the stub: a free one (told to run this context,
   * then woken on the state word it sleeps on), or a new one started on it. Maps the context's
   * slot into the stub first. Precondition: the slot holds the registers to run.
   */
  async #bind(sp: Subprocess): Promise<Binding> {
    const addr = contextSlotAddr(this.rt.region, this.id);
    if (!sp.mappedContexts.has(this.id)) {
      const ret = await sp.syscall(SYS.mmap, [addr, 4096n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, BigInt(abi.STUB_MEMFD), BigInt(this.#slot.start)]);
      if (ret !== addr) throw Errors.Syscall('mmap', Number(-ret), sp.pid);
      sp.mappedContexts.add(this.id);
    }
    // Until handed over, the slot must not look runnable to a thread that still sleeps on it.
    this.#view.setUint32(THREAD_CONTEXT.state, ContextState.Invalid, true);
    let thread = [...sp.sysmsgThreads.values()].find((t) => t.context === undefined && t.state === 'running');
    if (thread) {
      const previous = thread.lastContext;
      thread.context = this.id;
      thread.lastContext = this.id;
      thread.setContext(addr);
      if (previous !== undefined && previous !== this.id) this.#wake(previous);
    } else {
      // Started on this context, the thread sleeps on its (Invalid) state until the switch.
      thread = await sp.createSysmsgThread(undefined, addr);
      thread.context = this.id;
      thread.lastContext = this.id;
    }
    const b = { sp, slot: this.#slot, view: this.#view, thread };
    this.#binding = b;
    return b;
  }

  #unbind(): void {
    const b = this.#binding;
    if (!b) return;
    this.#binding = undefined;
    if (b.thread.context === this.id) b.thread.context = undefined;
  }

  /** FUTEX_WAKE on a context's state word (shared: the sleepers are stub threads). */
  #wake(id: number): void {
    this.rt.memoryFile._file.futexWake(this.rt.contexts.slot(id).start + THREAD_CONTEXT.state, 1);
  }

  #decode(b: Binding, state: number, regs: Registers): SwitchEvent {
    const v = b.view;
    readRegs(v, regs);
    if (state === ContextState.Syscall) {
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
    const e = new SystrapError('ECORRUPT', `context ${this.id}: impossible state ${state} in shared memory`, { pid: b.sp.pid });
    this.ref.send({ type: 'FAULTED', reason: e.message });
    throw e;
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
