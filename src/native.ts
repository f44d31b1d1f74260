import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** A decoded wait4 status. */
export type WaitStatus =
  | { kind: 'stopped'; pid: number; signal: number; event: number }
  | { kind: 'exited'; pid: number; status: number }
  | { kind: 'signaled'; pid: number; signal: number }
  | { kind: 'continued'; pid: number }
  | { kind: 'unknown'; pid: number; status: number };

/** The native MemoryFile (see native/memfile.cc). */
export interface NativeMemoryFile {
  readonly fd: number;
  readonly size: number;
  readonly maxSize: number;
  grow(size: number): void;
  /** Maps what another thread's grow() added (a worker's view); returns the mapped size. */
  refresh(): number;
  punchHole(offset: number, length: number): void;
  buffer(offset: number, length: number): ArrayBuffer;
  close(): void;
  futexWake(offset: number, count: number): number;
  futexWait(offset: number, expected: number, timeoutMs: number): 'woken' | 'changed' | 'timeout' | 'interrupted';
  /** One sleep on several words: the index woken, -1 timeout, -2 a word changed, -3 interrupted. */
  futexWaitv(offsets: Uint32Array, expected: Uint32Array, timeoutMs: number): number;
  waitWordChange(offset: number, value: number, pid: number, timeoutMs: number, waitersOffset?: number): Promise<number>;
  syscallThreadCall(
    msgOffset: number,
    pid: number,
    sysno: number,
    args: BigUint64Array,
    timeoutMs: number,
    spinNs: number,
  ): bigint | Promise<bigint>;
  syscallThreadCallSync(msgOffset: number, pid: number, sysno: number, args: BigUint64Array, timeoutMs: number): bigint;
}

/** The addon's exports (one file per group in native/). */
export interface Native {
  ptraceAttach(tid: number): void;
  ptraceDetach(tid: number, signal: number): void;
  ptraceCont(tid: number, signal: number): void;
  ptraceSetOptions(tid: number, options: number): void;
  ptraceGetRegs(tid: number, out: BigUint64Array): void;
  ptraceSetRegs(tid: number, regs: BigUint64Array): void;
  ptraceGetSiginfo(tid: number): { signo: number; errno: number; code: number; pid: number; addr: bigint };
  ptraceGetEventMsg(tid: number): number;
  ptraceSetSigmask(tid: number, mask: bigint): void;
  wait4(tid: number, options: number): WaitStatus | null;
  waitidPeek(pid: number): WaitStatus | null;
  tgkill(tgid: number, tid: number, signal: number): void;
  kill(pid: number, signal: number): void;
  setpriority(which: number, who: number, prio: number): void;
  gettid(): number;
  processVmReadv(pid: number, addr: bigint, length: number): Buffer;
  processVmWritev(pid: number, addr: bigint, data: Uint8Array): number;
  MemoryFile: new (name: string, maxSize: number, fd?: number) => NativeMemoryFile;
  ExitWatch: new (pid: number, onExit: () => void) => { close(): void };
  stubRegionInit(): {
    start: bigint;
    roEnd: bigint;
    end: bigint;
    initOffset: number;
    syscallOffset: number;
    sighandlerOffset: number;
    restorerOffset: number;
    gadgetOffset: number;
  };
  forkSourceStub(memfd: number): number;
  sendFds(sourcePid: number, fds: number[]): void;
  closeFdChannel(sourcePid: number): void;
  stubAbi: {
    STUB_MEMFD: number;
    STUB_FDCHAN: number;
    STUB_RO_SIZE: number;
    STUB_REGION_SIZE: number;
    STUB_MAX_USER_ADDRESS: bigint;
    STUB_TASK_SIZE: bigint;
    STUB_RULES_OFFSET: number;
    STUB_RULES_SIZE: number;
    STUB_PER_THREAD_MEM_SIZE: number;
    STUB_MAX_THREAD_SLOTS: number;
    STUB_THREADS_MIN_OFFSET: number;
    STUB_QUEUE_OFFSET: number;
    STUB_QUEUE_SIZE: number;
    STUB_CONTEXTS_OFFSET: number;
    STUB_MODE_TRAP: number;
    STUB_MODE_NEW_STUB: number;
    STUB_MODE_RUN_SYSCALL_LOOP: number;
    SYSMSG_STATE: number;
    SYSMSG_SYSNO: number;
    SYSMSG_ARGS: number;
    SYSMSG_REPLY: number;
    SYSMSG_DONE: number;
    SYSMSG_SPIN: number;
    SYSMSG_SPIN_CYCLES: number;
    SYSMSG_SIZE: number;
  };
}

// src/native.ts and dist/src/native.js sit one and two levels below the package root.
const root = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '..' : '../..', import.meta.url));
const require = createRequire(import.meta.url);

/**
 * The native addon, loaded once per thread (Node-API addons are per environment).
 *
 * @example
 * ```ts
 * import { native } from './native.js';
 * const tid = native.gettid();
 * ```
 */
export const native: Native = require('node-gyp-build')(root);
