import type { ActorRefFrom } from 'xstate';
import { platformContextMachine } from '../machines/platformContext.js';
import type { Runtime } from './runtime.js';
import type { AddressSpace } from '../addressSpace.js';
import type { Subprocess } from './subprocess.js';
import type { SysmsgThread } from './sysmsgThread.js';
import type { FileRange } from '../memoryFile.js';
import { REGISTER_NAMES, SYSCALL_ARG_REGS, type Registers } from '../abi/registers.js';
import { ContextState, THREAD_CONTEXT } from '../abi/sysmsg.js';
import { abi, contextSlotAddr, MAX_CONTEXTS } from '../abi/stub.js';
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

let nextContext = 0;
const freeIds: number[] = [];

/**
 * The effects of a platform context: its ThreadContext slot in shared memory, the switch into
 * the stub and the wait for the trap. Its lifecycle is a platformContext machine actor (`ref`).
 *
 * This first version gives each context its own sysmsg thread, created on its first switch in
 * an address space; the context queue that lets many contexts share few threads comes next.
 */
export class PlatformContext {
  readonly id: number;
  readonly ref: ActorRefFrom<typeof platformContextMachine>;
  #binding?: Binding;
  #interruptPending = false;
  #released = false;
  #switching = false;

  constructor(private readonly rt: Runtime) {
    const id = freeIds.pop() ?? nextContext++;
    if (id >= MAX_CONTEXTS) throw Errors.InvalidArg('too many contexts');
    this.id = id;
    const name = `platformContext:${id}`;
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
      let b = this.#binding;
      if (b && b.sp !== sp) throw Errors.InvalidArg('this first version binds a context to one address space');
      if (!b) {
        b = await this.#bind(sp, regs);
      } else {
        writeRegs(b.view, regs);
        Atomics.store(new Uint32Array(b.view.buffer, b.view.byteOffset + THREAD_CONTEXT.state, 1), 0, ContextState.None);
        this.rt.memoryFile._file.futexWake(b.slot.start + THREAD_CONTEXT.state, 1);
      }
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

  /** Releases the context; its id is reused. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.ref.send({ type: 'RELEASE' });
    freeIds.push(this.id);
  }

  async #bind(sp: Subprocess, regs: Registers): Promise<Binding> {
    const slot = this.rt.memoryFile.allocate(THREAD_CONTEXT.allocatedSize);
    const v = this.rt.memoryFile.view(slot);
    const view = new DataView(v.buffer, v.byteOffset, v.byteLength);
    const addr = contextSlotAddr(this.rt.region, this.id);
    const ret = await sp.syscall(SYS.mmap, [addr, 4096n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, BigInt(abi.STUB_MEMFD), BigInt(slot.start)]);
    if (ret !== addr) throw Errors.Syscall('mmap', Number(-ret), sp.pid);
    writeRegs(view, regs);
    view.setUint32(THREAD_CONTEXT.state, ContextState.None, true);
    const thread = await sp.createSysmsgThread(undefined, addr);
    const b = { sp, slot, view, thread };
    this.#binding = b;
    return b;
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
