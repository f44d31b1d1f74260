/**
 * Tracer worker: runs one ptrace transaction per task, start to end on this OS thread
 * (ptrace requests must come from the thread that attached). Every transaction ends detached:
 * parked in group-stop or back in the syscall thread's loop, so any worker may run the next one.
 *
 * Why this worker must not exit while it traces: PTRACE_O_EXITKILL kills a tracee when its
 * tracer thread exits. The pool runs with idleTimeout Infinity, min = max threads and no
 * AbortSignal (src/actors/tracerPool.ts), and no transaction leaves anything attached.
 */
import { parentPort } from 'node:worker_threads';
import { native } from '../src/native.js';
import { serializeError, checkStubReply, Errors } from '../src/errors.js';
import { TracedThread, waitGroupStop, reap } from '../src/tracer/thread.js';
import { hostPidOfChild } from '../src/tracer/procfs.js';
import { TRAP_SIGNALS } from '../src/abi/sysmsg.js';
import { abi, PER_THREAD } from '../src/abi/stub.js';
import {
  ARCH_SET_GS,
  CLONE_FILES,
  CLONE_FS,
  CLONE_PARENT,
  CLONE_PTRACE,
  CLONE_VM,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_NORESERVE,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
  PR_SET_NO_NEW_PRIVS,
  PR_SET_PDEATHSIG,
  SECCOMP_SET_MODE_FILTER,
  SIG,
} from '../src/abi/linux.js';
import { SYS } from '../src/abi/syscalls.js';
import { bundleWarm } from '../src/bundleHooks.js';
import type {
  StepMessage,
  CreateSandboxResult,
  CreateSourceResult,
  InjectResult,
  TracerRequest,
  TracerResponse,
  TransactionStep,
} from '../src/tracer/protocol.js';

const tracerTid = native.gettid();

/** The transaction running on this thread and the steps it reported, in the order they happened. */
let current = { txn: 0, seq: 0, steps: [] as TransactionStep[] };

// Steps go to the main thread as they happen, so actors show where a transaction is now. The
// final response repeats them all: piscina's result channel is a different port, so the main
// thread applies steps by sequence number, whichever arrives first.
TracedThread.onStep = (step) => {
  current.steps.push(step);
  const msg: StepMessage = { txn: current.txn, seq: current.seq++, step };
  parentPort?.postMessage(msg);
};

/** Transactions run by this thread (see bundleWarm). Protected by: this thread. */
let transactions = 0;

export default function transaction(req: TracerRequest): TracerResponse {
  current = { txn: req.txn ?? 0, seq: 0, steps: [] };
  // Steps are numbered in the order they happen, here and in the live messages.
  const { steps } = current;
  try {
    const value = run(req);
    // A program's stub is made by two transactions: then the code cache is worth saving.
    if (++transactions === 2) bundleWarm();
    return { ok: true, value, steps, tracerTid };
  } catch (e) {
    return { ok: false, error: serializeError(e), steps, tracerTid };
  }
}

function run(req: TracerRequest): unknown {
  switch (req.op) {
    case 'createSource':
      return createSource(req);
    case 'createSandbox':
      return createSandbox(req);
    case 'requestStub':
      return requestStub(req);
    case 'initStub':
      return initStub(req);
    case 'inject':
      return inject(req);
    case 'requestThread':
      return requestThread(req);
    default:
      throw Errors.Protocol(`unknown tracer request ${(req as { op: string }).op}`);
  }
}

/**
 * Runs fn on a traced thread. On failure a thread still attached is detached the way it came
 * (`undo`): no transaction ever leaves a tracee attached. (Its steps reach the main thread as
 * they happen: see TracedThread.onStep.)
 */
function withThread<T>(t: TracedThread, fn: (t: TracedThread) => T, undo?: () => void): T {
  try {
    return fn(t);
  } catch (e) {
    if (t.attached) {
      try {
        if (undo) undo();
        else t.detachParked();
      } catch {
        // the error that brought us here is the one to report
      }
    }
    throw e;
  }
}

/** An injected call's result: an errno as its error (see checkStubReply). */
function check(ret: bigint, what: string, pid: number): bigint {
  return checkStubReply(ret, { syscall: what, expect: 'nonneg', pid });
}

/**
 * The source stub (gVisor's createStub): forked by the addon's forker thread, stopped by itself;
 * attach, capture initRegs, unmap everything outside the stub code, reserve the rest of the stub
 * region (PROT_NONE: no hole a program's mapping could fall into; the parts stubs use are mapped
 * over it), park it. Every stub is cloned from it and inherits this address space.
 */
