import { SIG } from '../../abi/linux.js';
import { SYS } from '../../abi/syscalls.js';
import type { Substitute } from '../kernel/task.js';
import type { Handler, Outcome, SyscallKernel } from './context.js';
import { PID_ARG_CALLS } from './sys_pidargs.js';
import { credentialsAfter } from '../kernel/credentials.js';

/** What the attribute calls use of the kernel. */
type AttrsKernel = Pick<SyscallKernel, 'attrs' | 'mem' | 'tgid' | 'hostPid' | 'task' | 'tasks' | 'killGroup'>;

const PRIO_PROCESS = 0n;
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
      if (!k.attrs.recordCreds(next)) k.killGroup(SIG.SIGKILL);
    });
  };
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
  SYS.prlimit64, SYS.setpriority, SYS.sched_setaffinity,
];

/** The attribute calls by number (see filter.ts: they trap, and stub code may replay them). */
export const ATTR_CALLS: Partial<Record<number, Handler>> = {
  [SYS.setrlimit]: setrlimit,
  [SYS.prlimit64]: prlimit64,
  [SYS.setpriority]: setpriority,
  [SYS.sched_setaffinity]: schedSetaffinity,
};
for (const sysno of [SYS.setuid, SYS.setgid, SYS.setreuid, SYS.setregid, SYS.setresuid, SYS.setresgid, SYS.setgroups, SYS.setfsuid, SYS.setfsgid]) {
  ATTR_CALLS[sysno] = credsCall(sysno);
}
