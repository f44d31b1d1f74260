import { native } from '../native.js';
import { CLONE_PARENT, SIG } from './linux.js';

/**
 * The stub region: its constants come from the native build (native/stub/stub_abi.h) so they
 * cannot drift; this module lays out the parts of the region the native side does not map.
 *
 * Layout (offsets from the region start; gVisor's stubStart..stubEnd):
 *
 * | offset | content |
 * |---|---|
 * | 0 | stub code (RX, copied from the addon) — `STUB_RO_SIZE` bytes |
 * | roSize | seccomp rules (RO in stubs, from the memory file) — `RULES_SIZE` bytes |
 * | roSize + RULES_SIZE | guard page |
 * | threadsOffset | per-thread areas, `PER_THREAD_MEM_SIZE` each, aligned to that size |
 * | … | reserved for the context queue and ThreadContext slots (sysmsg threads) |
 * | traceRingOffset | the trace ring (src/abi/traceRing.ts), mapped with the slots |
 */
export const abi = native.stubAbi;

/** Bytes per per-thread area (gVisor's PerThreadMemSize). */
export const PER_THREAD_MEM_SIZE = abi.STUB_PER_THREAD_MEM_SIZE;

/** Per-thread slots reserved in the region (the syscall thread uses slot 0). */
export const MAX_THREAD_SLOTS = abi.STUB_MAX_THREAD_SLOTS;

/** Bytes of the rules area: a sock_fprog header then the sysmsg-thread filter (gVisor's stubSysmsgRules). */
export const RULES_SIZE = abi.STUB_RULES_SIZE;
export const RULES_OFFSET = abi.STUB_RULES_OFFSET;

/**
 * Where per-thread areas may start (after the rules and a guard page). The first slot is this
 * rounded up to PER_THREAD_MEM_SIZE in absolute terms: the handler finds its Msg by rounding
 * its stack pointer down to that size.
 */
export const THREADS_MIN_OFFSET = abi.STUB_THREADS_MIN_OFFSET;

/** The context queue follows the threads; context slots (4 KiB each) follow the queue. */
export const QUEUE_OFFSET = abi.STUB_QUEUE_OFFSET;
export const QUEUE_SIZE = abi.STUB_QUEUE_SIZE;
export const CONTEXTS_OFFSET = abi.STUB_CONTEXTS_OFFSET;
export const MAX_CONTEXTS = 4095;

if (CONTEXTS_OFFSET + MAX_CONTEXTS * 4096 > abi.STUB_TRACE_RING_OFFSET || abi.STUB_TRACE_RING_OFFSET + abi.STUB_TRACE_RING_SIZE > abi.STUB_REGION_SIZE) {
  throw new Error('stub region layout overflows');
}

/** The syscall thread's slot. */
export const SYSCALL_THREAD_SLOT = 0;


/** Addresses of one process's stub region (the same in Node and every stub). */
export interface StubRegion {
  /** First byte of the region (gVisor's stubStart). */
  start: bigint;
  /** End of the code part, the only part mapped in Node (gVisor's stubROMapEnd). */
  roEnd: bigint;
  /** First byte past the region (gVisor's stubEnd). */
  end: bigint;
  /** Address of the `syscall` instruction every injection executes. */
  syscallAddr: bigint;
  /** The sysmsg signal handler and its restorer. */
  sighandlerAddr: bigint;
  restorerAddr: bigint;
  /** The passthrough gadget (`syscall; ud2`): see native/stub/sysmsg.c. */
  gadgetAddr: bigint;
  /** Where a patched call site's trampoline jumps (systrap_syshandler in native/stub/stub.S). */
  syshandlerAddr: bigint;
  /**
   * The return address of the trace ring's `syscall` (native/stub/trace_ring.c): the program's
   * filter judges calls made there as calls at the gadget.
   */
  ringSyscallAddr: bigint;
}

/**
 * Maps the stub region into Node (once per process) and returns its addresses.
 *
 * @example
 * ```ts
 * const region = stubRegion();
 * console.log(region.start.toString(16));
 * ```
 */
