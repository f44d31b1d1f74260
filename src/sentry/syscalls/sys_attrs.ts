import { SIG } from '../../abi/linux.js';
import { SYS } from '../../abi/syscalls.js';
import type { Substitute, Task } from '../kernel/task.js';
import { CONTEXTS_OFFSET } from '../../abi/stub.js';
import type { Handler, Outcome, SyscallKernel } from './context.js';
import { PID_ARG_CALLS } from './sys_pidargs.js';
import { capabilitiesOf, capsAfterUidChange, credentialsAfter } from '../kernel/credentials.js';
import type { Capabilities } from '../kernel/taskAttrs.js';
import { ATTR } from '../../abi/sysmsg.js';

/** What the attribute calls use of the kernel. */
type AttrsKernel = Pick<SyscallKernel, 'attrs' | 'mem' | 'tgid' | 'hostPid' | 'task' | 'tasks' | 'killGroup' | 'region'>;

const PRIO_PROCESS = 0n;
/** capset's header version for 64-bit sets (two data structs). */
const CAPABILITY_VERSION_3 = 0x20080522;
/** Bytes of struct rlimit (two u64) and of the CPU masks kept (ATTR.affinityMax). */
const RLIMIT_SIZE = 16;
const AFFINITY_MAX = 128;

/** The call as the handler made it (`pass`: as the program made it), with `then` run on its result. */
function recorded(sysno: number, a: bigint[], out: Outcome, then: (ret: bigint) => void): Outcome {
  const sub: Substitute | undefined = out === 'pass' ? { sysno, args: a } : typeof out === 'object' && 'sysno' in out && !out.onDone ? out : undefined;
  if (!sub) return out;
  return {
    ...sub,
    onDone: (ret) => {
      then(ret);
      return ret;
    },
  };
}

/** Whether pid/tid `v` (a call's argument) names the caller's own process: 0, its pid, or one of its threads. */
function ownProcess(k: AttrsKernel, v: bigint): boolean {
  const n = Number(BigInt.asIntN(32, v));
  return n === 0 || n === k.tgid || k.task(n) !== undefined;
}

/** setgroups' list (`n` gids at `addr`); undefined when unreadable or longer than the stub's block holds. */
function readGroups(k: AttrsKernel, n: bigint, addr: bigint): number[] | undefined {
  if (n > 64n) return undefined;
  if (n === 0n) return [];
  const b = k.mem.read(addr, Number(n) * 4);
  if (!b) return undefined;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return Array.from({ length: Number(n) }, (_, i) => dv.getUint32(4 * i, true));
}

/** `u64` pair at `addr` (a struct rlimit), or undefined. */
function readRlimit(k: AttrsKernel, addr: bigint): [bigint, bigint] | undefined {
  const b = k.mem.read(addr, RLIMIT_SIZE);
  if (!b) return undefined;
  const dv = new DataView(b.buffer, b.byteOffset, RLIMIT_SIZE);
  return [dv.getBigUint64(0, true), dv.getBigUint64(8, true)];
}

/**
 * The setuid family (setuid, setgid, setreuid, setregid, setresuid, setresgid, setgroups,
 * setfsuid, setfsgid): made by the sysmsg thread running the caller; once it succeeded, the
 * credentials it leaves (Linux's rules, credentials.ts) are the process's (TaskAttrs: the other
 * stub threads and the next fork's child take them on). Linux's raw calls change one thread;
 * glibc changes them all, which is what programs mean. Credentials that cannot be kept alike
 * (more groups than the stub's block holds) end the process: its threads must never run with
 * other credentials than it set.
 *
 * @example
 * ```ts
 * credsCall(SYS.setresuid)(kernel, task, [1000n, 1000n, 1000n]); // a substitute: the call, then the record
 * ```
 */
