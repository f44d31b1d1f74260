/**
 * Decoders for the file system calls: open and close, stat and statfs,
 * access, lseek, directories, links, renames, modes and owners, sync,
 * flock, fadvise, fallocate, extended attributes. (fcntl and ioctl have
 * their own files; read/write are in io.ts.)
 *
 * @module
 */

import { isVerbose } from '../constStyle.js';
import type { ArgFormatter, DecoderTable, SyscallDecoder } from './args.js';
import { DFD, FD, I, L, MODE, PATH, PATH_MAX, STR, U, UL, enumOf, flags, inBuf, out, sig } from './args.js';
import { fcntl } from './fcntl.js';
import { ioctl } from './ioctl.js';
import type { DecodeContext } from '../context.js';
import { arg, retval } from '../context.js';
import { hex, int, octal, ptr, uint } from '../scalars.js';
import { formatBuffer } from '../strings.js';
import { countDirents, formatDirents } from '../structs/io.js';
import { formatDev, formatStat, formatStatfs, formatStatx } from '../structs/stat.js';
import { formatTimespecPair } from '../structs/time.js';
import { readU64 } from '../umove.js';
import { formatFlags } from '../xlat.js';
import {
  ACCESS_MODE, AT_FLAGS, CLOSE_RANGE_FLAGS, FACCESSAT_FLAGS, FADV, FALLOC_FLAGS, FLOCK_OPS, RENAME_FLAGS,
  RESOLVE_FLAGS, WHENCE, XATTR_FLAGS, formatOpenFlags, openTakesMode,
} from '../xlat/file.js';
import { STATX_MASK, formatStatMode, formatStatxFlags, isDeviceMode } from '../xlat/stat.js';

/** open-style flags at `flagsArg` and the mode after them when O_CREAT / O_TMPFILE asks for one. */
function openArgs(c: DecodeContext, flagsArg: number): string[] {
  const f = arg(c, flagsArg);
  const outArgs = [formatOpenFlags(f)];
  if (openTakesMode(BigInt.asUintN(32, f))) outArgs.push(octal(BigInt.asUintN(32, arg(c, flagsArg + 1))));
  return outArgs;
}

/** openat2's `struct open_how`: flags, the mode when there is one, resolve. */
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

/**
 * getdents(64): the buffer as its address and the number of records the call returned, or with
 * `-v` the records themselves (see formatDirents).
 */
const dirents = (legacy: boolean): SyscallDecoder => ({
  args(c) {
    const buf = arg(c, 1);
    let shown = ptr(buf);
    if (c.ok) {
      const len = Number(retval(c));
      const full = isVerbose() ? formatDirents(c.mem, buf, len, legacy) : undefined;
      const n = full === undefined ? countDirents(c.mem, buf, len) : undefined;
      if (full !== undefined) shown = full;
      else if (n !== undefined) shown = `${hex(buf)} /* ${n} entries */`;
    }
    return [int(arg(c, 0)), shown, uint(arg(c, 2))];
  },
});

const statOut = out((v, c) => formatStat(c.mem, v));
const statfsOut = out((v, c) => formatStatfs(c.mem, v));
const accessMode = flags(ACCESS_MODE, 'F_OK');
/** The path readlink stored: exactly the bytes it returned (no NUL). */
const readlinkBuf: ArgFormatter = (v, c) => (c.ok ? formatBuffer(c.mem, v, retval(c), c.strlen) : ptr(v));
/** The path getcwd stored; its result counts the NUL. */
const cwdBuf: ArgFormatter = (v, c) => (c.ok ? formatBuffer(c.mem, v, retval(c) > 0n ? retval(c) - 1n : 0n, PATH_MAX) : ptr(v));
/** An extended attribute value or name list the call filled in (`ret` bytes). */
const xattrOut: ArgFormatter = (v, c) => (c.ok && v !== 0n ? formatBuffer(c.mem, v, retval(c), c.strlen) : ptr(v));

/**
 * Decoders for the file system calls, by name.
 *
 * @example
 * ```ts
 * FILE_DECODERS.close!.args(c); // ['3']
 * ```
 */
export const FILE_DECODERS: DecoderTable = {
  open: { args: (c) => [PATH(arg(c, 0), c), ...openArgs(c, 1)] },
  openat: { args: (c) => [DFD(arg(c, 0), c), PATH(arg(c, 1), c), ...openArgs(c, 2)] },
  openat2: sig(DFD, PATH, openHow, UL),
  creat: sig(PATH, MODE),
  close: sig(FD),
  close_range: sig(U, U, flags(CLOSE_RANGE_FLAGS)),
  stat: sig(PATH, statOut),
  lstat: sig(PATH, statOut),
  fstat: sig(FD, statOut),
  newfstatat: sig(DFD, PATH, statOut, flags(AT_FLAGS)),
  statx: sig(DFD, PATH, (v) => formatStatxFlags(v), flags(STATX_MASK), out((v, c) => formatStatx(c.mem, v))),
  statfs: sig(PATH, statfsOut),
  fstatfs: sig(FD, statfsOut),
  lseek: sig(FD, L, enumOf(WHENCE, 'SEEK_')),
  access: sig(PATH, accessMode),
  faccessat: sig(DFD, PATH, accessMode),
  faccessat2: sig(DFD, PATH, accessMode, flags(FACCESSAT_FLAGS)),
  ioctl,
  fcntl,
  getdents: dirents(true),
  getdents64: dirents(false),
  getcwd: sig(cwdBuf, UL),
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
};