export function stubRegion(): StubRegion {
  const r = native.stubRegionInit();
  return {
    start: r.start,
    roEnd: r.roEnd,
    end: r.end,
    syscallAddr: r.start + BigInt(r.syscallOffset),
    sighandlerAddr: r.start + BigInt(r.sighandlerOffset),
    restorerAddr: r.start + BigInt(r.restorerOffset),
    gadgetAddr: r.start + BigInt(r.gadgetOffset),
    syshandlerAddr: r.start + BigInt(r.syshandlerOffset),
    ringSyscallAddr: r.start + BigInt(r.ringSyscallOffset),
  };
}

/** Stub address of a per-thread slot (aligned to PER_THREAD_MEM_SIZE). */
export function threadSlotAddr(region: Pick<StubRegion, 'start'>, slot: number): bigint {
  const size = BigInt(PER_THREAD_MEM_SIZE);
  const first = ((region.start + BigInt(THREADS_MIN_OFFSET) + size - 1n) / size) * size;
  return first + BigInt(slot) * size;
}

/** Stub address of a context slot. */
export function contextSlotAddr(region: Pick<StubRegion, 'start'>, id: number): bigint {
  return region.start + BigInt(CONTEXTS_OFFSET + id * 4096);
}

/**
 * Per-thread area (gVisor's PerThreadMemSize layout, 4 KiB pages): page 0 guard, pages 1-2
 * private stack, page 3 guard, pages 4-6 signal alternate stack and page 7 the thread's Msg, the
 * last four shared with Node through the memory file. The syscall thread uses the first two
 * pages of its slot for its request/reply message instead.
 */
export const PER_THREAD = {
  privateStackOffset: 4096,
  privateStackSize: 8192,
  sharedOffset: 16 * 1024,
  sharedSize: 16 * 1024,
  altStackSize: 12 * 1024,
  /** Offset of the Msg page inside the shared part. */
  msgOffset: 12 * 1024,
} as const;

/** Stub address of the context queue. */
export function queueAddr(region: Pick<StubRegion, 'start'>): bigint {
  return region.start + BigInt(QUEUE_OFFSET);
}

/** Stub address of the rules area. */
export function rulesAddr(region: Pick<StubRegion, 'start'>): bigint {
  return region.start + BigInt(RULES_OFFSET);
}

/**
 * Scratch memory in a syscall thread's reply page (page 1 of its message, writable by the
 * stub): past the reply words, where the runtime writes arguments for the calls it runs there
 * (a path, a msghdr). Program code can scribble on it, so everything read back is checked.
 */
export const SYSCALL_SCRATCH = {
  /** Offset in the message (after SYSMSG_REPLY and SYSMSG_DONE, with room to spare). */
  offset: 4096 + 512,
  /** End of the message. */
  end: 8192,
} as const;

/**
 * The stub's control memory (gVisor's per-subprocess shared memory): everything from the first
 * per-thread slot to the end of the region (the syscall thread's message, the sysmsg threads'
 * signal stacks and Msg pages, the context queue, the ThreadContext slots) is one range of the
 * memory file per stub, laid out as the region is: the file offset of a stub address is
 * `range.start + (addr - controlBase(region))`. One stub's control memory is nobody else's.
 */
export function controlBase(region: Pick<StubRegion, 'start'>): bigint {
  return threadSlotAddr(region, SYSCALL_THREAD_SLOT);
}

/** Bytes of a stub's control memory (see {@link controlBase}). */
export function controlSize(region: Pick<StubRegion, 'start' | 'end'>): number {
  return Number(region.end - controlBase(region));
}

/** The name a fork child gives its control memory's memfd (NUL-terminated, for memfd_create). */
export const CONTROL_MEMFD_NAME = new TextEncoder().encode('systrap-control\0');

/**
 * The arguments of STUB_REQUEST_FORK (stub.S): clone's flags (CLONE_PARENT, SIGCHLD), the stub
 * address of the memfd's name (CONTROL_MEMFD_NAME, written there by the caller), the child's
 * file size (its control memory and the rules area), the control memory's address and size, the
 * rules' address.
 *
 * @example
 * ```ts
 * call(abi.STUB_REQUEST_FORK, forkRequestArgs(region, nameAddr));
 * ```
 */
export function forkRequestArgs(region: Pick<StubRegion, 'start' | 'end'>, nameAddr: bigint): bigint[] {
  const size = controlSize(region);
  return [CLONE_PARENT | BigInt(SIG.SIGCHLD), nameAddr, BigInt(size + abi.STUB_RULES_SIZE), controlBase(region), BigInt(size), rulesAddr(region)];
}
