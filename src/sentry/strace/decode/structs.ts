/**
 * Printers for the structures syscalls take or fill in (x86-64 layouts),
 * abbreviated the way strace prints them without `-v`.
 *
 * Every printer takes the structure's address and prints `NULL` for a null
 * pointer and the address in hex when the memory cannot be read.
 *
 * @module
 */

import type { DecodeContext } from './context.js';
import { hex, ptr } from './scalars.js';
import { formatSigmask, signalName } from './signals.js';
import { formatBuffer, quoteBytes } from './strings.js';
import type { MemoryReader } from './umove.js';
import { readBytes } from './umove.js';
import { formatEnum, formatFlags, lookup } from './xlat.js';
import { LOCK_TYPE, WHENCE } from './xlat/file.js';
import { CLONE3_FLAGS, PTRACE_EVENTS } from './xlat/process.js';
import { SA_FLAGS, SIG_CODES, SI_CODES, SS_FLAGS } from './xlat/signal.js';
import { FS_MAGIC, STATX_ATTRS, STATX_MASK, ST_FLAGS, formatStatMode } from './xlat/stat.js';
import { TC_IFLAG, TC_LFLAG, formatTermiosCflag, formatTermiosOflag } from './xlat/termios.js';


/**
 * A little-endian view of `size` bytes at `addr`, or null.
 *
 * @example
 * ```ts
 * view(mem, addr, 16)?.getBigInt64(0, true); // the first 8 bytes, or undefined when unreadable
 * ```
 */
export function view(mem: MemoryReader, addr: bigint, size: number): DataView | null {
  const b = readBytes(mem, addr, size);
  return b ? new DataView(b.buffer, b.byteOffset, b.length) : null;
}

/**
 * Print the `size`-byte struct at `addr` with `f`; `NULL` for a null
 * pointer, the address in hex when unreadable.
 *
 * @example
 * ```ts
 * withStruct(mem, addr, 8, (v) => `[${v.getInt32(0, true)}, ${v.getInt32(4, true)}]`); // '[3, 4]'
 * ```
 */
export function withStruct(mem: MemoryReader, addr: bigint, size: number, f: (v: DataView) => string): string {
  if (BigInt.asUintN(64, addr) === 0n) return 'NULL';
  const v = view(mem, addr, size);
  return v ? f(v) : ptr(addr);
}

const u64 = (v: DataView, o: number): bigint => v.getBigUint64(o, true);
const i64 = (v: DataView, o: number): bigint => v.getBigInt64(o, true);

/**
 * A device number as `makedev(0x1, 0x3)`.
 *
 * @example
 * ```ts
 * formatDev(0x103n); // 'makedev(0x1, 0x3)'
 * ```
 */
export function formatDev(dev: bigint): string {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return `makedev(${hex(major)}, ${hex(minor)})`;
}

/**
 * `struct stat`: `{st_mode=S_IFREG|0644, st_size=1234, ...}` (st_rdev instead of st_size for devices).
 *
 * @example
 * ```ts
 * formatStat(mem, addr); // '{st_mode=S_IFREG|0644, st_size=1234, ...}'
 * ```
 */
export function formatStat(mem: MemoryReader, addr: bigint): string {
  return withStruct(mem, addr, 144, (v) => {
    const mode = BigInt(v.getUint32(24, true));
    const type = mode & 0o170000n;
    const second = type === 0o020000n || type === 0o060000n ? `st_rdev=${formatDev(u64(v, 40))}` : `st_size=${i64(v, 48)}`;
    return `{st_mode=${formatStatMode(mode)}, ${second}, ...}`;
  });
}

/**
 * `struct statx`: `{stx_mask=..., stx_attributes=0, stx_mode=S_IFREG|0644, stx_size=1234, ...}`.
 *
 * @example
 * ```ts
 * formatStatx(mem, addr); // '{stx_mask=STATX_BASIC_STATS, stx_attributes=0, stx_mode=S_IFREG|0644, stx_size=42, ...}'
 * ```
 */