export function credsCall(sysno: number): Handler {
  const fsCall = sysno === SYS.setfsuid || sysno === SYS.setfsgid;
  return (k, _t, a) => {
    // The credentials before the call (and setgroups' list) are taken before it runs.
    const old = k.attrs.credentials(k.hostPid);
    const groups = sysno === SYS.setgroups ? readGroups(k, a[0], a[1]) : undefined;
    return recorded(sysno, a, 'pass', (ret) => {
      // setfsuid/setfsgid answer the old id, never an error: the rules say what changed.
      if (ret < 0n && !fsCall) return;
      if (!old || (sysno === SYS.setgroups && !groups)) return k.killGroup(SIG.SIGKILL);
      const next = credentialsAfter(old, sysno, a, groups);
      // Nothing changed (make's children set the effective uid they have): nothing to take on.
      if (JSON.stringify(next) === JSON.stringify(old)) return;
      // Tracked capabilities follow the uid change as the kernel's did on the calling thread.
      const caps = k.attrs.values.caps;
      if (caps && !sameIds(old.uid, next.uid)) k.attrs.recordCaps(capsAfterUidChange(old.uid, next.uid, caps));
      if (!k.attrs.recordCreds(next)) k.killGroup(SIG.SIGKILL);
    });
  };
}

const sameIds = (a: readonly number[], b: readonly number[]) => a.slice(0, 3).every((x, i) => x === b[i]);

/** The tracked capabilities, or the stub's own from /proc before the program changed any. */
function currentCaps(k: AttrsKernel): Capabilities | undefined {
  return k.attrs.values.caps ?? capabilitiesOf(k.hostPid);
}

/** Where in a context's slot a capget/capset header naming the caller goes (past ThreadContext's fields). */
const CAP_HEADER_IN_SLOT = 4080;

/**
 * capget/capset's header with the caller's own pid made 0: the kernel runs the call in a stub
 * thread, whose pid is not the one the program knows itself by (EPERM for capset of another
 * process). The copy goes in the task's context slot, in the stub region the kernel can read;
 * undefined when the header names no thread of the process (the call passes as it is).
 */
function ownHeader(k: AttrsKernel, t: Task, hdrAddr: bigint): bigint | undefined {
  const hdr = k.mem.read(hdrAddr, 8);
  if (!hdr) return undefined;
  const pid = new DataView(hdr.buffer, hdr.byteOffset, 8).getInt32(4, true);
  if (pid === 0 || !ownProcess(k, BigInt(pid)) || t.id < 0) return undefined;
  t.slot.set(hdr.subarray(0, 4), CAP_HEADER_IN_SLOT);
  t.slot.fill(0, CAP_HEADER_IN_SLOT + 4, CAP_HEADER_IN_SLOT + 8);
  return k.region.start + BigInt(CONTEXTS_OFFSET + t.id * 4096 + CAP_HEADER_IN_SLOT);
}

/** capget naming the caller by its pid: as with 0 (the stub thread's sets are the process's). */
export const capget: Handler = (k, t, a) => {
  const own = ownHeader(k, t, a[0]);
  return own === undefined ? 'pass' : { sysno: SYS.capget, args: [own, a[1]] };
};

/** capset of the caller itself (pid 0 or its own): the sets it gave are the process's. */
export const capset: Handler = (k, t, a) => {
  const hdr = k.mem.read(a[0], 8);
  if (!hdr || a[1] === 0n) return 'pass';
  const hv = new DataView(hdr.buffer, hdr.byteOffset, 8);
  const pid = hv.getInt32(4, true);
  if (hv.getUint32(0, true) !== CAPABILITY_VERSION_3 || !ownProcess(k, BigInt(pid))) return 'pass';
  const data = k.mem.read(a[1], 24);
  const before = currentCaps(k);
  const own = ownHeader(k, t, a[0]);
  return recorded(SYS.capset, own === undefined ? a : [own, a[1]], 'pass', (ret) => {
    if (ret !== 0n || !data || !before) return;
    const dv = new DataView(data.buffer, data.byteOffset, 24);
    const set = (i: number) => BigInt(dv.getUint32(4 * i, true)) | (BigInt(dv.getUint32(12 + 4 * i, true)) << 32n);
    k.attrs.recordCaps({ effective: set(0), permitted: set(1), inheritable: set(2), keep: before.keep });
  });
};

/** prctl's option that sets keepcaps: traps from program code (filter.ts), replayed from stub code. */
export const PR_SET_KEEPCAPS = 8n;

/** prctl(PR_SET_KEEPCAPS): the process's flag (a uid change keeps the permitted set with it). */
export const setKeepCaps: Handler = (k, _t, a) => {
  const before = currentCaps(k);
  return recorded(SYS.prctl, a, 'pass', (ret) => {
    if (ret === 0n && before) k.attrs.recordCaps({ ...before, keep: a[1] !== 0n });
  });
};

