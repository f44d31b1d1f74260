import { SYS } from '../abi/syscalls.js';
import { TRACE_RING, TRACE_SPEC, TraceCapture, TraceWhen } from '../abi/traceRing.js';
import { SENTRY_CHECKED, SENTRY_ONLY } from './filter.js';
import type { RingStats, SentryTask, TraceOptions } from './protocol.js';
import type { FileRange } from '../memoryFile.js';
import { workerFile, type SharedFile } from '../shm/sharedFile.js';

const { Str, OutRet, Stat, Statx, Utsname, Statfs, Fds, Sysinfo } = TraceCapture;

/**
 * The calls the stub may make and record itself (native/stub/trace_ring.c), with what it copies
 * of each argument for the decoder: only calls that never wait (a wait made there could not be
 * interrupted as the program expects; open and fcntl only with arguments that cannot wait) and
 * whose decoding needs nothing but these copies. Every other call keeps the round trip.
 * [captures by argument index, when, the argument `when` looks at].
 */
const RING_CALLS: ReadonlyArray<[name: keyof typeof SYS, captures: number[], when?: number, whenArg?: number]> = [
  ['close', []], ['dup', []], ['dup2', []], ['dup3', []], ['lseek', []], ['fchdir', []], ['fchmod', []], ['fchown', []],
  ['ftruncate', []], ['fsync', []], ['fdatasync', []], ['umask', []], ['getuid', []], ['geteuid', []], ['getgid', []],
  ['getegid', []], ['sched_yield', []], ['fadvise64', []], ['syncfs', []],
  ['fcntl', [], TraceWhen.PlainFcntl, 1],
  ['access', [Str]], ['faccessat', [0, Str]], ['faccessat2', [0, Str]], ['chdir', [Str]], ['mkdir', [Str]], ['mkdirat', [0, Str]],
  ['unlink', [Str]], ['unlinkat', [0, Str]], ['rmdir', [Str]], ['chmod', [Str]], ['fchmodat', [0, Str]], ['chown', [Str]],
  ['lchown', [Str]], ['fchownat', [0, Str]], ['rename', [Str, Str]], ['renameat', [0, Str, 0, Str]], ['renameat2', [0, Str, 0, Str]],
  ['symlink', [Str, Str]], ['symlinkat', [Str, 0, Str]], ['link', [Str, Str]], ['linkat', [0, Str, 0, Str]], ['truncate', [Str]],
  ['stat', [Str, Stat]], ['lstat', [Str, Stat]], ['fstat', [0, Stat]], ['newfstatat', [0, Str, Stat]], ['statx', [0, Str, 0, 0, Statx]],
  ['open', [Str], TraceWhen.NonblockingOpen, 1], ['openat', [0, Str], TraceWhen.NonblockingOpen, 2],
  ['getdents', [0, OutRet]], ['getdents64', [0, OutRet]], ['getcwd', [OutRet]], ['getrandom', [OutRet]],
  // Memory calls whose range is clear of the stub region (else the sentry answers them, see sys_mm.ts).
  ['mmap', [], TraceWhen.Mmap, 0], ['munmap', [], TraceWhen.Clear, 0], ['mprotect', [], TraceWhen.Clear, 0],
  ['madvise', [], TraceWhen.Clear, 0], ['pkey_mprotect', [], TraceWhen.Clear, 0],
  ['uname', [Utsname]], ['pipe', [Fds]], ['pipe2', [Fds]], ['statfs', [Str, Statfs]], ['fstatfs', [0, Statfs]], ['sysinfo', [Sysinfo]],
];

/**
 * Which traced calls go through the ring, and the spec the stub reads (the rules area's last
 * 2 KiB): none when the ring is off, under a policy (it decides every call), or with `-y`/`-P`
 * (fd paths are read from /proc when a call is decoded, which for a record is later); else the
 * traced or counted calls of RING_CALLS that are neither injected nor denied, and never one the
 * sentry handles.
 *
 * @example
 * ```ts
 * const { calls, bytes } = traceRingSpec({ trace: [SYS.newfstatat], outFd: 2, summary: false, inject: [] });
 * ```
 */
