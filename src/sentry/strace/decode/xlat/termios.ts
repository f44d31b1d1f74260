/**
 * The flag words of `struct termios`: input, output, control (baud rate,
 * character size) and local modes, as strace prints them.
 *
 * @module
 */

import { hex } from '../scalars.js';
import { formatFlags, xlat } from '../xlat.js';

/**
 * c_iflag: input modes.
 *
 * @example
 * ```ts
 * formatFlags(0o2400n, TC_IFLAG); // 'ICRNL|IXON'
 * ```
 */
export const TC_IFLAG = xlat({
  IGNBRK: 0o1, BRKINT: 0o2, IGNPAR: 0o4, PARMRK: 0o10, INPCK: 0o20, ISTRIP: 0o40, INLCR: 0o100, IGNCR: 0o200,
  ICRNL: 0o400, IUCLC: 0o1000, IXON: 0o2000, IXANY: 0o4000, IXOFF: 0o10000, IMAXBEL: 0o20000, IUTF8: 0o40000,
});

/**
 * c_lflag: local modes, in strace's order.
 *
 * @example
 * ```ts
 * formatFlags(0o3n, TC_LFLAG); // 'ISIG|ICANON'
 * ```
 */
export const TC_LFLAG = xlat({
  ISIG: 0o1, ICANON: 0o2, XCASE: 0o4, ECHO: 0o10, ECHOE: 0o20, ECHOK: 0o40, ECHONL: 0o100, NOFLSH: 0o200,
  TOSTOP: 0o400, IEXTEN: 0o100000, ECHOCTL: 0o1000, ECHOPRT: 0o2000, ECHOKE: 0o4000, FLUSHO: 0o10000,
  PENDIN: 0o40000, EXTPROC: 0o200000,
});

/** c_oflag bits other than OPOST and the delay fields. */
const TC_OFLAG = xlat({
  OLCUC: 0o2, ONLCR: 0o4, OCRNL: 0o10, ONOCR: 0o20, ONLRET: 0o40, OFILL: 0o100, OFDEL: 0o200,
});
/** OPOST and the delay fields NLDLY..FFDLY, which strace prints apart from the other bits. */
const OPOST = 0o1n;
const OFLAG_FIELDS = 0o177401n;

/** c_cflag bits other than the baud rate and the character size. */
const TC_CFLAG = xlat({ CSTOPB: 0o100, CREAD: 0o200, PARENB: 0o400, PARODD: 0o1000, HUPCL: 0o2000, CLOCAL: 0o4000, CMSPAR: 0o10000000000, CRTSCTS: 0o20000000000 });
/** The baud rate bits (CBAUD) and, with the character size (CSIZE), the fields strace prints by value. */
const CBAUD = 0o10017n;
const CFLAG_FIELDS = 0o10077n;
/** The first of the fast baud rates (BOTHER's neighbours), which are numbered from here. */
const B57600 = 0o10001n;
/** Baud rates 0..15 by value. */
const BAUDS = ['B0', 'B50', 'B75', 'B110', 'B134', 'B150', 'B200', 'B300', 'B600', 'B1200', 'B1800', 'B2400', 'B4800', 'B9600', 'B19200', 'B38400'];
/** Baud rates from B57600 (0o10001) on. */
const FAST_BAUDS = [
  'B57600', 'B115200', 'B230400', 'B460800', 'B500000', 'B576000', 'B921600', 'B1000000', 'B1152000', 'B1500000',
  'B2000000', 'B2500000', 'B3000000', 'B3500000', 'B4000000',
];

/**
 * c_oflag: the delay fields (NL0|CR0|...) then OPOST and the other bits,
 * as strace orders them.
 *
 * @example
 * ```ts
 * formatTermiosOflag(0o5n); // 'NL0|CR0|TAB0|BS0|VT0|FF0|OPOST|ONLCR'
 * ```
 */
export function formatTermiosOflag(x: bigint): string {
  const parts = [
    `NL${(x >> 8n) & 1n}`, `CR${(x >> 9n) & 3n}`, `TAB${(x >> 11n) & 3n}`, `BS${(x >> 13n) & 1n}`,
    `VT${(x >> 14n) & 1n}`, `FF${(x >> 15n) & 1n}`,
  ];
  if (x & OPOST) parts.push('OPOST');
  const rest = x & ~OFLAG_FIELDS;
  if (rest) parts.push(formatFlags(rest, TC_OFLAG));
  return parts.join('|');
}

/**
 * c_cflag: the baud rate, the character size, then the other bits.
 *
 * @example
 * ```ts
 * formatTermiosCflag(0o277n); // 'B38400|CS8|CREAD'
 * ```
 */
export function formatTermiosCflag(x: bigint): string {
  const baud = x & CBAUD;
  const name = baud < 16n ? BAUDS[Number(baud)] : FAST_BAUDS[Number(baud - B57600)];
  const parts = [name ?? hex(baud), `CS${5n + ((x >> 4n) & 3n)}`];
  const rest = x & ~CFLAG_FIELDS;
  if (rest) parts.push(formatFlags(rest, TC_CFLAG));
  return parts.join('|');
}