/**
 * execve's capability rule for a process that is not root (no real or effective uid 0, no file
 * capabilities, no ambient set kept): the new image has none, and keepcaps is cleared. Only when
 * the sentry tracks the process's capabilities (it changed them, or keepcaps): otherwise its
 * stub threads already hold what the kernel left them. A root process keeps what it has (the
 * kernel would raise it to the bounding set: stub threads cannot regain what they dropped).
 */
export function capsAtExec(k: Pick<SyscallKernel, 'attrs'>): void {
  const caps = k.attrs.values.caps;
  if (!caps) return;
  const uid = k.attrs.values.set & ATTR.creds ? k.attrs.values.uid : undefined;
  const root = !uid || uid[0] === 0 || uid[1] === 0;
  k.attrs.recordCaps(root ? { ...caps, keep: false } : { effective: 0n, permitted: 0n, inheritable: caps.inheritable, keep: false });
}

/** setrlimit: the process's limit (Linux keeps limits per process): every stub thread's. */
export const setrlimit: Handler = (k, _t, a) =>
  recorded(SYS.setrlimit, a, 'pass', (ret) => {
    const lim = ret === 0n ? readRlimit(k, a[1]) : undefined;
    if (lim) k.attrs.recordRlimit(Number(a[0]), lim[0], lim[1]);
  });

/** prlimit64 of the caller's own process with a new limit: as setrlimit; otherwise as before. */
export const prlimit64: Handler = (k, t, a) => {
  const out = PID_ARG_CALLS[SYS.prlimit64]!(k, t, a);
  if (a[2] === 0n || !ownProcess(k, a[0])) return out;
  return recorded(SYS.prlimit64, a, out, (ret) => {
    const lim = ret === 0n ? readRlimit(k, a[2]) : undefined;
    if (lim) k.attrs.recordRlimit(Number(a[1]), lim[0], lim[1]);
  });
};

/**
 * setpriority and sched_setaffinity of a single-threaded process's own (`nice`, `taskset`):
 * every stub thread's, and its forks'. With more threads, per-thread values cannot be honoured
 * (threads move between stub threads) and are left to the stub thread that made the call.
 */
export const setpriority: Handler = (k, t, a) => {
  const out = PID_ARG_CALLS[SYS.setpriority]!(k, t, a);
  if (a[0] !== PRIO_PROCESS || !ownProcess(k, a[1]) || k.tasks.size > 1) return out;
  return recorded(SYS.setpriority, a, out, (ret) => {
    if (ret === 0n) k.attrs.recordNice(Number(BigInt.asIntN(32, a[2])));
  });
};

export const schedSetaffinity: Handler = (k, t, a) => {
  const out = PID_ARG_CALLS[SYS.sched_setaffinity]!(k, t, a);
  if (!ownProcess(k, a[0]) || k.tasks.size > 1) return out;
  return recorded(SYS.sched_setaffinity, a, out, (ret) => {
    const mask = ret === 0n ? k.mem.read(a[2], Math.min(Number(a[1] & 0xffffn), AFFINITY_MAX)) : undefined;
    if (mask) k.attrs.recordAffinity(mask);
  });
};

/** The calls a sysmsg thread makes to take the attributes on (native/stub/sysmsg.c sync_attrs). */
export const ATTR_REPLAY: readonly number[] = [
  SYS.getgroups, SYS.setgroups, SYS.getresuid, SYS.setresuid, SYS.getresgid, SYS.setresgid, SYS.setfsuid, SYS.setfsgid,
  SYS.prlimit64, SYS.setpriority, SYS.sched_setaffinity, SYS.capset,
];

/** The attribute calls by number (see filter.ts: they trap, and stub code may replay them). */
export const ATTR_CALLS: Partial<Record<number, Handler>> = {
  [SYS.setrlimit]: setrlimit,
  [SYS.prlimit64]: prlimit64,
  [SYS.setpriority]: setpriority,
  [SYS.sched_setaffinity]: schedSetaffinity,
  [SYS.capset]: capset,
  [SYS.capget]: capget,
};
for (const sysno of [SYS.setuid, SYS.setgid, SYS.setreuid, SYS.setregid, SYS.setresuid, SYS.setresgid, SYS.setgroups, SYS.setfsuid, SYS.setfsgid]) {
  ATTR_CALLS[sysno] = credsCall(sysno);
}
