/**
 * Printers for the signal structs: `struct sigaction`, `stack_t`, and
 * `siginfo_t` (also for strace's `--- SIGCHLD {...} ---` lines).
 *
 * Each printer takes the struct's address and prints `NULL` for a null
 * pointer, the address in hex when the memory cannot be read.
 *
 * @module
 */

import { currentConstStyle, styled } from '../constStyle.js';
import { SIG } from '../../../../abi/linux.js';
import { hex, ptr } from '../scalars.js';
import { formatSigmask, signalName } from '../signals.js';
import type { MemoryReader } from '../umove.js';
import { readBytes, u64, withStruct } from '../umove.js';
import { formatEnum, formatFlags, lookup, xlat } from '../xlat.js';
import { SA_FLAGS, SA_RESTORER, SIG_CODES, SIG_HANDLERS, SI_CODES, SI_KERNEL, SS_FLAGS } from '../xlat/signal.js';

/**
 * The kernel's `struct sigaction` (handler, flags, restorer, mask).
 *
 * @example
 * ```ts
 * formatSigaction(mem, addr); // '{sa_handler=SIG_IGN, sa_mask=[], sa_flags=SA_RESTORER, sa_restorer=0x7f0000001000}'
 * ```
 */
export function formatSigaction(mem: MemoryReader, addr: bigint): string {
  return withStruct(mem, addr, 32, (v) => {
    const handler = u64(v, 0);
    const flags = u64(v, 8);
    const h = lookup(handler, SIG_HANDLERS) ?? hex(handler);
    let s = `{sa_handler=${h}, sa_mask=${formatSigmask(u64(v, 24))}, sa_flags=${formatFlags(flags, SA_FLAGS)}`;
    if (flags & SA_RESTORER) s += `, sa_restorer=${ptr(u64(v, 16))}`;
    return s + '}';
  });
}

/**
 * `stack_t` (sigaltstack): `{ss_sp=0x..., ss_flags=0, ss_size=8192}`.
 *
 * @example
 * ```ts
 * formatStack(mem, addr); // '{ss_sp=NULL, ss_flags=SS_DISABLE, ss_size=0}'
 * ```
 */
export function formatStack(mem: MemoryReader, addr: bigint): string {
  return withStruct(mem, addr, 24, (v) =>
    `{ss_sp=${ptr(u64(v, 0))}, ss_flags=${formatFlags(BigInt(v.getUint32(8, true)), SS_FLAGS)}, ss_size=${u64(v, 16)}}`);
}

/** The signals whose kernel-sent siginfo carries the faulting address. */
const FAULT_SIGNALS = new Set<number>([SIG.SIGILL, SIG.SIGBUS, SIG.SIGFPE, SIG.SIGSEGV]);
/** SIGCHLD's si_code for a child that exited: si_status is then its exit code, else a signal. */
const CLD_EXITED = 1;
/** The size of a siginfo_t, and the least of it strace's fields need. */
const SIGINFO_SIZE = 128;
const SIGINFO_FIELDS_SIZE = 48;

/**
 * A siginfo_t (128 bytes) as strace prints it, e.g. in `--- SIGCHLD {...} ---`:
 * `{si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=12, si_uid=0, si_status=0, si_utime=0, si_stime=0}`.
 *
 * @example
 * ```ts
 * formatSiginfoBytes(bytes); // '{si_signo=SIGSEGV, si_code=SEGV_MAPERR, si_addr=0x10}'
 * ```
 */
export function formatSiginfoBytes(b: Uint8Array): string {
  if (b.length < SIGINFO_FIELDS_SIZE) return '{...}';
  const v = new DataView(b.buffer, b.byteOffset, b.length);
  const signo = v.getInt32(0, true);
  if (signo === 0) return '{}';
  const code = v.getInt32(8, true);
  const sig = `si_signo=${styledSignal(signo)}`;
  // Positive codes (but SI_KERNEL) are the kernel's own reasons, which mean something per signal.
  if (code > 0 && code !== SI_KERNEL) return `{${sig}, ${kernelReasonFields(v, signo, code)}}`;
  // Under -X raw/verbose strace prints the code as a C unsigned int: SI_QUEUE is 0xffffffff.
  const name = `si_code=${styled(hex(BigInt(code >>> 0)), () => formatEnum(BigInt(code), SI_CODES))}`;
  if (code === SI_KERNEL) return `{${sig}, ${name}}`;
  // A POSIX timer's: its id, overruns and value; a queued signal's value, when it has one.
  if (code === SI_TIMER) return `{${sig}, ${name}, si_timerid=${hex(BigInt(v.getUint32(16, true)))}, si_overrun=${v.getInt32(20, true)}, ${valueFields(v)}}`;
  if (code === SI_QUEUE && u64(v, 24) !== 0n) return `{${sig}, ${name}, ${senderFields(v)}, ${valueFields(v)}}`;
  return `{${sig}, ${name}, ${senderFields(v)}}`;
}

