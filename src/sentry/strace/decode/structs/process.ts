/**
 * Printers for the process structs: wait statuses, `struct clone_args`,
 * `struct rlimit`, `struct utsname`, `struct sysinfo`.
 *
 * Each printer takes the struct's address and prints `NULL` for a null
 * pointer, the address in hex when the memory cannot be read.
 *
 * @module
 */

import { isVerbose, styled } from '../constStyle.js';
import { hex, ptr } from '../scalars.js';
import { signalName } from '../signals.js';
import { quoteBytes } from '../strings.js';
import type { MemoryReader } from '../umove.js';
import { i64, u64, withStruct } from '../umove.js';
import { formatFlags, lookup } from '../xlat.js';
import {
  CLONE3_FLAGS, CLONE_CHILD_CLEARTID, CLONE_CHILD_SETTID, CLONE_INTO_CGROUP, CLONE_PARENT_SETTID, CLONE_PIDFD,
  CLONE_SETTLS, PTRACE_EVENTS,
} from '../xlat/process.js';

/**
 * A wait status as strace prints it: `[{WIFEXITED(s) && WEXITSTATUS(s) == 0}]`.
 *
 * @example
 * ```ts
 * formatWaitStatus(0x0100); // '[{WIFEXITED(s) && WEXITSTATUS(s) == 1}]'
 * formatWaitStatus(9);      // '[{WIFSIGNALED(s) && WTERMSIG(s) == SIGKILL}]'
 * ```
 */
export function formatWaitStatus(status: number): string {
  // The encoding: stopped = sig<<8|0x7f (a ptrace event in bits 16..), continued = 0xffff,
  // exited = code<<8, killed = the signal, 0x80 added for a core dump.
  const s = status >>> 0;
  let text: string;
  if ((s & 0xff) === 0x7f) {
    text = `WIFSTOPPED(s) && WSTOPSIG(s) == ${signalName((s >> 8) & 0xff)}`;
    const event = s >>> 16;
    if (event) return `[{${text}} | ${lookup(BigInt(event), PTRACE_EVENTS) ?? hex(BigInt(event))} << 16]`;
  } else if (s === 0xffff) {
    text = 'WIFCONTINUED(s)';
  } else if ((s & 0x7f) === 0) {
    text = `WIFEXITED(s) && WEXITSTATUS(s) == ${(s >> 8) & 0xff}`;
  } else {
    text = `WIFSIGNALED(s) && WTERMSIG(s) == ${signalName(s & 0x7f)}${s & 0x80 ? ' && WCOREDUMP(s)' : ''}`;
  }
  return `[{${text}}]`;
}

/** The sizes of `struct clone_args` as it grew: up to tls, then set_tid, then cgroup. */
const CLONE_ARGS_SIZE_VER0 = 64;
const CLONE_ARGS_SIZE_VER1 = 80;
const CLONE_ARGS_SIZE_VER2 = 88;

/**
 * `struct clone_args` (clone3): flags, the pointers the flags ask for,
 * exit_signal, stack, stack_size and tls when CLONE_SETTLS.
 *
 * @example
 * ```ts
 * formatCloneArgs(mem, addr, 88n); // '{flags=CLONE_VM|CLONE_VFORK, exit_signal=SIGCHLD, stack=NULL, stack_size=0}'
 * ```
 */
export function formatCloneArgs(mem: MemoryReader, addr: bigint, size: bigint): string {
  // Too small a size is invalid (printed as the pointer); any other is read as the newest layout.
  const n = size < BigInt(CLONE_ARGS_SIZE_VER0) ? Number(size) : CLONE_ARGS_SIZE_VER2;
  if (n < CLONE_ARGS_SIZE_VER0) return ptr(addr);
  return withStruct(mem, addr, n, (v) => {
    const flags = u64(v, 0);
    const parts = [`flags=${formatFlags(flags, CLONE3_FLAGS)}`];
    if (flags & CLONE_PIDFD) parts.push(`pidfd=${ptr(u64(v, 8))}`);
    if (flags & (CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID)) parts.push(`child_tid=${ptr(u64(v, 16))}`);
    if (flags & CLONE_PARENT_SETTID) parts.push(`parent_tid=${ptr(u64(v, 24))}`);
    parts.push(`exit_signal=${signalName(u64(v, 32))}`, `stack=${ptr(u64(v, 40))}`, `stack_size=${hex(u64(v, 48))}`);
    if (flags & CLONE_SETTLS) parts.push(`tls=${ptr(u64(v, 56))}`);
    if (n >= CLONE_ARGS_SIZE_VER1 && u64(v, 64) !== 0n) parts.push(`set_tid=${ptr(u64(v, 64))}`, `set_tid_size=${u64(v, 72)}`);
    if (n >= CLONE_ARGS_SIZE_VER2 && flags & CLONE_INTO_CGROUP) parts.push(`cgroup=${u64(v, 80)}`);
    return `{${parts.join(', ')}}`;
  });
}

