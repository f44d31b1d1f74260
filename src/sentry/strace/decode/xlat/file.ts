/**
 * Flags and commands of the file and descriptor calls: open, the `*at()` flags,
 * access, lseek, fcntl, flock, rename, close_range, fadvise, fallocate,
 * splice, xattrs, memfd (x86-64 values, in strace's print order).
 *
 * @module
 */

import { styled } from '../constStyle.js';
import { hex } from '../scalars.js';
import { formatFlags, xlat } from '../xlat.js';

/** open(2): create the file if it does not exist (then a mode argument follows). */
const O_CREAT = 0x40n;
/** open(2): an unnamed temporary file (O_DIRECTORY is part of it; a mode argument follows). */
const O_TMPFILE = 0x410000n;

/**
 * open(2) flags other than the access mode (which {@link formatOpenFlags} prints first).
 *
 * @example
 * ```ts
 * formatFlags(0x80040n, OPEN_FLAGS); // 'O_CREAT|O_CLOEXEC'
 * ```
 */
export const OPEN_FLAGS = xlat({
  O_CREAT, O_EXCL: 0x80, O_NOCTTY: 0x100, O_TRUNC: 0x200, O_APPEND: 0x400, O_NONBLOCK: 0x800,
  O_SYNC: 0x101000, O_DSYNC: 0x1000, O_DIRECT: 0x4000, O_LARGEFILE: 0x8000, O_NOFOLLOW: 0x20000,
  O_NOATIME: 0x40000, O_CLOEXEC: 0x80000, O_PATH: 0x200000, O_TMPFILE, O_DIRECTORY: 0x10000,
  FASYNC: 0x2000,
});

/** The access mode (the low two bits of open's flags) by value. */
const ACCESS_MODES = ['O_RDONLY', 'O_WRONLY', 'O_RDWR', 'O_ACCMODE'] as const;

/**
 * open(2) flags: the access mode first (`O_RDONLY` for 0), then the others.
 *
 * @example
 * ```ts
 * formatOpenFlags(0x80000n); // 'O_RDONLY|O_CLOEXEC'
 * ```
 */
export function formatOpenFlags(v: bigint): string {
  const u = BigInt.asUintN(32, v);
  return styled(hex(u), () => {
    const rest = u & ~3n;
    const mode = ACCESS_MODES[Number(u & 3n)]!;
    return rest === 0n ? mode : `${mode}|${formatFlags(rest, OPEN_FLAGS)}`;
  });
}

/**
 * Whether open flags make the call take a mode (O_CREAT, O_TMPFILE): strace
 * prints the mode argument only then.
 *
 * @example
 * ```ts
 * openTakesMode(0x41n); // true: O_WRONLY|O_CREAT
 * openTakesMode(0n);    // false
 * ```
 */
export function openTakesMode(flags: bigint): boolean {
  return (flags & O_CREAT) !== 0n || (flags & O_TMPFILE) === O_TMPFILE;
}

/**
 * openat2(2) `struct open_how` resolve flags.
 *
 * @example
 * ```ts
 * formatFlags(0x8n, RESOLVE_FLAGS); // 'RESOLVE_BENEATH'
 * ```
 */
export const RESOLVE_FLAGS = xlat({
  RESOLVE_NO_XDEV: 1, RESOLVE_NO_MAGICLINKS: 2, RESOLVE_NO_SYMLINKS: 4, RESOLVE_BENEATH: 8, RESOLVE_IN_ROOT: 0x10, RESOLVE_CACHED: 0x20,
});

/**
 * `*at()` flags.
 *
 * @example
 * ```ts
 * formatFlags(0x1000n, AT_FLAGS); // 'AT_EMPTY_PATH'
 * ```
 */
export const AT_FLAGS = xlat({
  AT_SYMLINK_NOFOLLOW: 0x100, AT_REMOVEDIR: 0x200, AT_SYMLINK_FOLLOW: 0x400, AT_NO_AUTOMOUNT: 0x800,
  AT_EMPTY_PATH: 0x1000, AT_RECURSIVE: 0x8000,
});

