import { randomBytes } from 'node:crypto';
import { resolve as resolvePath } from 'node:path';
import { AddressSpace } from '../../addressSpace.js';
import { Errors } from '../../errors.js';
import { SYS } from '../../abi/syscalls.js';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_FIXED_NOREPLACE,
  MAP_PRIVATE,
  PROT_EXEC,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
  USER_HZ,
} from '../../abi/linux.js';
import { AT, hostAuxv, type AuxEntry } from './auxv.js';
import { PAGE, roundDown, roundUp } from './addresses.js';
import type { ElfInfo } from './elf.js';
import { ET, PF, PHDR_SIZE, type ProgramHeader } from './elfFormat.js';
import { LoaderErrors } from './loaderErrors.js';
import { checkInterpStandsAlone, openImage, openInterp, type OpenImage } from './open.js';
import { buildStackImage } from './stack.js';
import { SCRATCH_SIZE, StubIO } from './stubIO.js';

/**
 * The ELF loader: what Linux's execve + binfmt_elf do, performed inside a stub. The file is
 * opened, read, checked and mapped by the stub itself (through its syscall thread), so the
 * program gets real file-backed private mappings (shown by name in /proc/PID/maps, shared page
 * cache), and what was parsed is exactly what was mapped: there is no window in which the file
 * could be swapped between a check in Node and a map in the stub.
 *
 * Address space layout (below `limit` = min(AddressSpace.maxUserAddress, stub region start)):
 *
 * ```
 * limit
 *   - 1 MiB                  stackTop (default): gap keeps the stack off the stub region
 *   [stackTop - stackSize]   stack, 8 MiB, rw- (rwx if the program asks for an executable stack)
 *   >= 1 MiB gap             a 64 KiB scratch page lives here during loading only
 * mmapBase = min(limit - 128 MiB, stack bottom - 1 MiB)   (Linux's mmap_base gap)
 *   [just below mmapBase]    the interpreter (ld.so), aligned to its largest p_align
 *   … free: where a top-down mmap allocator should continue (below LoadedProgram.mmapBase)
 * 0x555555554000             ET_DYN main programs (PIE, static-pie): Linux's ELF_ET_DYN_BASE
 *   followed by brk (LoadedProgram.brkStart)
 * p_vaddr                    ET_EXEC programs, where they were linked (typically 0x400000)
 * ```
 *
 * Addresses are fixed rather than randomised, so runs are reproducible and a failure can be
 * found again at the same address; pass `mainBase` / `interpBase` / `stackTop` to move them.
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
export const DEFAULT_STACK_SIZE = 8n << 20n;

/** Gap between the default stack top and `limit`. */
const STACK_TOP_GAP = 1n << 20n;

/** Linux's smallest gap between the stack top and mmap_base (MIN_GAP). */
const MMAP_GAP = 128n << 20n;

/** Lowest address the loader maps at (Linux's default vm.mmap_min_addr is 64 KiB). */
const MIN_ADDRESS = 0x10000n;


/**
 * What to load and how.
 *
 * @example
 * ```ts
 * const opts: LoadOptions = { path: '/bin/ls', argv: ['ls', '-l'], envp: ['LANG=C'], stackSize: 1n << 20n };
 * ```
 */
export interface LoadOptions {
  /** The executable. Relative paths are resolved against Node's cwd (the stub shares it). */
  path: string;
  /** argv; an empty argv becomes `['']`, as Linux >= 5.18 does. */
  argv: readonly string[];
  envp: readonly string[];
  /** The AT_EXECFN string. Default: `path` as given. */
  execfn?: string;
  /** Stack size in bytes, a multiple of the page size >= 128 KiB. Default 8 MiB. */
  stackSize?: bigint;
  /** Exclusive top of the stack, page aligned. Default `limit - 1 MiB`. */
  stackTop?: bigint;
  /** Lowest address of an ET_DYN main program (rounded down to its alignment). Default 0x555555554000. */
  mainBase?: bigint;
  /** Lowest address of the interpreter (rounded down to its alignment). Default: just below mmapBase. */
  interpBase?: bigint;
  /** The 16 AT_RANDOM bytes. Default: fresh random bytes. */
  random?: Uint8Array;
}

