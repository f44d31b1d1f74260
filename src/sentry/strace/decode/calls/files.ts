/**
 * Decoders for file and descriptor syscalls.
 *
 * @module
 */

import type { ArgFormatter, DecoderTable, SyscallDecoder } from './common.js';
import {
  DFD, FD, I, L, MODE, P, PATH, PATH_MAX, STR, U, UL, enumOf, flags, inBuf, out, outBuf, sig,
} from './common.js';
import type { DecodeContext } from '../context.js';
import { arg, retval } from '../context.js';
import { hex, hex32, int, octal, ptr, uint } from '../scalars.js';
import { formatSigsetAt } from '../signals.js';
import { formatBuffer, formatCString } from '../strings.js';
import { formatBitList, formatIntPair, formatIntPtr } from '../structs/arrays.js';
import { countDirents, formatFlock, formatIovec } from '../structs/io.js';
import { formatEpollEvent, formatEpollEvents } from '../structs/poll.js';
import { formatDev, formatStat, formatStatfs, formatStatx } from '../structs/stat.js';
import { formatTermios, formatWinsize } from '../structs/terminal.js';
import { formatTimespecPair } from '../structs/time.js';
import { readU64 } from '../umove.js';
import { formatEnum, formatFlags } from '../xlat.js';
import { EFD_FLAGS, EPOLL_CREATE_FLAGS, EPOLL_CTL, IN_INIT_FLAGS, SFD_FLAGS } from '../xlat/events.js';
import {
  ACCESS_MODE, AT_FLAGS, CLOSE_RANGE_FLAGS, FACCESSAT_FLAGS, FADV, FALLOC_FLAGS, FCNTL_CMD, FD_FLAGS,
  FLOCK_OPS, LOCK_TYPE, MFD_FLAGS, OPEN_FLAGS, RENAME_FLAGS, RESOLVE_FLAGS, SEALS, SPLICE_FLAGS, WHENCE,
  XATTR_FLAGS, formatOpenFlags, openTakesMode,
} from '../xlat/file.js';
import { formatIoctlRequest } from '../xlat/ioctl.js';
import { STATX_MASK, formatStatMode, formatStatxFlags, isDeviceMode } from '../xlat/stat.js';
import { CLOCKS, TFD_FLAGS } from '../xlat/time.js';

/** open-style flags at `flagsArg` and the mode after them when O_CREAT / O_TMPFILE asks for one. */
function openArgs(c: DecodeContext, flagsArg: number): string[] {
  const f = arg(c, flagsArg);
  const outArgs = [formatOpenFlags(f)];
  if (openTakesMode(BigInt.asUintN(32, f))) outArgs.push(octal(BigInt.asUintN(32, arg(c, flagsArg + 1))));
  return outArgs;
}

const STAT_OUT = out((v, c) => formatStat(c.mem, v));

/** `0x8001 (flags O_WRONLY|O_LARGEFILE)`: how strace shows F_GETFL's result. */
function fcntlRet(c: DecodeContext, r: bigint): string {
  const cmd = Number(BigInt.asUintN(32, arg(c, 1)));
  if (cmd === 3) return `${hex32(r)} (flags ${formatOpenFlags(r)})`;
  if (cmd === 1) return r === 0n ? '0' : `${hex32(r)} (flags ${formatFlags(r, FD_FLAGS)})`;
  if (cmd === 1034) return r === 0n ? '0' : `${hex32(r)} (seals ${formatFlags(r, SEALS)})`;
  if (cmd === 1025) return formatEnum(r, LOCK_TYPE);
  return r.toString();
}

const fcntl: SyscallDecoder = {
  args(c) {
    const cmd = BigInt.asUintN(32, arg(c, 1));
    const head = [int(arg(c, 0)), formatEnum(cmd, FCNTL_CMD, 'F_')];
    const a = arg(c, 2);
    switch (Number(cmd)) {
      case 1: case 3: case 9: case 11: case 1025: case 1032: case 1034:
        return head;
      case 2: return [...head, formatFlags(BigInt.asUintN(32, a), FD_FLAGS)];
      case 4: return [...head, formatOpenFlags(a)];
      case 5: case 36: return [...head, c.ok ? formatFlock(c.mem, a, true) : ptr(a)];
      case 6: case 7: case 37: case 38: return [...head, formatFlock(c.mem, a, false)];
      case 1033: return [...head, formatFlags(BigInt.asUintN(32, a), SEALS)];
      case 1024: return [...head, formatEnum(BigInt.asUintN(32, a), LOCK_TYPE)];
      case 0: case 8: case 10: case 1026: case 1030: case 1031:
        return [...head, int(a)];
      default:
        return [...head, hex(a)];
    }
  },
  ret: fcntlRet,
};

