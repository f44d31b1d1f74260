/**
 * Decoders for execve and execveat, which the tracer formats at entry: a
 * successful exec replaces the memory their arguments live in.
 *
 * @module
 */

import type { DecoderTable } from './args.js';
import { DFD, PATH, flags, sig } from './args.js';
import type { DecodeContext } from '../context.js';
import { isVerbose } from '../constStyle.js';
import { hex, ptr } from '../scalars.js';
import { formatCString } from '../strings.js';
import { readU64 } from '../umove.js';
import { AT_FLAGS } from '../xlat/file.js';

/** An argv-style array: `["a", "b"]`, at most `-s` elements then `...`. */
function argvArray(c: DecodeContext, addr: bigint): string {
  if (BigInt.asUintN(64, addr) === 0n) return 'NULL';
  const items: string[] = [];
  for (let i = 0; ; i++) {
    const p = readU64(c.mem, addr + BigInt(i * 8));
    if (p === null) return i === 0 ? ptr(addr) : `[${items.join(', ')}, ...]`;
    if (p === 0n) break;
    if (i >= c.strlen && !isVerbose()) {
      items.push('...');
      break;
    }
    items.push(formatCString(c.mem, p, c.strlen));
  }
  return `[${items.join(', ')}]`;
}

/** The most environment entries counted (a missing NULL must not make us read forever). */
const MAX_ENV_COUNTED = 1 << 16;

/** An envp array as strace abbreviates it: `0x7ffd... /* 35 vars *\/`. */
function envCount(c: DecodeContext, addr: bigint): string {
  // -v: the environment in full, as argv is.
  if (isVerbose()) return argvArray(c, addr);
  if (BigInt.asUintN(64, addr) === 0n) return 'NULL';
  let n = 0;
  for (; n < MAX_ENV_COUNTED; n++) {
    const p = readU64(c.mem, addr + BigInt(n * 8));
    if (p === null) return n === 0 ? ptr(addr) : `${hex(addr)} /* ${n} vars, unterminated */`;
    if (p === 0n) break;
  }
  return `${hex(addr)} /* ${n} vars */`;
}

/**
 * Decoders for the exec calls, by name.
 *
 * @example
 * ```ts
 * EXEC_DECODERS.execve!.args(c); // ['"/bin/ls"', '["ls", "-l"]', '0x7ffd3000 /* 12 vars *\/']
 * ```
 */
export const EXEC_DECODERS: DecoderTable = {
  execve: sig(PATH, (v, c) => argvArray(c, v), (v, c) => envCount(c, v)),
  execveat: sig(DFD, PATH, (v, c) => argvArray(c, v), (v, c) => envCount(c, v), flags(AT_FLAGS)),
};