/**
 * One mapping the loader made.
 *
 * @example
 * ```ts
 * const code = loaded.mappings.filter((m: LoadedMapping) => (m.prot & PROT_EXEC) !== 0n);
 * ```
 */
export interface LoadedMapping {
  start: bigint;
  end: bigint;
  /** PROT_* bits. */
  prot: bigint;
  /** The file mapped (absolute path), or '[stack]' / '[bss]' for anonymous memory. */
  name: string;
}

/**
 * Everything a caller needs to start the program's first thread.
 *
 * @example
 * ```ts
 * const p: LoadedProgram = await loadProgram(as, opts);
 * regs.rip = p.entry; regs.rsp = p.sp; // every other register 0
 * ```
 */
export interface LoadedProgram {
  /** Where to start executing (%rip): the interpreter's entry if dynamic, else the program's. */
  entry: bigint;
  /** The program's own entry point, relocated (AT_ENTRY). */
  programEntry: bigint;
  /** Initial %rsp: 16-byte aligned, pointing to argc. */
  sp: bigint;
  /** Exclusive end of the stack mapping. */
  stackTop: bigint;
  /** Size of the stack mapping; it spans [stackTop - stackSize, stackTop). */
  stackSize: bigint;
  /** Added to the main program's p_vaddr (0 for ET_EXEC). */
  loadBias: bigint;
  /** The interpreter's load bias (AT_BASE); 0 without an interpreter. */
  interpBase: bigint;
  /** The PT_INTERP path, if any. */
  interp?: string;
  /** Address of the main program's program headers in memory (AT_PHDR). */
  phdr: bigint;
  /** AT_PHENT and AT_PHNUM. */
  phent: number;
  phnum: number;
  /** Suggested initial program break: the page-aligned end of the main program's highest segment. */
  brkStart: bigint;
  /**
   * The lowest address the loader placed near the top of the address space (interpreter base,
   * or the mmap base without one): a top-down mmap allocator should continue below it.
   */
  mmapBase: bigint;
  /** Whether the stack was mapped executable (PT_GNU_STACK with PF_X, or none). */
  execStack: boolean;
  /** The auxv written on the stack (AT_NULL excluded). */
  auxv: AuxEntry[];
  /** The mappings made, in address order. */
  mappings: LoadedMapping[];
  /** Parsed headers of the program. */
  elf: ElfInfo;
  /** Parsed headers of the interpreter, if any. */
  interpElf?: ElfInfo;
}

function protOf(p: ProgramHeader): bigint {
  return (p.flags & PF.R ? PROT_READ : 0n) | (p.flags & PF.W ? PROT_WRITE : 0n) | (p.flags & PF.X ? PROT_EXEC : 0n);
}

/** The absolute range an image occupies once biased. */
function imageRange(info: ElfInfo, bias: bigint): { start: bigint; end: bigint } {
  return { start: info.span.start + bias, end: info.span.end + bias };
}

/**
 * Maps an opened image at `bias`: one PROT_NONE reservation of the whole span (so that the
 * segments land relative to one base and nothing else is there: MAP_FIXED_NOREPLACE), then each
 * PT_LOAD file-backed with its protections, its bss zeroed and mapped anonymous, and finally the
 * holes between segments unmapped again, as Linux leaves them.
 */
