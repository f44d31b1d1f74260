/**
 * Runner worker: the fast path of contexts (`ctx.run`). It loops switch → trap → handler → switch
 * for one context, with the syscall handler a module loaded here, so no message crosses threads
 * per syscall. The wait for a trap spins, then futex-waits on the stub's doorbell, in native code
 * on this worker: never on the main thread. It returns to the main thread (and so to the
 * context's actor) when the handler stops, or on a fault, an interrupt or anything unexpected.
 */
import { ContextQueue } from '../src/shm/contextQueue.js';
import { workerFile, type MemoryFileRef } from '../src/shm/sharedFile.js';
import { waitForTrap } from '../src/shm/trapWait.js';
import { stubGone } from '../src/shm/stubDeath.js';
import { BUDGETS } from '../src/shm/budgets.js';
import { ContextState, THREAD_CONTEXT } from '../src/abi/sysmsg.js';
import { REGISTER_NAMES, type Registers } from '../src/abi/registers.js';
import type { FileRange } from '../src/memoryFile.js';
import { processMemory, UserTrap } from '../src/shm/usertrap.js';
import { CONTEXT_QUEUE } from '../src/abi/sysmsg.js';
import { SIG } from '../src/abi/linux.js';

/** One run of a context on this worker. */
export interface RunTask {
  /** The memory file, as this worker maps it. */
  memory: MemoryFileRef;
  slot: FileRange;
  queue: FileRange;
  pid: number;
  id: number;
  regs: BigUint64Array;
  handler: string;
  /** Syscall patching (PlatformOptions.syscallPatching): the address space's table, where trampolines jump, the stub region. */
  usertrap?: { table: bigint; syshandler: bigint; rdgsbase: boolean; region: { start: bigint; end: bigint } };
}

export interface RunResult {
  regs: BigUint64Array;
  /** ThreadContext state at the last trap (or -1 if the stub died). */
  state: number;
  /** Switches made by this run. */
  switches: number;
}

/** A syscall handler module: returns true to switch back into the program, false to stop. */
export interface SyscallHandler {
  handle(event: { kind: 'syscall'; sysno: number; args: bigint[] }, regs: Registers): boolean;
}

const RAX = REGISTER_NAMES.indexOf('rax');
const INTERRUPT = THREAD_CONTEXT.interrupt / 4;
const RIP = REGISTER_NAMES.indexOf('rip');
/** Every call traps in an address space with the platform's own filter: any may be patched. */
const ALL_CALLS: ReadonlySet<number> = { has: (n: number) => n >= 0 && n < 1024 } as ReadonlySet<number>;
const CALL_ARGS = THREAD_CONTEXT.callArgs / 8;
const CALL_ARGS_HI = THREAD_CONTEXT.callArgsHi / 8;

const handlers = new Map<string, SyscallHandler>();

/**
 * The handler's `regs`: the ThreadContext's registers read and written in place in the slot
 * (`slotRegs`), so nothing is copied per syscall. All but rax: the result a handler sets is held
 * in `result.value` and handed over with the resume, in the slot's handshake line
 * (ContextQueue.resumeWithResult): a handler that reads nothing but the call's number and sets
 * only its result moves no cache line of the registers between this CPU and the stub's.
 */
function handlerRegisters(slotRegs: BigUint64Array): { regs: Registers; result: { value: bigint | undefined } } {
  const result: { value: bigint | undefined } = { value: undefined };
  const regs = {} as Registers;
  REGISTER_NAMES.forEach((n, i) =>
    Object.defineProperty(
      regs,
      n,
      i === RAX
        ? {
            enumerable: true,
            get: () => result.value ?? slotRegs[i],
            set: (v: bigint) => {
              result.value = BigInt.asUintN(64, v);
            },
          }
        : {
            enumerable: true,
            get: () => slotRegs[i],
            set: (v: bigint) => {
              slotRegs[i] = BigInt.asUintN(64, v);
            },
          },
    ),
  );
  return { regs, result };
}

