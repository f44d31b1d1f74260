import { Errors } from '../../errors.js';
import { PAGE, hex, rangeText, roundDown, type AddressRange } from './addresses.js';
import { ET } from './elfFormat.js';
import type { ElfInfo } from './elf.js';
import { LoaderErrors } from './loaderErrors.js';
import type { OpenImage } from './open.js';
import { SCRATCH_SIZE } from './stubIO.js';

/**
 * Where a program goes in the address space: what Linux decides in mm/util.c (mmap_base) and
 * binfmt_elf (load_bias, the interpreter's place), before anything is mapped.
 *
 * Layout (below `limit` = AddressSpace.userLimit: the lower of the user address limit and the
 * stub region):
 *
 * ```
 * limit
 *   - 1 MiB                  stackTop (default): gap keeps the stack off the stub region
 *   [stackTop - stackSize]   stack, 8 MiB, rw- (rwx if the program asks for an executable stack)
 *   >= 1 MiB gap             a 64 KiB scratch area lives here during loading only
 * mmapTop = min(limit - 128 MiB, stack bottom - 1 MiB)   (Linux's mmap_base gap)
 *   [just below mmapTop]     the interpreter (ld.so), aligned to its largest p_align
 *   … free: where a top-down mmap allocator should continue (below LoadedProgram.mmapBase)
 * 0x555555554000             ET_DYN main programs (PIE, static-pie): Linux's ELF_ET_DYN_BASE
 *   followed by brk (LoadedProgram.brkStart)
 * p_vaddr                    ET_EXEC programs, where they were linked (typically 0x400000)
 * ```
 *
 * Addresses are fixed rather than randomised, so runs are reproducible and a failure can be
 * found again at the same address; LoadOptions `mainBase` / `interpBase` / `stackTop` move them.
 */

/**
 * Linux's ELF_ET_DYN_BASE on x86-64 without randomisation: where PIE programs load.
 *
 * @example
 * ```ts
 * (await loadProgram(as, { path: '/bin/ls', argv: ['ls'], envp: [] })).loadBias === ELF_ET_DYN_BASE;
 * ```
 */
export const ELF_ET_DYN_BASE = 0x555555554000n;

/**
 * Default stack size (Linux's default RLIMIT_STACK).
 *
 * @example
 * ```ts
 * await loadProgram(as, { path, argv, envp, stackSize: 2n * DEFAULT_STACK_SIZE });
 * ```
 */
const DEFAULT_STACK_SIZE = 8n << 20n;

/**
 * Smallest stack size accepted: 128 KiB, the size Linux's setup_arg_pages gives a new stack
 * before it grows on demand.
 *
 * @example
 * ```ts
 * if (opts.stackSize < MIN_STACK_SIZE) throw new Error('stack too small');
 * ```
 */
export const MIN_STACK_SIZE = 128n * 1024n;

/** Gap between the default stack top and `limit`: keeps stack overruns off the stub region. */
const STACK_TOP_GAP = 1n << 20n;

/** Free space kept below the stack (Linux's stack_guard_gap is 256 pages, 1 MiB). */
const STACK_GUARD_GAP = 1n << 20n;

/** Linux's smallest gap between the stack top and mmap_base (MIN_GAP). */
const MMAP_GAP = 128n << 20n;

/** Lowest address the loader maps at (Linux's default vm.mmap_min_addr is 64 KiB). */
const MIN_ADDRESS = 0x10000n;

/**
 * The top of the address space as a load arranges it, fixed before any file is opened.
 *
 * @example
 * ```ts
 * const { stackTop, stackSize }: Layout = planLayout(as.userLimit, opts);
 * ```
 */
export interface Layout {
  /** Nothing may be mapped at or above this (AddressSpace.userLimit). */
  limit: bigint;
  /** Exclusive end of the stack. */
  stackTop: bigint;
  stackSize: bigint;
  /** stackTop - stackSize. */
  stackBottom: bigint;
  /** Exclusive top of the region the interpreter and later mmaps go below (Linux's mmap_base). */
  mmapTop: bigint;
  /** The scratch area, in the guard gap above mmapTop: nothing else is ever placed there. */
  scratch: AddressRange;
}

/**
 * Places the stack, mmapTop and the scratch area below `limit`.
 *
 * Preconditions: `stackSize` and `stackTop`, if given, are positive and page aligned.
 *
 * @throws SystrapError `EINVALIDARG` when the stack does not fit below `limit`.
 *
 * @example
 * ```ts
 * const layout = planLayout(as.userLimit, { stackSize: 1n << 20n });
 * ```
 */