export function formatStatx(mem: MemoryReader, addr: bigint): string {
  return withStruct(mem, addr, 256, (v) => {
    const mask = formatFlags(BigInt(v.getUint32(0, true)), STATX_MASK);
    const attrs = formatFlags(u64(v, 8), STATX_ATTRS);
    const mode = formatStatMode(BigInt(v.getUint16(28, true)));
    return `{stx_mask=${mask}, stx_attributes=${attrs}, stx_mode=${mode}, stx_size=${u64(v, 40)}, ...}`;
  });
}

/**
 * `struct timespec`: `{tv_sec=1, tv_nsec=500}`.
 *
 * @example
 * ```ts
 * formatTimespec(mem, addr); // '{tv_sec=0, tv_nsec=1000}'
 * ```
 */
export function formatTimespec(mem: MemoryReader, addr: bigint): string {
  return withStruct(mem, addr, 16, (v) => timespecAt(v, 0));
}

function timespecAt(v: DataView, o: number): string {
  return `{tv_sec=${i64(v, o)}, tv_nsec=${i64(v, o + 8)}}`;
}

/** One of utimensat's times: `UTIME_NOW` / `UTIME_OMIT` stand for the whole timespec. */
function utimeAt(v: DataView, o: number): string {
  const nsec = i64(v, o + 8);
  if (nsec === (1n << 30n) - 1n) return 'UTIME_NOW';
  if (nsec === (1n << 30n) - 2n) return 'UTIME_OMIT';
  return timespecAt(v, o);
}

/**
 * utimensat's `struct timespec[2]`: `[{tv_sec=1, tv_nsec=0}, UTIME_OMIT]`.
 *
 * @example
 * ```ts
 * formatTimespecPair(mem, addr); // '[UTIME_NOW, UTIME_OMIT]'
 * ```
 */
export function formatTimespecPair(mem: MemoryReader, addr: bigint): string {
  return withStruct(mem, addr, 32, (v) => `[${utimeAt(v, 0)}, ${utimeAt(v, 16)}]`);
}

/**
 * `struct itimerval`: `{it_interval={tv_sec=0, tv_usec=0}, it_value={tv_sec=1, tv_usec=0}}`.
 *
 * @example
 * ```ts
 * formatItimerval(mem, addr); // '{it_interval={tv_sec=0, tv_usec=0}, it_value={tv_sec=1, tv_usec=0}}'
 * ```
 */
export function formatItimerval(mem: MemoryReader, addr: bigint): string {
  return withStruct(mem, addr, 32, (v) =>
    `{it_interval={tv_sec=${i64(v, 0)}, tv_usec=${i64(v, 8)}}, it_value={tv_sec=${i64(v, 16)}, tv_usec=${i64(v, 24)}}}`);
}

/**
 * `struct timeval`: `{tv_sec=1, tv_usec=500}`.
 *
 * @example
 * ```ts
 * formatTimeval(mem, addr); // '{tv_sec=1, tv_usec=500}'
 * ```
 */
export function formatTimeval(mem: MemoryReader, addr: bigint): string {
  return withStruct(mem, addr, 16, (v) => `{tv_sec=${i64(v, 0)}, tv_usec=${i64(v, 8)}}`);
}

/**
 * `struct rusage`, abbreviated: `{ru_utime={...}, ru_stime={...}, ...}`.
 *
 * @example
 * ```ts
 * formatRusage(mem, addr); // '{ru_utime={tv_sec=0, tv_usec=1200}, ru_stime={tv_sec=0, tv_usec=0}, ...}'
 * ```
 */
export function formatRusage(mem: MemoryReader, addr: bigint): string {
  return withStruct(mem, addr, 144, (v) =>
    `{ru_utime={tv_sec=${i64(v, 0)}, tv_usec=${i64(v, 8)}}, ru_stime={tv_sec=${i64(v, 16)}, tv_usec=${i64(v, 24)}}, ...}`);
}

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
    const h = handler === 0n ? 'SIG_DFL' : handler === 1n ? 'SIG_IGN' : handler === 0xffffffffffffffffn ? 'SIG_ERR' : hex(handler);
    let s = `{sa_handler=${h}, sa_mask=${formatSigmask(u64(v, 24))}, sa_flags=${formatFlags(flags, SA_FLAGS)}`;
    if (flags & 0x04000000n) s += `, sa_restorer=${ptr(u64(v, 16))}`;
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