export default async function run(task: RunTask): Promise<RunResult> {
  const f = workerFile(task.memory, Math.max(task.slot.end, task.queue.end));
  const q = new ContextQueue(task.queue, f, false);
  const slot = f.buffer(task.slot.start, task.slot.end - task.slot.start);
  const u32 = new Uint32Array(slot);
  const slotRegs = new BigUint64Array(slot, THREAD_CONTEXT.regs, REGISTER_NAMES.length);
  const nregs = REGISTER_NAMES.length;
  let handler = handlers.get(task.handler);
  if (!handler) {
    handler = (await import(task.handler)) as SyscallHandler;
    handlers.set(task.handler, handler);
  }
  const words = new BigUint64Array(slot);
  const { regs, result } = handlerRegisters(slotRegs);
  slotRegs.set(task.regs);
  const event = {
    kind: 'syscall' as const,
    sysno: -1,
    // The call's arguments as published (ThreadContext): four in the handshake line, two in the call line.
    get args(): bigint[] {
      return [...words.subarray(CALL_ARGS, CALL_ARGS + 4), words[CALL_ARGS_HI], words[CALL_ARGS_HI + 1]];
    },
  };
  const stateIdx = THREAD_CONTEXT.state / 4;
  const sysnoIdx = THREAD_CONTEXT.fastSysno / 4;
  const i32 = new Int32Array(slot);
  // One wait description per run: nothing is allocated per switch.
  const wait = {
    watch: [{ words: new Int32Array(slot), index: stateIdx, value: ContextState.None }],
    spinNs: BUDGETS.workerSpinNs,
    sleepMs: BUDGETS.doorbellSleepMs,
  };
  const p = task.usertrap;
  const ut = p && UserTrap.shared(p.table, ALL_CALLS, p.syshandler, p.rdgsbase, new Uint32Array(f.buffer(task.queue.start, CONTEXT_QUEUE.size)));
  const mem = p && processMemory(task.pid, p.region);
  const signo = new BigInt64Array(slot, THREAD_CONTEXT.signo, 1);
  let switches = 0;
  for (;;) {
    // Each locked write to the handshake line may find the line on the stub's CPU: none for
    // the usual clear interrupt flag.
    if (Atomics.load(u32, INTERRUPT) !== 0) Atomics.store(u32, INTERRUPT, 0);
    // A plain store, published by the resume's locked swap (see Scheduler.queueReady): one
    // locked write to the line per switch, not two.
    u32[stateIdx] = ContextState.None;
    const direct = result.value === undefined ? q.resume(task.id, u32) : q.resumeWithResult(task.id, u32, words, result.value);
    result.value = undefined;
    if (!direct) q.wakeIfNeeded();
    switches++;
    // Spin, then sleep on the doorbell until this context's trap (or the stub's death).
    while (waitForTrap(q, wait) < 0) {
      if (stubGone(task.pid)) return { regs: task.regs, state: -1, switches };
    }
    const state = Atomics.load(u32, stateIdx);
    if (state === ContextState.Syscall || state === ContextState.SyscallTrap) {
      // One event object per run; its args are read from the slot only if the handler asks, its
      // number from the handshake line (orig_rax as the kernel takes it: its low 32 bits).
      event.sysno = i32[sysnoIdx];
      // Through a signal: its site patched now if it can be (SyscallTrap: it was).
      if (state === ContextState.Syscall && ut) ut.tryPatch(mem!, slotRegs[RIP], event.sysno);
      if (handler.handle(event, regs)) continue;
    } else if (ut && state === ContextState.Fault && signo[0] === BigInt(SIG.SIGILL)) {
      // The 0x06 of a site being patched by another worker: back to the site.
      const site = ut.rewind(mem!, slotRegs[RIP]);
      if (site !== undefined) {
        slotRegs[RIP] = site;
        continue;
      }
    }
    if (result.value !== undefined) slotRegs[RAX] = result.value; // the handler set it, then stopped
    result.value = undefined;
    return { regs: slotRegs.slice(0, nregs), state, switches };
  }
}