/**
 * faccessat2(2) flags (0x200 is AT_EACCESS there).
 *
 * @example
 * ```ts
 * formatFlags(0x200n, FACCESSAT_FLAGS); // 'AT_EACCESS'
 * ```
 */
export const FACCESSAT_FLAGS = xlat({ AT_SYMLINK_NOFOLLOW: 0x100, AT_EACCESS: 0x200, AT_EMPTY_PATH: 0x1000 });

/**
 * access(2) modes (`F_OK` when 0).
 *
 * @example
 * ```ts
 * formatFlags(6n, ACCESS_MODE, 'F_OK'); // 'R_OK|W_OK'
 * ```
 */
export const ACCESS_MODE = xlat({ R_OK: 4, W_OK: 2, X_OK: 1 });

/**
 * lseek(2) whence.
 *
 * @example
 * ```ts
 * formatEnum(2n, WHENCE, 'SEEK_'); // 'SEEK_END'
 * ```
 */
export const WHENCE = xlat({ SEEK_SET: 0, SEEK_CUR: 1, SEEK_END: 2, SEEK_DATA: 3, SEEK_HOLE: 4 });

/**
 * A directory entry's d_type (getdents, getdents64).
 *
 * @example
 * ```ts
 * formatEnum(4n, DIRENT_TYPE, 'DT_'); // 'DT_DIR'
 * ```
 */
export const DIRENT_TYPE = xlat({ DT_UNKNOWN: 0, DT_FIFO: 1, DT_CHR: 2, DT_DIR: 4, DT_BLK: 6, DT_REG: 8, DT_LNK: 10, DT_SOCK: 12, DT_WHT: 14 });

/**
 * fcntl(2) commands.
 *
 * @example
 * ```ts
 * formatEnum(1030n, FCNTL_CMD, 'F_'); // 'F_DUPFD_CLOEXEC'
 * ```
 */
export const FCNTL_CMD = xlat({
  F_DUPFD: 0, F_GETFD: 1, F_SETFD: 2, F_GETFL: 3, F_SETFL: 4, F_GETLK: 5, F_SETLK: 6, F_SETLKW: 7,
  F_SETOWN: 8, F_GETOWN: 9, F_SETSIG: 10, F_GETSIG: 11, F_SETOWN_EX: 15, F_GETOWN_EX: 16,
  F_GETOWNER_UIDS: 17, F_OFD_GETLK: 36, F_OFD_SETLK: 37, F_OFD_SETLKW: 38, F_SETLEASE: 1024,
  F_GETLEASE: 1025, F_NOTIFY: 1026, F_DUPFD_CLOEXEC: 1030, F_SETPIPE_SZ: 1031, F_GETPIPE_SZ: 1032,
  F_ADD_SEALS: 1033, F_GET_SEALS: 1034,
});

/**
 * fcntl(2) F_SETFD flags.
 *
 * @example
 * ```ts
 * formatFlags(1n, FD_FLAGS); // 'FD_CLOEXEC'
 * ```
 */
export const FD_FLAGS = xlat({ FD_CLOEXEC: 1 });

/**
 * struct flock l_type.
 *
 * @example
 * ```ts
 * formatEnum(1n, LOCK_TYPE); // 'F_WRLCK'
 * ```
 */
export const LOCK_TYPE = xlat({ F_RDLCK: 0, F_WRLCK: 1, F_UNLCK: 2 });

/**
 * flock(2) operations.
 *
 * @example
 * ```ts
 * formatFlags(6n, FLOCK_OPS); // 'LOCK_EX|LOCK_NB'
 * ```
 */
export const FLOCK_OPS = xlat({ LOCK_SH: 1, LOCK_EX: 2, LOCK_NB: 4, LOCK_UN: 8, LOCK_MAND: 32, LOCK_RW: 0xc0, LOCK_READ: 64, LOCK_WRITE: 128 });