function createSource(req: Extract<TracerRequest, { op: 'createSource' }>): CreateSourceResult {
  const pid = native.forkSourceStub(req.memfd);
  try {
    waitGroupStop(pid);
    const t = new TracedThread(pid, pid);
    return withThread(t, () => {
      t.attach();
      const initRegs = t.grabInitRegs();
      check(t.syscallIgnoreInterrupt(initRegs, SYS.munmap, [0n, req.regionStart]), 'munmap', pid);
      check(t.syscallIgnoreInterrupt(initRegs, SYS.munmap, [req.regionRoEnd, req.taskSize - req.regionRoEnd]), 'munmap', pid);
      const reserve = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE;
      check(t.syscallIgnoreInterrupt(initRegs, SYS.mmap, [req.regionRoEnd, req.regionEnd - req.regionRoEnd, PROT_NONE, reserve, -1n, 0n]), 'mmap', pid);
      t.detachParked();
      return { pid, initRegs };
    });
  } catch (e) {
    killAndReap(pid);
    throw e;
  }
}

/**
 * A program's stub in a sandbox of its own (native forkSandbox: user, pid, mount and cgroup
 * namespaces, where Node's process does not exist), cleaned as the source stub is: attach (it
 * is stopped already), unmap everything outside the stub code, reserve the rest of the region,
 * park it. Its syscall thread is prepared next by initStub, as for a clone of the source.
 */
function createSandbox(req: Extract<TracerRequest, { op: 'createSandbox' }>): CreateSandboxResult {
  const { initPid, stubPid } = native.forkSandbox(req.memfd);
  try {
    const t = new TracedThread(stubPid, stubPid);
    return withThread(t, () => {
      t.attach();
      const stopped = t.saveRegs();
      const initRegs = t.grabInitRegs();
      check(t.syscallIgnoreInterrupt(initRegs, SYS.munmap, [0n, req.regionStart]), 'munmap', stubPid);
      check(t.syscallIgnoreInterrupt(initRegs, SYS.munmap, [req.regionRoEnd, req.taskSize - req.regionRoEnd]), 'munmap', stubPid);
      const reserve = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE;
      check(t.syscallIgnoreInterrupt(initRegs, SYS.mmap, [req.regionRoEnd, req.regionEnd - req.regionRoEnd, PROT_NONE, reserve, -1n, 0n]), 'mmap', stubPid);
      // Parked where it stopped itself, as a fresh clone of the source is: initStub takes it from there.
      t.restoreRegs(stopped);
      t.detachParked();
      return { initPid, stubPid };
    });
  } catch (e) {
    // The whole sandbox goes: its init's death kills everything inside; the init is Node's child.
    killAndReap(initPid);
    native.closeFdChannel(stubPid);
    throw e;
  }
}

/**
 * Clones a new stub from the source (gVisor's requestStub): inject clone(CLONE_PARENT|SIGCHLD)
 * with RBX = NEW_STUB; the child restarts the init sequence and stops itself. CLONE_PARENT makes
 * it Node's child, so Node reaps it and its PDEATHSIG follows Node's forker thread.
 */
function requestStub(req: Extract<TracerRequest, { op: 'requestStub' }>): number {
  const src = req.source;
  const t = new TracedThread(src.tgid, src.tid, req.fault);
  return withThread(t, () => {
    const regs = t.attachFor(src);
    t.step('CLONE');
    const ret = t.syscall(regs, SYS.clone, [CLONE_PARENT | BigInt(SIG.SIGCHLD), 0n, 0n, 0n, 0n], abi.STUB_MODE_NEW_STUB);
    check(ret, 'clone', src.tgid);
    const child = Number(ret);
    waitGroupStop(child);
    t.step('CLONED');
    t.detachParked();
    return child;
  });
}

/**
 * Prepares a new stub's syscall thread: attach, capture initRegs, map its message pages
 * (request page read-only, reply page read-write), detach into the service loop.
 */
function initStub(req: Extract<TracerRequest, { op: 'initStub' }>): BigUint64Array {
  const t = new TracedThread(req.tgid, req.tgid, req.fault);
  return withThread(t, () => {
    t.attach();
    const initRegs = t.grabInitRegs();
    const off = BigInt(req.msgFileOffset);
    const fd = BigInt(abi.STUB_MEMFD);
    const flags = MAP_SHARED | MAP_FIXED;
    check(t.syscallIgnoreInterrupt(initRegs, SYS.mmap, [req.msgAddr, 4096n, PROT_READ, flags, fd, off]), 'mmap', req.tgid);
    check(
      t.syscallIgnoreInterrupt(initRegs, SYS.mmap, [req.msgAddr + 4096n, 4096n, PROT_READ | PROT_WRITE, flags, fd, off + 4096n]),
      'mmap',
      req.tgid,
    );
    // The seccomp rules, read-only: threads install their filter from memory they cannot change.
    const rules = [req.rulesAddr, BigInt(req.rulesSize), PROT_READ, flags, fd, BigInt(req.rulesFileOffset)];
    check(t.syscallIgnoreInterrupt(initRegs, SYS.mmap, rules), 'mmap', req.tgid);
    t.detachIntoLoop(initRegs, { msgAddr: req.msgAddr, state: 0 });
    return initRegs;
  }, () => killAndReap(req.tgid)); // a half-initialised stub is of no use: it dies
}

