/**
 * Printers for the terminal structs of ioctl: `struct termios`, `struct winsize`.
 *
 * Each printer takes the struct's address and prints `NULL` for a null
 * pointer, the address in hex when the memory cannot be read.
 *
 * @module
 */

import type { MemoryReader } from '../umove.js';
import { withStruct } from '../umove.js';
import { formatFlags } from '../xlat.js';
import { TC_IFLAG, TC_LFLAG, formatTermiosCflag, formatTermiosOflag } from '../xlat/termios.js';

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