const RLIM64_INFINITY = 0xffffffffffffffffn;

/** One rlimit value: `RLIM64_INFINITY`, `8192*1024` when a multiple of 1024, else decimal. */
function rlim(x: bigint): string {
  return styled(x.toString(), () => {
    if (x === RLIM64_INFINITY) return 'RLIM64_INFINITY';
    if (x !== 0n && x % 1024n === 0n) return `${x / 1024n}*1024`;
    return x.toString();
  });
}

/**
 * `struct rlimit`: `{rlim_cur=8192*1024, rlim_max=RLIM64_INFINITY}`.
 *
 * @example
 * ```ts
 * formatRlimit(mem, addr); // '{rlim_cur=8192*1024, rlim_max=RLIM64_INFINITY}'
 * ```
 */
export function formatRlimit(mem: MemoryReader, addr: bigint): string {
  return withStruct(mem, addr, 16, (v) => `{rlim_cur=${rlim(u64(v, 0))}, rlim_max=${rlim(u64(v, 8))}}`);
}

/** A fixed-size char array field, up to its NUL. */
function charField(v: DataView, o: number, size: number, limit: number): string {
  const b = new Uint8Array(v.buffer, v.byteOffset + o, size);
  const end = b.indexOf(0);
  const s = b.subarray(0, end < 0 ? size : end);
  return quoteBytes(s.subarray(0, limit)) + (s.length > limit ? '...' : '');
}

/** The size of each of utsname's six fields (sysname, nodename, release, version, machine, domainname). */
const UTS_FIELD = 65;

/**
 * `struct utsname`, abbreviated: `{sysname="Linux", nodename="host", ...}`.
 *
 * @example
 * ```ts
 * formatUtsname(mem, addr, 32); // '{sysname="Linux", nodename="host", ...}'
 * ```
 */
export function formatUtsname(mem: MemoryReader, addr: bigint, limit: number): string {
  return withStruct(mem, addr, 6 * UTS_FIELD, (v) => {
    const field = (i: number) => charField(v, i * UTS_FIELD, UTS_FIELD, limit);
    // -v: all six fields.
    if (isVerbose()) return `{sysname=${field(0)}, nodename=${field(1)}, release=${field(2)}, version=${field(3)}, machine=${field(4)}, domainname=${field(5)}}`;
    return `{sysname=${field(0)}, nodename=${field(1)}, ...}`;
  });
}

/**
 * `struct sysinfo`, in full as strace prints it.
 *
 * @example
 * ```ts
 * formatSysinfo(mem, addr); // '{uptime=8127, loads=[9888, 46400, 64160], totalram=..., mem_unit=1}'
 * ```
 */
export function formatSysinfo(mem: MemoryReader, addr: bigint): string {
  return withStruct(mem, addr, 112, (v) => {
    const f = (name: string, o: number): string => `${name}=${u64(v, o)}`;
    return `{uptime=${i64(v, 0)}, loads=[${u64(v, 8)}, ${u64(v, 16)}, ${u64(v, 24)}], ${f('totalram', 32)}, ${f('freeram', 40)}, ` +
      `${f('sharedram', 48)}, ${f('bufferram', 56)}, ${f('totalswap', 64)}, ${f('freeswap', 72)}, procs=${v.getUint16(80, true)}, ` +
      `${f('totalhigh', 88)}, ${f('freehigh', 96)}, mem_unit=${v.getUint32(104, true)}}`;
  });
}