/** ioctl requests that take no third argument. */
const IOCTL_NOARG = new Set([0x5450, 0x5451, 0x540c, 0x540d, 0x5422, 0x5437]);

const ioctl: SyscallDecoder = {
  args(c) {
    const req = BigInt.asUintN(32, arg(c, 1));
    const head = [int(arg(c, 0)), formatIoctlRequest(req)];
    const a = arg(c, 2);
    const n = Number(req);
    if (IOCTL_NOARG.has(n)) return head;
    switch (n) {
      case 0x5401: return [...head, c.ok ? formatTermios(c.mem, a) : ptr(a)];
      case 0x5402: case 0x5403: case 0x5404: return [...head, formatTermios(c.mem, a)];
      case 0x5413: return [...head, c.ok ? formatWinsize(c.mem, a) : ptr(a)];
      case 0x5414: return [...head, formatWinsize(c.mem, a)];
      case 0x541b: case 0x540f: case 0x5429: case 0x5411: case 0x80045430:
        return [...head, c.ok ? formatIntPtr(c.mem, a) : ptr(a)];
      case 0x5410: case 0x5421: case 0x5452: case 0x40045431:
        return [...head, formatIntPtr(c.mem, a)];
      default:
        return [...head, hex(a)];
    }
  },
};

const getdents: SyscallDecoder = {
  args(c) {
    const buf = arg(c, 1);
    let shown = ptr(buf);
    if (c.ok) {
      const n = countDirents(c.mem, buf, Number(retval(c)));
      if (n !== undefined) shown = `${hex(buf)} /* ${n} entries */`;
    }
    return [int(arg(c, 0)), shown, uint(arg(c, 2))];
  },
};

/** An argv-style array: `["a", "b"]`, at most `-s` elements then `...`. */
function argvArray(c: DecodeContext, addr: bigint): string {
  if (BigInt.asUintN(64, addr) === 0n) return 'NULL';
  const items: string[] = [];
  for (let i = 0; ; i++) {
    const p = readU64(c.mem, addr + BigInt(i * 8));
    if (p === null) return i === 0 ? ptr(addr) : `[${items.join(', ')}, ...]`;
    if (p === 0n) break;
    if (i >= c.strlen) {
      items.push('...');
      break;
    }
    items.push(formatCString(c.mem, p, c.strlen));
  }
  return `[${items.join(', ')}]`;
}

/** An envp array as strace abbreviates it: `0x7ffd... /* 35 vars *\/`. */
function envCount(c: DecodeContext, addr: bigint): string {
  if (BigInt.asUintN(64, addr) === 0n) return 'NULL';
  let n = 0;
  for (; n < 1 << 16; n++) {
    const p = readU64(c.mem, addr + BigInt(n * 8));
    if (p === null) return n === 0 ? ptr(addr) : `${hex(addr)} /* ${n} vars, unterminated */`;
    if (p === 0n) break;
  }
  return `${hex(addr)} /* ${n} vars */`;
}

/** The arguments of execve and execveat, which must be read before the call replaces the memory. */
const execve = sig(PATH, (v, c) => argvArray(c, v), (v, c) => envCount(c, v));
const execveat = sig(DFD, PATH, (v, c) => argvArray(c, v), (v, c) => envCount(c, v), flags(AT_FLAGS));

const readlinkBuf: ArgFormatter = (v, c) => (c.ok ? formatBuffer(c.mem, v, retval(c), c.strlen) : ptr(v));

const openHow: ArgFormatter = (v, c) => {
  if (BigInt.asUintN(64, v) === 0n) return 'NULL';
  const f = readU64(c.mem, v);
  const mode = readU64(c.mem, v + 8n);
  const resolve = readU64(c.mem, v + 16n);
  if (f === null || mode === null || resolve === null) return ptr(v);
  const parts = [`flags=${formatOpenFlags(f)}`];
  if (mode !== 0n || openTakesMode(f)) parts.push(`mode=${octal(mode)}`);
  parts.push(`resolve=${formatFlags(resolve, RESOLVE_FLAGS)}`);
  return `{${parts.join(', ')}}`;
};

/** mknod's mode (with the file type) and, for devices, the device number. */
function mknodArgs(c: DecodeContext, modeArg: number): string[] {
  const mode = BigInt.asUintN(32, arg(c, modeArg));
  const shown = [formatStatMode(mode)];
  if (isDeviceMode(mode)) shown.push(formatDev(BigInt.asUintN(32, arg(c, modeArg + 1))));
  return shown;
}