/** One rlimit value: `RLIM64_INFINITY`, `8192*1024` when a multiple of 1024, else decimal. */
function rlim(x: bigint): string {
  if (x === 0xffffffffffffffffn) return 'RLIM64_INFINITY';
  if (x !== 0n && x % 1024n === 0n) return `${x / 1024n}*1024`;
  return x.toString();
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

/**
 * `struct utsname`, abbreviated: `{sysname="Linux", nodename="host", ...}`.
 *
 * @example
 * ```ts
 * formatUtsname(mem, addr, 32); // '{sysname="Linux", nodename="host", ...}'
 * ```
 */
export function formatUtsname(mem: MemoryReader, addr: bigint, limit: number): string {
  return withStruct(mem, addr, 390, (v) => `{sysname=${charField(v, 0, 65, limit)}, nodename=${charField(v, 65, 65, limit)}, ...}`);
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

/**
 * `struct statfs`, in full as strace prints it.
 *
 * @example
 * ```ts
 * formatStatfs(mem, addr); // '{f_type=EXT2_SUPER_MAGIC, f_bsize=4096, ..., f_flags=ST_VALID|ST_RELATIME}'
 * ```
 */
export function formatStatfs(mem: MemoryReader, addr: bigint): string {
  return withStruct(mem, addr, 120, (v) => {
    const type = u64(v, 0);
    const fsid = `{val=[${hex(BigInt(v.getUint32(56, true)))}, ${hex(BigInt(v.getUint32(60, true)))}]}`;
    return `{f_type=${lookup(type, FS_MAGIC) ?? hex(type)}, f_bsize=${i64(v, 8)}, f_blocks=${u64(v, 16)}, f_bfree=${u64(v, 24)}, ` +
      `f_bavail=${u64(v, 32)}, f_files=${u64(v, 40)}, f_ffree=${u64(v, 48)}, f_fsid=${fsid}, f_namelen=${i64(v, 64)}, ` +
      `f_frsize=${i64(v, 72)}, f_flags=${formatFlags(u64(v, 80), ST_FLAGS)}}`;
  });
}

/**
 * `struct flock`; `l_pid` only for the F_GETLK family (output).
 *
 * @example
 * ```ts
 * formatFlock(mem, addr, false); // '{l_type=F_WRLCK, l_whence=SEEK_SET, l_start=0, l_len=10}'
 * ```
 */
export function formatFlock(mem: MemoryReader, addr: bigint, withPid: boolean): string {
  return withStruct(mem, addr, 32, (v) => {
    let s = `{l_type=${formatEnum(BigInt(v.getInt16(0, true)), LOCK_TYPE, 'F_')}, l_whence=${formatEnum(BigInt(v.getInt16(2, true)), WHENCE, 'SEEK_')}, ` +
      `l_start=${i64(v, 8)}, l_len=${i64(v, 16)}`;
    if (withPid) s += `, l_pid=${v.getInt32(24, true)}`;
    return s + '}';
  });
}

/**
 * `struct winsize`.
 *
 * @example
 * ```ts
 * formatWinsize(mem, addr); // '{ws_row=24, ws_col=80, ws_xpixel=0, ws_ypixel=0}'
 * ```
 */
export function formatWinsize(mem: MemoryReader, addr: bigint): string {
  return withStruct(mem, addr, 8, (v) =>
    `{ws_row=${v.getUint16(0, true)}, ws_col=${v.getUint16(2, true)}, ws_xpixel=${v.getUint16(4, true)}, ws_ypixel=${v.getUint16(6, true)}}`);
}

/**
 * `struct termios` (TCGETS / TCSETS*), abbreviated like strace.
 *
 * @example
 * ```ts
 * formatTermios(mem, addr); // '{c_iflag=ICRNL|IXON, c_oflag=NL0|CR0|TAB0|BS0|VT0|FF0|OPOST|ONLCR, c_cflag=B38400|CS8|CREAD, c_lflag=ISIG|..., ...}'
 * ```
 */
export function formatTermios(mem: MemoryReader, addr: bigint): string {
  return withStruct(mem, addr, 36, (v) => {
    const w = (o: number): bigint => BigInt(v.getUint32(o, true));
    return `{c_iflag=${formatFlags(w(0), TC_IFLAG)}, c_oflag=${formatTermiosOflag(w(4))}, c_cflag=${formatTermiosCflag(w(8))}, c_lflag=${formatFlags(w(12), TC_LFLAG)}, ...}`;
  });
}

/**
 * An `int` behind a pointer: `[42]`.
 *
 * @example
 * ```ts
 * formatIntPtr(mem, addr); // '[16]'
 * formatIntPtr(mem, addr, signalName); // '[SIGKILL]'
 * ```
 */
export function formatIntPtr(mem: MemoryReader, addr: bigint, render: (n: bigint) => string = (n) => n.toString()): string {
  return withStruct(mem, addr, 4, (v) => `[${render(BigInt(v.getInt32(0, true)))}]`);
}

/**
 * A 64-bit word behind a pointer, in hex: `[0x7f...]` (arch_prctl ARCH_GET_FS).
 *
 * @example
 * ```ts
 * formatU64Ptr(mem, addr); // '[0x7f0000000740]'
 * ```
 */
export function formatU64Ptr(mem: MemoryReader, addr: bigint, render: (n: bigint) => string = hex): string {
  return withStruct(mem, addr, 8, (v) => `[${render(u64(v, 0))}]`);
}

/**
 * Two ints (pipe / socketpair results): `[3, 4]`.
 *
 * @example
 * ```ts
 * formatIntPair(mem, addr); // '[3, 4]'
 * ```
 */
export function formatIntPair(mem: MemoryReader, addr: bigint): string {
  return withStruct(mem, addr, 8, (v) => `[${v.getInt32(0, true)}, ${v.getInt32(4, true)}]`);
}

/**
 * A bit array of `bytes` bytes as a list of set bit numbers: `[0 1]` (CPU masks, fd_sets).
 *
 * @example
 * ```ts
 * formatBitList(mem, addr, 8); // '[0 1]'
 * ```
 */
export function formatBitList(mem: MemoryReader, addr: bigint, bytes: number): string {
  if (BigInt.asUintN(64, addr) === 0n) return 'NULL';
  const b = readBytes(mem, addr, bytes);
  if (!b) return ptr(addr);
  const on: number[] = [];
  for (let i = 0; i < b.length * 8; i++) if (b[i >> 3]! & (1 << (i & 7))) on.push(i);
  return `[${on.join(' ')}]`;
}

/**
 * An iovec array: `[{iov_base="abc", iov_len=3}, ...]`. With `dataLen`
 * (readv: the bytes transferred) only that many bytes are shown across the
 * buffers; without it, each buffer's iov_len. At most `strlen` elements,
 * then `...`.
 *
 * @example
 * ```ts
 * formatIovec(c, addr, 2n); // '[{iov_base="abc", iov_len=3}, {iov_base="defg", iov_len=4}]'
 * ```
 */
export function formatIovec(c: DecodeContext, addr: bigint, count: bigint, dataLen?: bigint): string {
  if (BigInt.asUintN(64, addr) === 0n) return 'NULL';
  const n = Number(BigInt.asUintN(64, count) > 1024n ? 1024n : BigInt.asUintN(64, count));
  const shown = Math.min(n, c.strlen);
  const v = view(c.mem, addr, shown * 16);
  if (!v) return ptr(addr);
  let left = dataLen;
  const items: string[] = [];
  for (let i = 0; i < shown; i++) {
    const base = u64(v, i * 16);
    const len = u64(v, i * 16 + 8);
    let data: bigint = len;
    if (left !== undefined) {
      data = left < len ? left : len;
      left -= data;
    }
    items.push(`{iov_base=${formatBuffer(c.mem, base, data, c.strlen)}, iov_len=${len}}`);
  }
  if (n > shown) items.push('...');
  return `[${items.join(', ')}]`;
}

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

const FAULT_SIGNALS = new Set([4, 7, 8, 11]);

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
  if (b.length < 48) return '{...}';
  const v = new DataView(b.buffer, b.byteOffset, b.length);
  const signo = v.getInt32(0, true);
  if (signo === 0) return '{}';
  const code = v.getInt32(8, true);
  const sig = `si_signo=${signalName(signo)}`;
  const pidUid = `si_pid=${v.getInt32(16, true)}, si_uid=${v.getUint32(20, true)}`;
  if (code > 0 && code !== 0x80) {
    const table = SIG_CODES.get(signo);
    const name = `si_code=${(table && lookup(BigInt(code), table)) ?? code}`;
    if (signo === 17) {
      const st = v.getInt32(24, true);
      const status = code === 1 ? st.toString() : signalName(st);
      return `{${sig}, ${name}, ${pidUid}, si_status=${status}, si_utime=${i64(v, 32)}, si_stime=${i64(v, 40)}}`;
    }
    if (FAULT_SIGNALS.has(signo)) return `{${sig}, ${name}, si_addr=${ptr(u64(v, 16))}}`;
    if (signo === 31) {
      return `{${sig}, ${name}, si_call_addr=${ptr(u64(v, 16))}, si_syscall=${v.getInt32(24, true)}, si_arch=${hex(BigInt(v.getUint32(28, true)))}}`;
    }
    return `{${sig}, ${name}}`;
  }
  const name = `si_code=${lookup(BigInt(code), SI_CODES) ?? code}`;
  return code === 0x80 ? `{${sig}, ${name}}` : `{${sig}, ${name}, ${pidUid}}`;
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
  const b = readBytes(mem, addr, 128);
  return b ? formatSiginfoBytes(b) : ptr(addr);
}

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
  const n = Number(size < 64n ? size : 88n);
  if (n < 64) return ptr(addr);
  return withStruct(mem, addr, n, (v) => {
    const flags = u64(v, 0);
    const parts = [`flags=${formatFlags(flags, CLONE3_FLAGS)}`];
    if (flags & 0x1000n) parts.push(`pidfd=${ptr(u64(v, 8))}`);
    if (flags & 0x1200000n) parts.push(`child_tid=${ptr(u64(v, 16))}`);
    if (flags & 0x100000n) parts.push(`parent_tid=${ptr(u64(v, 24))}`);
    parts.push(`exit_signal=${signalName(u64(v, 32))}`, `stack=${ptr(u64(v, 40))}`, `stack_size=${hex(u64(v, 48))}`);
    if (flags & 0x80000n) parts.push(`tls=${ptr(u64(v, 56))}`);
    if (n >= 80 && u64(v, 64) !== 0n) parts.push(`set_tid=${ptr(u64(v, 64))}`, `set_tid_size=${u64(v, 72)}`);
    if (n >= 88 && flags & 0x200000000n) parts.push(`cgroup=${u64(v, 80)}`);
    return `{${parts.join(', ')}}`;
  });
}

/**
 * Count the records of a getdents64 (or getdents) buffer of `len` bytes: `/* N entries *\/`.
 *
 * @example
 * ```ts
 * countDirents(mem, addr, 240); // 7
 * ```
 */
export function countDirents(mem: MemoryReader, addr: bigint, len: number): number | undefined {
  const b = readBytes(mem, addr, len);
  if (!b) return undefined;
  const v = new DataView(b.buffer, b.byteOffset, b.length);
  let n = 0;
  for (let o = 0; o + 18 <= len;) {
    const reclen = v.getUint16(o + 16, true);
    if (reclen === 0) break;
    n++;
    o += reclen;
  }
  return n;
}
