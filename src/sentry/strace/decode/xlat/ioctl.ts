/**
 * ioctl(2) request names, and the `_IOC(dir, type, nr, size)` form strace
 * prints for the others.
 *
 * @module
 */

import { hex } from '../scalars.js';
import { lookup, xlat } from '../xlat.js';

/**
 * Common ioctl requests (terminal, generic file, block, sockets) by value.
 *
 * @example
 * ```ts
 * lookup(0x5401n, IOCTLS); // 'TCGETS'
 * ```
 */
export const IOCTLS = xlat({
  TCGETS: 0x5401, TCSETS: 0x5402, TCSETSW: 0x5403, TCSETSF: 0x5404, TCGETA: 0x5405, TCSETA: 0x5406,
  TCSETAW: 0x5407, TCSETAF: 0x5408, TCSBRK: 0x5409, TCXONC: 0x540a, TCFLSH: 0x540b, TIOCEXCL: 0x540c,
  TIOCNXCL: 0x540d, TIOCSCTTY: 0x540e, TIOCGPGRP: 0x540f, TIOCSPGRP: 0x5410, TIOCOUTQ: 0x5411,
  TIOCSTI: 0x5412, TIOCGWINSZ: 0x5413, TIOCSWINSZ: 0x5414, TIOCMGET: 0x5415, TIOCMBIS: 0x5416,
  TIOCMBIC: 0x5417, TIOCMSET: 0x5418, TIOCGSOFTCAR: 0x5419, TIOCSSOFTCAR: 0x541a, FIONREAD: 0x541b,
  TIOCLINUX: 0x541c, TIOCCONS: 0x541d, TIOCGSERIAL: 0x541e, TIOCSSERIAL: 0x541f, TIOCPKT: 0x5420,
  FIONBIO: 0x5421, TIOCNOTTY: 0x5422, TIOCSETD: 0x5423, TIOCGETD: 0x5424, TCSBRKP: 0x5425,
  TIOCSBRK: 0x5427, TIOCCBRK: 0x5428, TIOCGSID: 0x5429, TCGETS2: 0x802c542a, TCSETS2: 0x402c542b,
  TIOCGPTN: 0x80045430, TIOCSPTLCK: 0x40045431, TIOCGDEV: 0x80045432, TIOCSIG: 0x40045436,
  TIOCVHANGUP: 0x5437, TIOCGPKT: 0x80045438, TIOCGPTLCK: 0x80045439, TIOCGEXCL: 0x80045440,
  TIOCGPTPEER: 0x5441, FIONCLEX: 0x5450, FIOCLEX: 0x5451, FIOASYNC: 0x5452, TIOCSERCONFIG: 0x5453,
  TIOCSERGETLSR: 0x5459, TIOCMIWAIT: 0x545c, TIOCGICOUNT: 0x545d, FIOQSIZE: 0x5460,
  FIOSETOWN: 0x8901, SIOCSPGRP: 0x8902, FIOGETOWN: 0x8903, SIOCGPGRP: 0x8904, SIOCATMARK: 0x8905,
  SIOCGSTAMP_OLD: 0x8906, SIOCGIFNAME: 0x8910, SIOCGIFCONF: 0x8912, SIOCGIFFLAGS: 0x8913,
  SIOCSIFFLAGS: 0x8914, SIOCGIFADDR: 0x8915, SIOCGIFMTU: 0x8921, SIOCGIFHWADDR: 0x8927,
  SIOCGIFINDEX: 0x8933, SIOCETHTOOL: 0x8946,
  BLKROSET: 0x125d, BLKROGET: 0x125e, BLKGETSIZE: 0x1260, BLKFLSBUF: 0x1261, BLKSSZGET: 0x1268,
  BLKBSZGET: 0x80081270, BLKGETSIZE64: 0x80081272, FIBMAP: 0x1, FIGETBSZ: 0x2,
  FS_IOC_GETFLAGS: 0x80086601, FS_IOC_SETFLAGS: 0x40086602, FS_IOC_GETVERSION: 0x80087601,
  FS_IOC_FIEMAP: 0xc020660b, FICLONE: 0x40049409, FICLONERANGE: 0x4020940d, FIDEDUPERANGE: 0xc0189436,
  FIFREEZE: 0xc0045877, FITHAW: 0xc0045878, FITRIM: 0xc0185879,
  RNDGETENTCNT: 0x80045200, NS_GET_USERNS: 0xb701, NS_GET_PARENT: 0xb702, NS_GET_NSTYPE: 0xb703,
});

/** The direction field (bits 30..31) of an `_IOC` request, by value. */
const IOC_DIRS = ['_IOC_NONE', '_IOC_WRITE', '_IOC_READ', '_IOC_READ|_IOC_WRITE'] as const;

/**
 * An ioctl request: its name when known, else decoded as
 * `_IOC(dir, type, nr, size)` like strace.
 *
 * @example
 * ```ts
 * formatIoctlRequest(0x5401n);     // 'TCGETS'
 * formatIoctlRequest(0x12345678n); // '_IOC(_IOC_NONE, 0x56, 0x78, 0x1234)'
 * ```
 */
export function formatIoctlRequest(v: bigint): string {
  const u = BigInt.asUintN(32, v);
  const name = lookup(u, IOCTLS);
  if (name) return name;
  // _IOC layout: dir in bits 30..31, size in 16..29, type in 8..15, nr in 0..7.
  const dir = Number((u >> 30n) & 3n);
  const size = (u >> 16n) & 0x3fffn;
  return `_IOC(${IOC_DIRS[dir]}, ${hex((u >> 8n) & 0xffn)}, ${hex(u & 0xffn)}, ${hex(size)})`;
}