async function mapImage(
  io: StubIO,
  img: OpenImage,
  bias: bigint,
  out: LoadedMapping[],
  placed: Array<{ start: bigint; end: bigint }>,
): Promise<void> {
  const { info, path, fd } = img;
  const span = imageRange(info, bias);
  await io.mmap(span.start, span.end - span.start, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1n, 0n, path);
  // Only now is the range ours to unmap on failure (NOREPLACE refused anything already there).
  placed.push(span);
  for (const p of info.loads) {
    const prot = protOf(p);
    const start = p.vaddr + bias;
    const pageStart = roundDown(start, PAGE);
    const fileEnd = start + p.filesz;
    const memEnd = roundUp(start + p.memsz, PAGE);
    let anonStart = pageStart;
    if (p.filesz > 0n) {
      const fileMapEnd = roundUp(fileEnd, PAGE);
      const off = p.offset - (start - pageStart);
      await io.mmap(pageStart, fileMapEnd - pageStart, prot, MAP_PRIVATE | MAP_FIXED, fd, off, path);
      out.push({ start: pageStart, end: fileMapEnd, prot, name: path });
      anonStart = fileMapEnd;
      // The file page holding the end of .data also holds whatever follows it in the file;
      // the bss that starts there must read as zeros (Linux's padzero).
      if (p.memsz > p.filesz && fileEnd < fileMapEnd) {
        const needWrite = (prot & PROT_WRITE) === 0n;
        const tailPage = fileMapEnd - PAGE;
        // process_vm_writev honours page protections: open the page for writing briefly.
        if (needWrite) await io.call('mprotect', SYS.mprotect, tailPage, PAGE, prot | PROT_WRITE);
        io.write(fileEnd, new Uint8Array(Number(fileMapEnd - fileEnd)));
        if (needWrite) await io.call('mprotect', SYS.mprotect, tailPage, PAGE, prot);
      }
    }
    if (memEnd > anonStart) {
      await io.mmap(anonStart, memEnd - anonStart, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1n, 0n, path);
      out.push({ start: anonStart, end: memEnd, prot, name: '[bss]' });
    }
  }
  // Holes between segments (alignment padding) stay unmapped, as after Linux's execve.
  for (let i = 1; i < info.loads.length; i++) {
    const prev = info.loads[i - 1];
    const holeStart = roundUp(prev.vaddr + prev.memsz, PAGE) + bias;
    const holeEnd = roundDown(info.loads[i].vaddr, PAGE) + bias;
    if (holeEnd > holeStart) await io.call('munmap', SYS.munmap, holeStart, holeEnd - holeStart);
  }
}

function checkOptions(opts: LoadOptions): void {
  if (!opts || typeof opts.path !== 'string' || opts.path.length === 0) throw Errors.InvalidArg('path must be a non-empty string');
  if (!Array.isArray(opts.argv) || !opts.argv.every((s) => typeof s === 'string'))
    throw Errors.InvalidArg('argv must be an array of strings');
  if (!Array.isArray(opts.envp) || !opts.envp.every((s) => typeof s === 'string'))
    throw Errors.InvalidArg('envp must be an array of strings');
  if (opts.execfn !== undefined && typeof opts.execfn !== 'string') throw Errors.InvalidArg('execfn must be a string');
  for (const k of ['stackSize', 'stackTop', 'mainBase', 'interpBase'] as const) {
    const v = opts[k];
    if (v !== undefined && (typeof v !== 'bigint' || v % PAGE !== 0n || v <= 0n))
      throw Errors.InvalidArg(`${k} must be a positive page-aligned bigint`);
  }
  if (opts.stackSize !== undefined && opts.stackSize < 128n * 1024n) throw Errors.InvalidArg('stackSize must be at least 128 KiB');
  if (opts.random !== undefined && (!(opts.random instanceof Uint8Array) || opts.random.length !== 16))
    throw Errors.InvalidArg('random must be 16 bytes');
}

