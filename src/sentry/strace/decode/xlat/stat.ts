/**
 * File types and modes, and the flag words of stat, statx and statfs
 * (x86-64 values, in strace's print order).
 *
 * @module
 */

import { hex, octal } from '../scalars.js';
import type { Xlat } from '../xlat.js';
import { styled } from '../constStyle.js';
import { formatFlags, lookup, xlat } from '../xlat.js';
import { AT_FLAGS } from './file.js';

/** The file type bits of a mode. */
const S_IFMT = 0o170000n;
const S_IFBLK = 0o060000n;
const S_IFCHR = 0o020000n;

/** File types (mode & S_IFMT). */
const FILE_TYPES = xlat({
  S_IFSOCK: 0o140000, S_IFLNK: 0o120000, S_IFREG: 0o100000, S_IFBLK, S_IFDIR: 0o040000,
  S_IFCHR, S_IFIFO: 0o010000,
});

/**
 * Whether a mode is a character or block device's: strace then shows the
 * device number (st_rdev, mknod's dev) instead of a size.
 *
 * @example
 * ```ts
 * isDeviceMode(0o20666n);  // true: S_IFCHR|0666
 * isDeviceMode(0o100644n); // false
 * ```
 */
export function isDeviceMode(mode: bigint): boolean {
  const type = mode & S_IFMT;
  return type === S_IFCHR || type === S_IFBLK;
}

/** setuid / setgid / sticky bits. */
const S_ISBITS = xlat({ S_ISUID: 0o4000, S_ISGID: 0o2000, S_ISVTX: 0o1000 });

/**
 * A file mode as in a stat result: type, special bits, then permissions
 * (`S_IFREG|0644`).
 *
 * @example
 * ```ts
 * formatStatMode(0o100644n);  // 'S_IFREG|0644'
 * formatStatMode(0o41777n);   // 'S_IFDIR|S_ISVTX|0777'
 * ```
 */
export function formatStatMode(v: bigint): string {
  const u = BigInt.asUintN(32, v);
  return styled(`0${u.toString(8)}`, () => formatStatModeNamed(v));
}

/** formatStatModeNamed's answers by mode: a trace prints a handful of modes over and over. */
const NAMED_MODES = new Map<bigint, string>();

function formatStatModeNamed(v: bigint): string {
  const u = BigInt.asUintN(32, v);
  const known = NAMED_MODES.get(u);
  if (known !== undefined) return known;
  const named = statModeNamed(u);
  if (NAMED_MODES.size >= 1024) NAMED_MODES.clear();
  NAMED_MODES.set(u, named);
  return named;
}

function statModeNamed(u: bigint): string {
  const parts: string[] = [];
  const type = lookup(u & S_IFMT, FILE_TYPES);
  if (type) parts.push(type);
  else if (u & S_IFMT) parts.push(octal(u & S_IFMT));
  for (const [bits, name] of S_ISBITS) if (u & bits) parts.push(name);
  parts.push(octal(u & 0o777n));
  return parts.join('|');
}

/** statx(2) flags; the sync type (bits 0x6000) is one of them, AT_STATX_SYNC_AS_STAT (0) is not. */
const STATX_AT_FLAGS: Xlat = [...xlat({ AT_STATX_FORCE_SYNC: 0x2000, AT_STATX_DONT_SYNC: 0x4000 }), ...AT_FLAGS];
/** The sync type bits of statx's flags. */
const AT_STATX_SYNC_TYPE = 0x6000n;

/**
 * statx(2) flags: the sync type first, `AT_STATX_SYNC_AS_STAT` (zero) too,
 * as strace prints it.
 *
 * @example
 * ```ts
 * formatStatxFlags(0n);     // 'AT_STATX_SYNC_AS_STAT'
 * formatStatxFlags(0x100n); // 'AT_STATX_SYNC_AS_STAT|AT_SYMLINK_NOFOLLOW'
 * formatStatxFlags(0x2100n); // 'AT_STATX_FORCE_SYNC|AT_SYMLINK_NOFOLLOW'
 * ```
 */
export function formatStatxFlags(v: bigint): string {
  const u = BigInt.asUintN(32, v);
  return styled(hex(u), () => formatStatxFlagsNamed(v));
}

function formatStatxFlagsNamed(v: bigint): string {
  const u = BigInt.asUintN(32, v);
  if (u & AT_STATX_SYNC_TYPE) return formatFlags(u, STATX_AT_FLAGS);
  return u === 0n ? 'AT_STATX_SYNC_AS_STAT' : `AT_STATX_SYNC_AS_STAT|${formatFlags(u, STATX_AT_FLAGS)}`;
}

/**
 * statx(2) mask bits.
 *
 * @example
 * ```ts
 * formatFlags(0x17ffn, STATX_MASK); // 'STATX_BASIC_STATS|STATX_MNT_ID'
 * ```
 */
