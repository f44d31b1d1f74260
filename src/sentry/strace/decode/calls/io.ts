/**
 * Decoders for the calls that move data: read, write and their vector and
 * positioned variants, and the in-kernel copies (sendfile, splice,
 * copy_file_range).
 *
 * @module
 */

import type { ArgFormatter, DecoderTable } from './args.js';
import { FD, I, L, U, UL, flags, inBuf, outBuf, sig } from './args.js';
import { arg, retval } from '../context.js';
import { ptr } from '../scalars.js';
import { formatIovec } from '../structs/io.js';
import { readU64 } from '../umove.js';
import { SPLICE_FLAGS } from '../xlat/file.js';

/** The iovec array a readv-style call filled: only the bytes it returned. */
const iovecOut: ArgFormatter = (v, c) => (c.ok ? formatIovec(c, v, arg(c, 2), retval(c)) : ptr(v));
/** The iovec array a writev-style call sends. */
const iovecIn: ArgFormatter = (v, c) => formatIovec(c, v, arg(c, 2));

/** An in/out file offset (`loff_t *`): `[4096]`, NULL, or the pointer when unreadable. */
const offsetPtr: ArgFormatter = (v, c) => {
  if (BigInt.asUintN(64, v) === 0n) return 'NULL';
  const n = readU64(c.mem, v);
  return n === null ? ptr(v) : `[${BigInt.asIntN(64, n)}]`;
};

/**
 * Decoders for the data transfer calls, by name.
 *
 * @example
 * ```ts
 * IO_DECODERS.write!.args(c); // ['1', '"hello\\n"', '6']
 * ```
 */
export const IO_DECODERS: DecoderTable = {
  read: sig(FD, outBuf(), UL),
  write: sig(FD, inBuf(2), UL),
  pread64: sig(FD, outBuf(), UL, L),
  pwrite64: sig(FD, inBuf(2), UL, L),
  readv: sig(FD, iovecOut, I),
  writev: sig(FD, iovecIn, I),
  preadv: sig(FD, iovecOut, I, L),
  pwritev: sig(FD, iovecIn, I, L),
  sendfile: sig(FD, FD, offsetPtr, UL),
  copy_file_range: sig(FD, offsetPtr, FD, offsetPtr, UL, U),
  splice: sig(FD, offsetPtr, FD, offsetPtr, UL, flags(SPLICE_FLAGS)),
  readahead: sig(FD, L, UL),
};