export function planLayout(limit: bigint, opts: { stackSize?: bigint; stackTop?: bigint }): Layout {
  const stackSize = opts.stackSize ?? DEFAULT_STACK_SIZE;
  const stackTop = opts.stackTop ?? roundDown(limit - STACK_TOP_GAP, PAGE);
  const stackBottom = stackTop - stackSize;
  const byGap = limit - MMAP_GAP;
  const byStack = stackBottom - STACK_GUARD_GAP;
  const mmapTop = roundDown(byGap < byStack ? byGap : byStack, PAGE);
  if (stackBottom < MIN_ADDRESS || stackTop > limit || mmapTop < MIN_ADDRESS)
    throw Errors.InvalidArg(`the stack ${rangeText({ start: stackBottom, end: stackTop })} does not fit below ${hex(limit)}`);
  const scratch = { start: mmapTop, end: mmapTop + SCRATCH_SIZE };
  return { limit, stackTop, stackSize, stackBottom, mmapTop, scratch };
}

/**
 * The absolute range an image occupies once biased.
 *
 * @example
 * ```ts
 * const { end } = imageRange(main.info, loadBias); // brk starts here
 * ```
 */
export function imageRange(info: ElfInfo, bias: bigint): AddressRange {
  return { start: info.span.start + bias, end: info.span.end + bias };
}

/**
 * The load biases (what is added to p_vaddr) of the program and its interpreter. ET_EXEC files
 * stay where they were linked (bias 0); ET_DYN ones move by a multiple of their largest
 * alignment, so that every segment keeps its p_vaddr mod p_align: the program to `mainBase`
 * (default ELF_ET_DYN_BASE), the interpreter to `interpBase` (default: ending at mmapTop).
 *
 * @throws SystrapError `EINVALIDARG` when `interpBase` is given for an ET_EXEC interpreter.
 *
 * @example
 * ```ts
 * const { main: loadBias, interp: interpBias } = chooseBiases(main.info, interp, opts, layout.mmapTop);
 * ```
 */
export function chooseBiases(
  main: ElfInfo,
  interp: OpenImage | undefined,
  opts: { mainBase?: bigint; interpBase?: bigint },
  mmapTop: bigint,
): { main: bigint; interp: bigint } {
  const mainBias = main.header.type === ET.DYN ? roundDown((opts.mainBase ?? ELF_ET_DYN_BASE) - main.span.start, main.span.align) : 0n;
  if (!interp) return { main: mainBias, interp: 0n };
  const ii = interp.info;
  if (ii.header.type !== ET.DYN) {
    if (opts.interpBase !== undefined) throw Errors.InvalidArg(`interpBase cannot move ${interp.path}: it is not position independent`);
    return { main: mainBias, interp: 0n };
  }
  const interpBias =
    opts.interpBase !== undefined ? roundDown(opts.interpBase - ii.span.start, ii.span.align) : roundDown(mmapTop - ii.span.end, ii.span.align);
  return { main: mainBias, interp: interpBias };
}

/**
 * A range the loader is about to map, named for error messages.
 *
 * @example
 * ```ts
 * const stack: Placement = { start: layout.stackBottom, end: layout.stackTop, name: '[stack]' };
 * ```
 */
export interface Placement extends AddressRange {
  /** The file, or '[stack]' / '[scratch]'. */
  name: string;
}

/**
 * Checks, before mapping anything, that every range lies in [64 KiB, limit) and overlaps none
 * listed before it.
 *
 * @throws LoaderError `ENOMEM` naming the first range that does not fit.
 *
 * @example
 * ```ts
 * checkPlacement(layout.limit, [{ ...imageRange(info, bias), name: path }, { ...layout.scratch, name: '[scratch]' }]);
 * ```
 */
export function checkPlacement(limit: bigint, wanted: readonly Placement[]): void {
  for (const [i, r] of wanted.entries()) {
    if (r.start < MIN_ADDRESS || r.end > limit)
      throw LoaderErrors.NoRoom(r.name, `${rangeText(r)} is outside ${rangeText({ start: MIN_ADDRESS, end: limit })}`);
    for (const o of wanted.slice(0, i))
      if (r.start < o.end && o.start < r.end) throw LoaderErrors.NoRoom(r.name, `it would overlap ${o.name}`);
  }
}

/**
 * Where a top-down mmap allocator should continue: below the interpreter when it sits at the
 * top, as it does by default, else below mmapTop.
 *
 * @example
 * ```ts
 * const mmapBase = mmapBaseAfter(layout.mmapTop, interp && imageRange(interp.info, interpBias));
 * ```
 */
export function mmapBaseAfter(mmapTop: bigint, interpRange: AddressRange | undefined): bigint {
  return interpRange && interpRange.end <= mmapTop ? interpRange.start : mmapTop;
}