export const STATX_MASK = xlat({
  STATX_ALL: 0xfff, STATX_BASIC_STATS: 0x7ff, STATX_TYPE: 0x1, STATX_MODE: 0x2, STATX_NLINK: 0x4, STATX_UID: 0x8,
  STATX_GID: 0x10, STATX_ATIME: 0x20, STATX_MTIME: 0x40, STATX_CTIME: 0x80, STATX_INO: 0x100, STATX_SIZE: 0x200,
  STATX_BLOCKS: 0x400, STATX_BTIME: 0x800, STATX_MNT_ID: 0x1000, STATX_DIOALIGN: 0x2000, STATX_MNT_ID_UNIQUE: 0x4000,
});

/**
 * statx(2) stx_attributes bits.
 *
 * @example
 * ```ts
 * formatFlags(0x20n, STATX_ATTRS); // 'STATX_ATTR_APPEND'
 * ```
 */
export const STATX_ATTRS = xlat({
  STATX_ATTR_COMPRESSED: 0x4, STATX_ATTR_IMMUTABLE: 0x10, STATX_ATTR_APPEND: 0x20, STATX_ATTR_NODUMP: 0x40,
  STATX_ATTR_ENCRYPTED: 0x800, STATX_ATTR_AUTOMOUNT: 0x1000, STATX_ATTR_MOUNT_ROOT: 0x2000,
  STATX_ATTR_VERITY: 0x100000, STATX_ATTR_DAX: 0x200000,
});

/**
 * Filesystem magic numbers (statfs f_type).
 *
 * @example
 * ```ts
 * lookup(0xef53n, FS_MAGIC); // 'EXT2_SUPER_MAGIC'
 * ```
 */
export const FS_MAGIC = xlat({
  EXT2_SUPER_MAGIC: 0xef53, TMPFS_MAGIC: 0x01021994, PROC_SUPER_MAGIC: 0x9fa0, SYSFS_MAGIC: 0x62656572,
  DEVPTS_SUPER_MAGIC: 0x1cd1, OVERLAYFS_SUPER_MAGIC: 0x794c7630, BTRFS_SUPER_MAGIC: 0x9123683e,
  XFS_SUPER_MAGIC: 0x58465342, CGROUP2_SUPER_MAGIC: 0x63677270, CGROUP_SUPER_MAGIC: 0x27e0eb,
  NFS_SUPER_MAGIC: 0x6969, SQUASHFS_MAGIC: 0x73717368, FUSE_SUPER_MAGIC: 0x65735546, V9FS_MAGIC: 0x01021997,
  RAMFS_MAGIC: 0x858458f6, DEBUGFS_MAGIC: 0x64626720, SECURITYFS_MAGIC: 0x73636673,
  SELINUX_MAGIC: 0xf97cff8c, HUGETLBFS_MAGIC: 0x958458f6, MQUEUE_MAGIC: 0x19800202, BPF_FS_MAGIC: 0xcafe4a11,
  TRACEFS_MAGIC: 0x74726163, PIPEFS_MAGIC: 0x50495045, SOCKFS_MAGIC: 0x534f434b, ANON_INODE_FS_MAGIC: 0x09041934,
  NSFS_MAGIC: 0x6e736673, ISOFS_SUPER_MAGIC: 0x9660, MSDOS_SUPER_MAGIC: 0x4d44, EXFAT_SUPER_MAGIC: 0x2011bab0,
  F2FS_SUPER_MAGIC: 0xf2f52010, ZFS_SUPER_MAGIC: 0x2fc12fc1, CIFS_MAGIC_NUMBER: 0xff534d42,
  SMB2_MAGIC_NUMBER: 0xfe534d42, CODA_SUPER_MAGIC: 0x73757245, AUTOFS_SUPER_MAGIC: 0x0187,
  EFIVARFS_MAGIC: 0xde5e81e4, CONFIGFS_MAGIC: 0x62656570, PSTOREFS_MAGIC: 0x6165676c,
  BINFMTFS_MAGIC: 0x42494e4d, DEVTMPFS_MAGIC: 0x01021994, EROFS_SUPER_MAGIC_V1: 0xe0f5e1e2,
});

/**
 * statfs f_flags.
 *
 * @example
 * ```ts
 * formatFlags(0x1020n, ST_FLAGS); // 'ST_VALID|ST_RELATIME'
 * ```
 */
export const ST_FLAGS = xlat({
  ST_RDONLY: 1, ST_NOSUID: 2, ST_NODEV: 4, ST_NOEXEC: 8, ST_SYNCHRONOUS: 16, ST_VALID: 0x20,
  ST_MANDLOCK: 64, ST_NOATIME: 1024, ST_NODIRATIME: 2048, ST_RELATIME: 4096, ST_NOSYMFOLLOW: 0x2000,
});