/**
 * File seals (F_ADD_SEALS).
 *
 * @example
 * ```ts
 * formatFlags(3n, SEALS); // 'F_SEAL_SEAL|F_SEAL_SHRINK'
 * ```
 */
export const SEALS = xlat({ F_SEAL_SEAL: 1, F_SEAL_SHRINK: 2, F_SEAL_GROW: 4, F_SEAL_WRITE: 8, F_SEAL_FUTURE_WRITE: 16, F_SEAL_EXEC: 32 });

/**
 * renameat2(2) flags.
 *
 * @example
 * ```ts
 * formatFlags(1n, RENAME_FLAGS); // 'RENAME_NOREPLACE'
 * ```
 */
export const RENAME_FLAGS = xlat({ RENAME_NOREPLACE: 1, RENAME_EXCHANGE: 2, RENAME_WHITEOUT: 4 });

/**
 * close_range(2) flags.
 *
 * @example
 * ```ts
 * formatFlags(4n, CLOSE_RANGE_FLAGS); // 'CLOSE_RANGE_CLOEXEC'
 * ```
 */
export const CLOSE_RANGE_FLAGS = xlat({ CLOSE_RANGE_UNSHARE: 2, CLOSE_RANGE_CLOEXEC: 4 });

/**
 * posix_fadvise(2) advice.
 *
 * @example
 * ```ts
 * formatEnum(2n, FADV, 'POSIX_FADV_'); // 'POSIX_FADV_SEQUENTIAL'
 * ```
 */
export const FADV = xlat({
  POSIX_FADV_NORMAL: 0, POSIX_FADV_RANDOM: 1, POSIX_FADV_SEQUENTIAL: 2, POSIX_FADV_WILLNEED: 3,
  POSIX_FADV_DONTNEED: 4, POSIX_FADV_NOREUSE: 5,
});

/**
 * memfd_create(2) flags.
 *
 * @example
 * ```ts
 * formatFlags(3n, MFD_FLAGS); // 'MFD_CLOEXEC|MFD_ALLOW_SEALING'
 * ```
 */
export const MFD_FLAGS = xlat({ MFD_CLOEXEC: 1, MFD_ALLOW_SEALING: 2, MFD_HUGETLB: 4, MFD_NOEXEC_SEAL: 8, MFD_EXEC: 0x10 });

/**
 * setxattr(2) flags.
 *
 * @example
 * ```ts
 * formatFlags(1n, XATTR_FLAGS); // 'XATTR_CREATE'
 * ```
 */
export const XATTR_FLAGS = xlat({ XATTR_CREATE: 1, XATTR_REPLACE: 2 });

/**
 * fallocate(2) modes.
 *
 * @example
 * ```ts
 * formatFlags(3n, FALLOC_FLAGS); // 'FALLOC_FL_KEEP_SIZE|FALLOC_FL_PUNCH_HOLE'
 * ```
 */
export const FALLOC_FLAGS = xlat({
  FALLOC_FL_KEEP_SIZE: 1, FALLOC_FL_PUNCH_HOLE: 2, FALLOC_FL_COLLAPSE_RANGE: 8, FALLOC_FL_ZERO_RANGE: 0x10,
  FALLOC_FL_INSERT_RANGE: 0x20, FALLOC_FL_UNSHARE_RANGE: 0x40,
});

/**
 * splice(2) / tee(2) / vmsplice(2) flags.
 *
 * @example
 * ```ts
 * formatFlags(1n, SPLICE_FLAGS); // 'SPLICE_F_MOVE'
 * ```
 */
export const SPLICE_FLAGS = xlat({ SPLICE_F_MOVE: 1, SPLICE_F_NONBLOCK: 2, SPLICE_F_MORE: 4, SPLICE_F_GIFT: 8 });
