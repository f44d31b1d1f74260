import { SYS } from '../../abi/syscalls.js';
import type { AuxEntry } from './auxv.js';
import type { StubIO } from './stubIO.js';

/** prctl(PR_SET_MM, PR_SET_MM_MAP, &map, sizeof map): the whole mm description at once. */
const PR_SET_MM = 35n;
const PR_SET_MM_MAP = 14n;
/** Bytes of struct prctl_mm_map: eleven u64 addresses, the auxv pointer, auxv_size, exe_fd. */
const MAP_SIZE = 104;
/** Where the map and the auxv go in the loader's scratch area (past the path it holds). */
const MAP_AT = 8192n - 1024n;
const AUXV_AT = MAP_AT + 128n;
/** The most auxv bytes Linux keeps (sizeof mm->saved_auxv on x86-64: AT_VECTOR_SIZE u64s). */
const SAVED_AUXV_BYTES = 2 * (2 + 20 + 1 + 24) * 8;

/** What /proc shows of a new image: its code, break, stack, argv and environment strings, auxv. */
export interface ImageMap {
  code: { start: bigint; end: bigint };
  brk: bigint;
  stack: bigint;
  args: { start: bigint; end: bigint };
  env: { start: bigint; end: bigint };
  auxv: AuxEntry[];
}

/**
 * Describes a new image to the kernel as execve would have (PR_SET_MM_MAP, which needs no
 * privilege while the executable link is left alone): `/proc/PID/cmdline` and `environ` then
 * read the program's argv and environment from its stack, for every stub thread (they share
 * the mm) and for `ps`, and `/proc/PID/auxv` its auxv; without it they were Node's. Best
 * effort: a kernel that refuses leaves the old description (the program runs the same).
 * Precondition: the strings and the auxv are in place on the new stack.
 *
 * @example
 * ```ts
 * describeImage(io, { code, brk, stack: sp, args, env, auxv });
 * await io.flush();
 * ```
 */
export function describeImage(io: StubIO, m: ImageMap): void {
  const auxv = new DataView(new ArrayBuffer(Math.min(SAVED_AUXV_BYTES, (m.auxv.length + 1) * 16)));
  m.auxv.slice(0, auxv.byteLength / 16 - 1).forEach(([type, value], i) => {
    auxv.setBigUint64(16 * i, BigInt(type), true);
    auxv.setBigUint64(16 * i + 8, value, true);
  });
  const map = new DataView(new ArrayBuffer(MAP_SIZE));
  // start_code, end_code, start_data, end_data, start_brk, brk, start_stack, arg_start, arg_end, env_start, env_end
  const fields = [m.code.start, m.code.end, m.code.end, m.code.end, m.brk, m.brk, m.stack, m.args.start, m.args.end, m.env.start, m.env.end];
  fields.forEach((v, i) => map.setBigUint64(8 * i, v, true));
  map.setBigUint64(88, io.scratch + AUXV_AT, true);
  map.setUint32(96, auxv.byteLength, true);
  map.setUint32(100, 0xffffffff, true); // exe_fd: keep the executable link
  io.write(io.scratch + AUXV_AT, new Uint8Array(auxv.buffer));
  io.write(io.scratch + MAP_AT, new Uint8Array(map.buffer));
  io.later(SYS.prctl, [PR_SET_MM, PR_SET_MM_MAP, io.scratch + MAP_AT, BigInt(MAP_SIZE), 0n], undefined, () => undefined);
}