/** One injected syscall, then back to where the thread was (its loop, or parked). */
function inject(req: Extract<TracerRequest, { op: 'inject' }>): InjectResult {
  const th = req.thread;
  const t = new TracedThread(th.tgid, th.tid, req.fault);
  let regs = th.initRegs;
  return withThread(t, () => {
    regs = t.attachFor(th);
    const counters = { signalStops: 0, restarts: 0 };
    const ret = t.syscallIgnoreInterrupt(regs, req.sysno, req.args, counters);
    if (req.loop) t.detachIntoLoop(regs, req.loop);
    else t.detachParked();
    return { ret, ...counters, tracerTid };
  }, () => (req.loop && regs ? t.detachIntoLoop(regs, req.loop) : t.detachParked()));
}

/**
 * Creates a sysmsg thread (gVisor's createSysmsgThread, both halves on this tracer thread):
 * the syscall thread clones it with CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_PTRACE and exit signal
 * SIGKILL (no CLONE_THREAD: its own thread group, so the stub's group-stops don't hold it; its
 * death kills the stub). Then, injected into the new thread: PDEATHSIG, its private stack and
 * its shared stack mapped read-only while sigaltstack reads the stack_t Node wrote there, the
 * shared stack made writable, NO_NEW_PRIVS and the seccomp filter from the read-only rules.
 * The thread is left parked in group-stop.
 */
function requestThread(req: Extract<TracerRequest, { op: 'requestThread' }>): number {
  const th = req.thread;
  const st = new TracedThread(th.tgid, th.tid, req.fault);
  let regs = th.initRegs;
  const undo = () => (req.loop && regs ? st.detachIntoLoop(regs, req.loop) : st.detachParked());
  return withThread(
    st,
    () => {
      const initRegs = (regs = st.attachFor(th));
      st.step('CLONE');
      const flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_PTRACE | BigInt(SIG.SIGKILL);
      const nsTid = Number(check(st.syscall(initRegs, SYS.clone, [flags, 0n, 0n, 0n, 0n]), 'clone', th.tgid));
      // clone answers in the stub's pid namespace (a sandbox's own): the tracer needs the pid
      // the same process has here.
      const tid = hostPidOfChild(th.tgid, nsTid);
      st.step('CLONED');
      const ch = new TracedThread(tid, tid);
      withThread(
        ch,
        () => {
          ch.adoptClone();
          const inj = (sysno: number, args: bigint[], what: string) => check(ch.syscallIgnoreInterrupt(initRegs, sysno, args), what, th.tgid);
          inj(SYS.prctl, [PR_SET_PDEATHSIG, BigInt(SIG.SIGKILL)], 'prctl');
          const anon = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
          const priv = req.slotAddr + BigInt(PER_THREAD.privateStackOffset);
          inj(SYS.mmap, [priv, BigInt(PER_THREAD.privateStackSize), PROT_READ | PROT_WRITE, anon, -1n, 0n], 'mmap');
          // The shared part (signal stack, Msg) is mapped already, with the rest of the stub's
          // control memory; sigaltstack reads its stack_t from the read-only request page.
          inj(SYS.sigaltstack, [req.stackTAddr, 0n], 'sigaltstack');
          // GS base: its Msg, where a patched call site's trampoline finds it (as stub.S sets it).
          inj(SYS.arch_prctl, [ARCH_SET_GS, req.slotAddr + BigInt(PER_THREAD.sharedOffset + PER_THREAD.msgOffset)], 'arch_prctl');
          ch.step('STACK_MAPPED');
          // Its own copy of the handlers (no CLONE_SIGHAND): the trapping signals go to the stub.
          for (const sig of TRAP_SIGNALS) inj(SYS.rt_sigaction, [BigInt(sig), req.sigactionAddr, 0n, 8n], 'rt_sigaction');
          inj(SYS.prctl, [PR_SET_NO_NEW_PRIVS, 1n], 'prctl');
          inj(SYS.seccomp, [SECCOMP_SET_MODE_FILTER, 0n, req.fprogAddr], 'seccomp');
          ch.step('SECCOMP_INSTALLED');
          if (req.start) ch.detachWithSignal(SIG.SIGSEGV);
          else ch.detachParked();
        },
        () => {
          // A half-made thread is killed; its exit signal (SIGKILL) takes the stub with it.
          killAndReap(tid);
        },
      );
      try {
        if (req.loop) st.detachIntoLoop(initRegs, req.loop);
        else st.detachParked();
      } catch (e) {
        // The new thread is ready but the transaction fails: it must not outlive it untracked
        // (its slot would be reused over its stacks).
        killAndReap(tid);
        throw e;
      }
      return tid;
    },
    undo,
  );
}


function killAndReap(pid: number): void {
  try {
    native.kill(pid, SIG.SIGKILL);
  } catch {
    return;
  }
  reap(pid);
}