export function traceRingSpec(trace: TraceOptions): { calls: number[]; bytes: Uint8Array } {
  const bytes = new Uint8Array(TRACE_SPEC.size);
  const calls: number[] = [];
  const style = trace.style ?? {};
  if (trace.ring === false || trace.policy !== undefined || (style.decodeFds ?? 0) > 0 || style.paths !== undefined) return { calls, bytes };
  const dataSize = trace.ringSize ?? TRACE_RING.dataSize;
  if (dataSize < 4096 || dataSize > TRACE_RING.dataSize || (dataSize & (dataSize - 1)) !== 0) {
    throw new RangeError(`the trace ring's size must be a power of two from 4096 to ${TRACE_RING.dataSize} bytes`);
  }
  const counted = trace.summary ? (trace.counted ?? null) : [];
  const traced = (nr: number) => trace.trace.includes(nr) || counted === null || counted.includes(nr);
  const excluded = new Set<number>([...SENTRY_ONLY, ...SENTRY_CHECKED, ...(trace.denied ?? []).map(([nr]) => nr), ...trace.inject.flatMap((i) => i.syscalls)]);
  const dv = new DataView(bytes.buffer);
  for (const [name, captures, when = TraceWhen.Always, whenArg = 7] of RING_CALLS) {
    const nr = SYS[name];
    if (!traced(nr) || excluded.has(nr) || nr >= TRACE_SPEC.count) continue;
    let entry = (when << 24) | (whenArg << 28);
    captures.forEach((c, i) => (entry |= c << (4 * i)));
    dv.setUint32(TRACE_SPEC.calls + 4 * nr, entry >>> 0, true);
    calls.push(nr);
  }
  if (calls.length === 0) return { calls, bytes };
  const times = trace.summary || (style.timestamps ?? 0) > 0 || style.relative === true || style.syscallTimes === true;
  dv.setUint32(TRACE_SPEC.magic, TRACE_SPEC.MAGIC, true);
  dv.setUint32(TRACE_SPEC.flags, times ? TRACE_SPEC.TIMES : 0, true);
  dv.setUint32(TRACE_SPEC.dataSize, dataSize, true);
  return { calls: calls.sort((a, b) => a - b), bytes };
}

/**
 * Writes the program's trace ring spec at the end of its rules area (`rules`, a range of `file`;
 * read-only in the stub, which reads it at each trap) and returns the ring's data size, or
 * undefined when no call goes through it. Precondition: no program thread has run yet.
 *
 * @example
 * ```ts
 * const ringSize = writeTraceRingSpec(spec.trace, spec.rules, file); // 1048576
 * ```
 */
export function writeTraceRingSpec(trace: TraceOptions, rules: FileRange | undefined, file: SharedFile): number | undefined {
  if (!rules) return undefined;
  const { calls, bytes } = traceRingSpec(trace);
  if (calls.length === 0) return undefined;
  new Uint8Array(file.buffer(rules.start + TRACE_SPEC.offset, TRACE_SPEC.size)).set(bytes);
  return trace.ringSize ?? TRACE_RING.dataSize;
}

/**
 * A program's trace ring, when it has one: its data size, the calls it takes, and what its processes' rings did
 * (each adds its counts as it ends, see TrapHandler). Written into the first process's rules
 * area here (its forks copy it, see forkSubprocess).
 *
 * @example
 * ```ts
 * this.traceRing = startTraceRing(spec); // { size: 1048576, calls: Set { 3, 262, ... }, stats: { records: 0, ... } }
 * ```
 */
export function startTraceRing(spec: Pick<SentryTask, 'trace' | 'rules' | 'memory'>): { size: number; calls: ReadonlySet<number>; stats: RingStats } | undefined {
  const size = writeTraceRingSpec(spec.trace, spec.rules, workerFile(spec.memory, spec.rules?.end ?? 0));
  if (size === undefined) return undefined;
  return { size, calls: new Set(traceRingSpec(spec.trace).calls), stats: { records: 0, fullWaits: 0, faults: 0, corrupt: 0 } };
}