/**
 * Loads an ELF program into an address space, as execve does: maps the executable and its
 * interpreter (ld.so) from their files, maps a stack and writes argv, envp and the auxv on it.
 * The program does not run: start a thread at `entry` with %rsp = `sp` (other registers zero;
 * %rdx = 0 means "no atexit function from the loader").
 *
 * Preconditions: `as` is live and holds no mapping where the image, the stack or the scratch
 * page go (a fresh address space is empty); nothing else uses `as` concurrently. On failure
 * everything this call mapped is unmapped again.
 *
 * @throws LoaderError `ENOENT`, `EACCES`, `ENOEXEC`, `EARCH`, `EINTERP`, `E2BIG`, `ENOMEM`
 * (see loaderErrors.ts); SystrapError `EINVALIDARG` for bad options, or the stub's errors
 * (`ESTUBDEAD`, …).
 *
 * @example
 * ```ts
 * const platform = await createPlatform();
 * const as = await platform.newAddressSpace();
 * const p = await loadProgram(as, { path: '/bin/ls', argv: ['ls', '-l'], envp: ['PATH=/bin'] });
 * // start a context with rip = p.entry, rsp = p.sp; the sentry's brk starts at p.brkStart
 * ```
 */
export async function loadProgram(as: AddressSpace, opts: LoadOptions): Promise<LoadedProgram> {
  checkOptions(opts);
  const path = resolvePath(opts.path);
  const argv = opts.argv.length > 0 ? [...opts.argv] : [''];
  const limit = as.userLimit;
  const stackSize = opts.stackSize ?? DEFAULT_STACK_SIZE;
  const stackTop = opts.stackTop ?? roundDown(limit - STACK_TOP_GAP, PAGE);
  const stackBottom = stackTop - stackSize;
  const byGap = limit - MMAP_GAP;
  const byStack = stackBottom - STACK_TOP_GAP;
  const mmapTop = roundDown(byGap < byStack ? byGap : byStack, PAGE);
  // The scratch page sits in the guard gap above mmapTop: nothing else is ever placed there.
  const scratch = mmapTop;
  if (stackBottom < MIN_ADDRESS || stackTop > limit || mmapTop < MIN_ADDRESS)
    throw Errors.InvalidArg(`the stack [0x${stackBottom.toString(16)}, 0x${stackTop.toString(16)}) does not fit below 0x${limit.toString(16)}`);

  const io = new StubIO(as, scratch);
  await io.mapScratch();
  const mappings: LoadedMapping[] = [];
  const placed: Array<{ start: bigint; end: bigint }> = [];
  const fds: bigint[] = [];
  try {
    const main = await openImage(io, path);
    fds.push(main.fd);
    let interp: OpenImage | undefined;
    if (main.info.interp !== undefined) {
      interp = await openInterp(io, main.info.interp, path);
      fds.push(interp.fd);
      checkInterpStandsAlone(interp, path);
    }

    // Biases: ET_EXEC where linked; ET_DYN at a multiple of its largest alignment, so that every
    // segment keeps its p_vaddr mod p_align.
    const mi = main.info;
    const loadBias =
      mi.header.type === ET.DYN ? roundDown((opts.mainBase ?? ELF_ET_DYN_BASE) - mi.span.start, mi.span.align) : 0n;
    let interpBias = 0n;
    if (interp) {
      const ii = interp.info;
      if (ii.header.type !== ET.DYN && opts.interpBase !== undefined)
        throw Errors.InvalidArg(`interpBase cannot move ${interp.path}: it is not position independent`);
      if (ii.header.type === ET.DYN)
        interpBias =
          opts.interpBase !== undefined
            ? roundDown(opts.interpBase - ii.span.start, ii.span.align)
            : roundDown(mmapTop - ii.span.end, ii.span.align);
    }

    // Everything must lie in [MIN_ADDRESS, limit) without overlapping anything else we place.
    const want: Array<{ start: bigint; end: bigint; name: string }> = [
      { ...imageRange(mi, loadBias), name: path },
      { start: stackBottom, end: stackTop, name: '[stack]' },
      { start: scratch, end: scratch + SCRATCH_SIZE, name: '[scratch]' },
    ];
    if (interp) want.push({ ...imageRange(interp.info, interpBias), name: interp.path });
    for (const [i, r] of want.entries()) {
      if (r.start < MIN_ADDRESS || r.end > limit)
        throw LoaderErrors.NoRoom(r.name, `[0x${r.start.toString(16)}, 0x${r.end.toString(16)}) is outside [0x${MIN_ADDRESS.toString(16)}, 0x${limit.toString(16)})`);
      for (const o of want.slice(0, i))
        if (r.start < o.end && o.start < r.end) throw LoaderErrors.NoRoom(r.name, `it would overlap ${o.name}`);
    }

    const mainRange = imageRange(mi, loadBias);
    await mapImage(io, main, loadBias, mappings, placed);
    if (interp) await mapImage(io, interp, interpBias, mappings, placed);

    const stackProt = PROT_READ | PROT_WRITE | (mi.execStack ? PROT_EXEC : 0n);
    await io.mmap(stackBottom, stackSize, stackProt, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1n, 0n, '[stack]');
    placed.push({ start: stackBottom, end: stackTop });
    mappings.push({ start: stackBottom, end: stackTop, prot: stackProt, name: '[stack]' });

    // AT_PHDR: Linux computes it from the PT_LOAD holding the table; old kernels used
    // load address + e_phoff, which is the fallback for files where no PT_LOAD holds it.
    const phdr = (mi.phdrVaddr ?? mi.span.start + mi.header.phoff) + loadBias;
    const programEntry = mi.header.entry + loadBias;
    const host = hostAuxv();
    const auxv: AuxEntry[] = [
      ...(host.minsigstksz !== undefined ? [[AT.MINSIGSTKSZ, host.minsigstksz] as const] : []),
      [AT.HWCAP, host.hwcap],
      [AT.PAGESZ, PAGE],
      [AT.CLKTCK, USER_HZ],
      [AT.PHDR, phdr],
      [AT.PHENT, BigInt(PHDR_SIZE)],
      [AT.PHNUM, BigInt(mi.header.phnum)],
      [AT.BASE, interpBias],
      [AT.FLAGS, 0n],
      [AT.ENTRY, programEntry],
      [AT.UID, BigInt(process.getuid?.() ?? 0)],
      [AT.EUID, BigInt(process.geteuid?.() ?? 0)],
      [AT.GID, BigInt(process.getgid?.() ?? 0)],
      [AT.EGID, BigInt(process.getegid?.() ?? 0)],
      [AT.SECURE, 0n],
      [AT.RANDOM, 0n],
      [AT.HWCAP2, host.hwcap2],
      [AT.EXECFN, 0n],
      [AT.PLATFORM, 0n],
    ];
    // Linux caps argument + environment space at a quarter of the stack limit.
    const image = buildStackImage({
      stackTop,
      argv,
      envp: opts.envp,
      execfn: opts.execfn ?? opts.path,
      auxv,
      random: opts.random ?? randomBytes(16),
      maxSize: Number(stackSize / 4n),
    });
    io.write(image.sp, image.bytes);

    const entry = interp ? interp.info.header.entry + interpBias : programEntry;
    const interpRange = interp ? imageRange(interp.info, interpBias) : undefined;
    // A top-down allocator continues below the interpreter when it sits at the top, as by default.
    const mmapBase = interpRange && interpRange.end <= mmapTop ? interpRange.start : mmapTop;
    mappings.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    return {
      entry,
      programEntry,
      sp: image.sp,
      stackTop,
      stackSize,
      loadBias,
      interpBase: interpBias,
      ...(interp ? { interp: mi.interp, interpElf: interp.info } : {}),
      phdr,
      phent: PHDR_SIZE,
      phnum: mi.header.phnum,
      brkStart: roundUp(mainRange.end, PAGE),
      mmapBase,
      execStack: mi.execStack,
      auxv: image.auxv,
      mappings,
      elf: mi,
    };
  } catch (e) {
    // Undo: the address space must look as it did before the call.
    for (const r of placed) await io.unmap(r);
    throw e;
  } finally {
    for (const fd of fds) await io.close(fd);
    await io.unmapScratch();
  }
}