const sigsetSized = (sizeArg: number): ArgFormatter => (v, c) => formatSigsetAt(c.mem, v, Number(arg(c, sizeArg)));

/** An extended attribute value or name list the call filled in (`ret` bytes). */
const xattrOut: ArgFormatter = (v, c) => (c.ok && v !== 0n ? formatBuffer(c.mem, v, retval(c), c.strlen) : ptr(v));

/**
 * Decoders for file-system and descriptor syscalls, by name.
 *
 * @example
 * ```ts
 * FILE_DECODERS.close!.args(c); // ['3']
 * ```
 */
export const FILE_DECODERS: DecoderTable = {
  read: sig(FD, outBuf(), UL),
  write: sig(FD, inBuf(2), UL),
  pread64: sig(FD, outBuf(), UL, L),
  pwrite64: sig(FD, inBuf(2), UL, L),
  readv: sig(FD, (v, c) => (c.ok ? formatIovec(c, v, arg(c, 2), retval(c)) : ptr(v)), I),
  writev: sig(FD, (v, c) => formatIovec(c, v, arg(c, 2)), I),
  preadv: sig(FD, (v, c) => (c.ok ? formatIovec(c, v, arg(c, 2), retval(c)) : ptr(v)), I, L),
  pwritev: sig(FD, (v, c) => formatIovec(c, v, arg(c, 2)), I, L),
  open: { args: (c) => [PATH(arg(c, 0), c), ...openArgs(c, 1)] },
  openat: { args: (c) => [DFD(arg(c, 0), c), PATH(arg(c, 1), c), ...openArgs(c, 2)] },
  openat2: sig(DFD, PATH, openHow, UL),
  creat: sig(PATH, MODE),
  close: sig(FD),
  close_range: sig(U, U, flags(CLOSE_RANGE_FLAGS)),
  stat: sig(PATH, STAT_OUT),
  lstat: sig(PATH, STAT_OUT),
  fstat: sig(FD, STAT_OUT),
  newfstatat: sig(DFD, PATH, STAT_OUT, flags(AT_FLAGS)),
  statx: sig(DFD, PATH, (v) => formatStatxFlags(v), flags(STATX_MASK), out((v, c) => formatStatx(c.mem, v))),
  statfs: sig(PATH, out((v, c) => formatStatfs(c.mem, v))),
  fstatfs: sig(FD, out((v, c) => formatStatfs(c.mem, v))),
  lseek: sig(FD, L, enumOf(WHENCE, 'SEEK_')),
  access: sig(PATH, flags(ACCESS_MODE, 'F_OK')),
  faccessat: sig(DFD, PATH, flags(ACCESS_MODE, 'F_OK')),
  faccessat2: sig(DFD, PATH, flags(ACCESS_MODE, 'F_OK'), flags(FACCESSAT_FLAGS)),
  ioctl,
  fcntl,
  getdents,
  getdents64: getdents,
  execve,
  execveat,
  getcwd: sig((v, c) => (c.ok ? formatBuffer(c.mem, v, retval(c) > 0n ? retval(c) - 1n : 0n, PATH_MAX) : ptr(v)), UL),
  chdir: sig(PATH),
  fchdir: sig(FD),
  chroot: sig(PATH),
  mkdir: sig(PATH, MODE),
  mkdirat: sig(DFD, PATH, MODE),
  rmdir: sig(PATH),
  unlink: sig(PATH),
  unlinkat: sig(DFD, PATH, flags(AT_FLAGS)),
  rename: sig(PATH, PATH),
  renameat: sig(DFD, PATH, DFD, PATH),
  renameat2: sig(DFD, PATH, DFD, PATH, flags(RENAME_FLAGS)),
  link: sig(PATH, PATH),
  linkat: sig(DFD, PATH, DFD, PATH, flags(AT_FLAGS)),
  symlink: sig(PATH, PATH),
  symlinkat: sig(PATH, DFD, PATH),
  readlink: sig(PATH, readlinkBuf, UL),
  readlinkat: sig(DFD, PATH, readlinkBuf, UL),
  chmod: sig(PATH, MODE),
  fchmod: sig(FD, MODE),
  fchmodat: sig(DFD, PATH, MODE),
  chown: sig(PATH, I, I),
  lchown: sig(PATH, I, I),
  fchown: sig(FD, I, I),
  fchownat: sig(DFD, PATH, I, I, flags(AT_FLAGS)),
  truncate: sig(PATH, L),
  ftruncate: sig(FD, L),
  utimensat: sig(DFD, PATH, (v, c) => formatTimespecPair(c.mem, v), flags(AT_FLAGS)),
  mknod: { args: (c) => [PATH(arg(c, 0), c), ...mknodArgs(c, 1)] },
  mknodat: { args: (c) => [DFD(arg(c, 0), c), PATH(arg(c, 1), c), ...mknodArgs(c, 2)] },
  fsync: sig(FD),
  fdatasync: sig(FD),
  syncfs: sig(FD),
  flock: sig(FD, flags(FLOCK_OPS)),
  fadvise64: sig(FD, L, L, enumOf(FADV, 'POSIX_FADV_')),
  fallocate: sig(FD, flags(FALLOC_FLAGS), L, L),
  readahead: sig(FD, L, UL),
  sendfile: sig(FD, FD, (v, c) => (BigInt.asUintN(64, v) === 0n ? 'NULL' : formatU64Bracket(c, v)), UL),
  dup: sig(FD),
  dup2: sig(FD, FD),
  dup3: sig(FD, FD, flags(OPEN_FLAGS)),
  pipe: sig(out((v, c) => formatIntPair(c.mem, v))),
  pipe2: sig(out((v, c) => formatIntPair(c.mem, v)), flags(OPEN_FLAGS)),
  memfd_create: sig(STR, flags(MFD_FLAGS)),
  eventfd: sig(U),
  eventfd2: sig(U, flags(EFD_FLAGS)),
  epoll_create: sig(I),
  epoll_create1: sig(flags(EPOLL_CREATE_FLAGS)),
  epoll_ctl: sig(FD, enumOf(EPOLL_CTL, 'EPOLL_CTL_'), FD, (v, c) => formatEpollEvent(c.mem, v)),
  epoll_wait: sig(FD, (v, c) => (c.ok ? formatEpollEvents(c, v, Number(retval(c))) : ptr(v)), I, I),
  epoll_pwait: sig(FD, (v, c) => (c.ok ? formatEpollEvents(c, v, Number(retval(c))) : ptr(v)), I, I, sigsetSized(5), UL),
  inotify_init1: sig(flags(IN_INIT_FLAGS)),
  inotify_rm_watch: sig(FD, I),
  timerfd_create: sig(enumOf(CLOCKS, 'CLOCK_'), flags(TFD_FLAGS)),
  signalfd4: sig(FD, sigsetSized(2), UL, flags(SFD_FLAGS)),
  signalfd: sig(FD, sigsetSized(2), UL),
  sched_getaffinity: sig(I, U, out((v, c) => formatBitList(c.mem, v, Number(retval(c))))),
  sched_setaffinity: sig(I, U, (v, c) => formatBitList(c.mem, v, Math.min(Number(BigInt.asUintN(32, arg(c, 1))), 1024))),
  copy_file_range: sig(FD, (v, c) => loffPtr(c, v), FD, (v, c) => loffPtr(c, v), UL, U),
  splice: sig(FD, (v, c) => loffPtr(c, v), FD, (v, c) => loffPtr(c, v), UL, flags(SPLICE_FLAGS)),
  rt_sigpending: sig(out(sigsetSized(1)), UL),
  getxattr: sig(PATH, STR, xattrOut, UL),
  lgetxattr: sig(PATH, STR, xattrOut, UL),
  fgetxattr: sig(FD, STR, xattrOut, UL),
  setxattr: sig(PATH, STR, inBuf(3), UL, flags(XATTR_FLAGS)),
  lsetxattr: sig(PATH, STR, inBuf(3), UL, flags(XATTR_FLAGS)),
  fsetxattr: sig(FD, STR, inBuf(3), UL, flags(XATTR_FLAGS)),
  listxattr: sig(PATH, xattrOut, UL),
  llistxattr: sig(PATH, xattrOut, UL),
  flistxattr: sig(FD, xattrOut, UL),
  removexattr: sig(PATH, STR),
  lremovexattr: sig(PATH, STR),
  fremovexattr: sig(FD, STR),
  io_uring_setup: sig(U, P),
};

function formatU64Bracket(c: DecodeContext, v: bigint): string {
  const n = readU64(c.mem, v);
  return n === null ? ptr(v) : `[${BigInt.asIntN(64, n)}]`;
}

function loffPtr(c: DecodeContext, v: bigint): string {
  return BigInt.asUintN(64, v) === 0n ? 'NULL' : formatU64Bracket(c, v);
}