/** si_code of sigqueue's signals and of POSIX timers'. */
const SI_QUEUE = -1;
const SI_TIMER = -2;

/** A signal's value (si_value at offset 24) as strace prints it: `si_int=42, si_ptr=0x2a`. */
function valueFields(v: DataView): string {
  return `si_int=${v.getInt32(24, true)}, si_ptr=${ptr(u64(v, 24))}`;
}

/** The sender of a signal a process sent: `si_pid=12, si_uid=0`. */
function senderFields(v: DataView): string {
  return `si_pid=${v.getInt32(16, true)}, si_uid=${v.getUint32(20, true)}`;
}

/** A signal number as -X asks: its name, the number, or both (`17 /* SIGCHLD *\/`). */
const styledSignal = (n: number): string => styled(n.toString(), () => signalName(n));

/** Clock ticks per second of clock_t values (USER_HZ on x86-64). */
const CLK_TCK = 100n;

/** A clock_t as strace prints it: the ticks, and (not raw) the seconds when not zero: `30 /* 0.30 s *\/`. */
function clockTicks(t: bigint): string {
  if (t === 0n || currentConstStyle() === 'raw') return t.toString();
  const frac = (t < 0n ? -t : t) % CLK_TCK;
  return `${t} /* ${t / CLK_TCK}.${frac.toString().padStart(2, '0')} s */`;
}

/** si_code and the fields that go with it for a signal the kernel raised: a fault, a child's change, seccomp. */
function kernelReasonFields(v: DataView, signo: number, code: number): string {
  const table = SIG_CODES.get(signo);
  const name = `si_code=${table ? formatEnum(BigInt(code), table) : code}`;
  if (signo === SIG.SIGCHLD) {
    const st = v.getInt32(24, true);
    const status = code === CLD_EXITED ? st.toString() : styledSignal(st);
    return `${name}, ${senderFields(v)}, si_status=${status}, si_utime=${clockTicks(v.getBigInt64(32, true))}, si_stime=${clockTicks(v.getBigInt64(40, true))}`;
  }
  if (FAULT_SIGNALS.has(signo)) return `${name}, si_addr=${ptr(u64(v, 16))}`;
  if (signo === SIG.SIGSYS) {
    return `${name}, si_call_addr=${ptr(u64(v, 16))}, si_syscall=${v.getInt32(24, true)}, si_arch=${hex(BigInt(v.getUint32(28, true)))}`;
  }
  return name;
}

/**
 * A siginfo_t at `addr`.
 *
 * @example
 * ```ts
 * formatSiginfo(mem, addr); // '{si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=12, si_uid=0, si_status=0, si_utime=0, si_stime=0}'
 * ```
 */
export function formatSiginfo(mem: MemoryReader, addr: bigint): string {
  if (BigInt.asUintN(64, addr) === 0n) return 'NULL';
  const b = readBytes(mem, addr, SIGINFO_SIZE);
  return b ? formatSiginfoBytes(b) : ptr(addr);
}

/** sigev_notify values. */
const SIGEV_NOTIFY = xlat({ SIGEV_SIGNAL: 0, SIGEV_NONE: 1, SIGEV_THREAD: 2, SIGEV_THREAD_ID: 4 });

/**
 * A `struct sigevent` as strace prints it: its value when not zero, the signal (a name when the
 * event sends one), how it notifies, and the thread or function that goes with that.
 *
 * @example
 * ```ts
 * formatSigevent(mem, addr); // '{sigev_value={sival_int=42, sival_ptr=0x2a}, sigev_signo=SIGRT_2, sigev_notify=SIGEV_SIGNAL}'
 * ```
 */
export function formatSigevent(mem: MemoryReader, addr: bigint): string {
  return withStruct(mem, addr, 32, (v) => {
    const value = u64(v, 0);
    const signo = v.getInt32(8, true);
    const notify = v.getInt32(12, true);
    const sends = notify === 0 || notify === 2 || notify === 4;
    const parts = value !== 0n ? [`sigev_value={sival_int=${v.getInt32(0, true)}, sival_ptr=${ptr(value)}}`] : [];
    parts.push(`sigev_signo=${sends ? styledSignal(signo) : signo}`);
    parts.push(`sigev_notify=${formatEnum(BigInt(notify >>> 0), SIGEV_NOTIFY, 'SIGEV_')}`);
    if (notify === 4) parts.push(`sigev_notify_thread_id=${v.getInt32(16, true)}`);
    if (notify === 2) parts.push(`sigev_notify_function=${ptr(u64(v, 16))}`, `sigev_notify_attributes=${ptr(u64(v, 24))}`);
    return `{${parts.join(', ')}}`;
  });
}
