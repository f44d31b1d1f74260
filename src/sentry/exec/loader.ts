import type { AddressSpace } from '../../addressSpace.js';
import type { StubSyscalls } from './stubIO.js';
import { Errors } from '../../errors.js';
import { native } from '../../native.js';
import { MAP_ANONYMOUS, MAP_FIXED_NOREPLACE, MAP_PRIVATE, PROT_EXEC, PROT_READ, PROT_WRITE } from '../../abi/linux.js';
import { PAGE, roundUp } from './addresses.js';
import { programAuxv, type AuxEntry } from './auxv.js';
import type { ElfInfo } from './elf.js';
import { PHDR_SIZE } from './elfFormat.js';
import { MIN_STACK_SIZE, chooseBiases, checkPlacement, imageRange, mmapBaseAfter, planLayout, type Layout, type Placement } from './layout.js';
import { mapImage, mapStack, unmapPlaced, type LoadedMapping, type MapLog } from './mapping.js';
import { checkInterpStandsAlone, openInterp, openProgram, type OpenImage } from './open.js';
import { RANDOM_SIZE, buildStackImage } from './stack.js';
import { describeImage } from './mmMap.js';
import { StubIO } from './stubIO.js';
import { SYS } from '../../abi/syscalls.js';
import { UserTrap } from '../../shm/usertrap.js';

/**
 * The ELF loader: what Linux's execve (fs/exec.c), binfmt_script and binfmt_elf do, performed
 * inside a stub, in the same steps (loadProgram below): open and check the program (following
 * '#!' lines to the interpreter that runs a script, script.ts) and its interpreter (open.ts),
 * choose where they go (layout.ts), map the program, then its interpreter (mapping.ts), map the
 * stack and write argv, envp and the auxv on it (stack.ts, auxv.ts), and return what the caller
 * needs to start the program.
 *
 * The stub itself opens, reads, checks and maps the files (through its syscall thread), so the
 * program gets real file-backed private mappings (shown by name in /proc/PID/maps, shared page
 * cache), and what was parsed is exactly what was mapped: there is no window in which the file
 * could be swapped between a check in Node and a map in the stub.
 */

/**
 * Linux caps the argument and environment space at a quarter of the stack limit
 * (fs/exec.c); the whole stack image is held to it here.
 */
const ARG_SPACE_FRACTION = 4n;

/**
 * What to load and how.
 *
 * @example
 * ```ts
 * const opts: LoadOptions = { path: '/bin/ls', argv: ['ls', '-l'], envp: ['LANG=C'], stackSize: 1n << 20n };
 * ```
 */
export interface LoadOptions {
  /**
   * The executable: an ELF program or a '#!' script. Relative paths (a script's interpreter's
   * too) are opened from the stub's cwd, as execve opens them from the caller's; a fresh address
   * space has Node's.
   */
  path: string;
  /** argv; an empty argv becomes `['']`, as Linux >= 5.18 does (a script's interpreter drops it). */
  argv: readonly string[];
  envp: readonly string[];
  /**
   * The name execve was given: the AT_EXECFN string, and a script's name in its interpreter's
   * argv (Linux's bprm->filename). Default: `path` as given.
   */
  execfn?: string;
  /** Stack size in bytes, a multiple of the page size >= 128 KiB. Default 8 MiB. */
  stackSize?: bigint;
  /** Exclusive top of the stack, page aligned. Default `limit - 1 MiB`. */
  stackTop?: bigint;
  /** Lowest address of an ET_DYN main program (rounded down to its alignment). Default 0x555555554000. */
  mainBase?: bigint;
  /** Lowest address of the interpreter (rounded down to its alignment). Default: so that it ends just below the mmap top (layout.ts). */
  interpBase?: bigint;
  /** The 16 AT_RANDOM bytes. Default: fresh random bytes. */
  random?: Uint8Array;
  /**
   * Map a syscall patching table (src/shm/usertrap.ts) at a random page of its range:
   * LoadedProgram.usertrapTable says where, unless something was mapped there already.
   */
  usertrap?: boolean;
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
  /** The ELF file loaded: `path`, or the last '#!' interpreter's path as written (maybe relative). */
  path: string;
  /** The argv written on the stack: as given, or as the '#!' interpreters rewrote it. */
  argv: string[];
  /** The '#!' scripts execve passed through to reach `path`, outermost first (as named in argv). */
  scripts: string[];
  /** Parsed headers of the program. */
  elf: ElfInfo;
  /** Parsed headers of the interpreter, if any. */
  interpElf?: ElfInfo;
  /** Where the syscall patching table is mapped (with LoadOptions.usertrap), if it could be. */
  usertrapTable?: bigint;
}

/** The program and its interpreter, opened and checked, with the argv '#!' lines made. */
interface Files {
  main: OpenImage;
  interp?: OpenImage;
  argv: string[];
  scripts: string[];
}

/** The files with their load biases (what is added to p_vaddr), placement checked. */
interface Images extends Files {
  mainBias: bigint;
  interpBias: bigint;
}

/** Where the stack image landed. */
interface StackResult {
  sp: bigint;
  auxv: AuxEntry[];
  /** Where argv's and envp's strings lie (each contiguous, NULs included). */
  args: { start: bigint; end: bigint };
  env: { start: bigint; end: bigint };
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
  if (opts.stackSize !== undefined && opts.stackSize < MIN_STACK_SIZE) throw Errors.InvalidArg('stackSize must be at least 128 KiB');
  if (opts.random !== undefined && (!(opts.random instanceof Uint8Array) || opts.random.length !== RANDOM_SIZE))
    throw Errors.InvalidArg('random must be 16 bytes');
}

/**
 * Loads an ELF program into an address space, as execve does: maps the executable and its
 * interpreter (ld.so) from their files, maps a stack and writes argv, envp and the auxv on it.
 * The program does not run: start a thread at `entry` with %rsp = `sp` (other registers zero;
 * %rdx = 0 means "no atexit function from the loader").
 *
 * Preconditions: `as` is live and holds no mapping where the image, the stack or the scratch
 * area go (a fresh address space is empty); nothing else uses `as` concurrently. On failure
 * everything this call mapped is unmapped again.
 *
 * @throws LoaderError `ENOENT`, `EACCES`, `ENOEXEC`, `EARCH`, `EINTERP`, `E2BIG`, `ENOMEM`
 * (see loaderErrors.ts); SystrapError `EINVALIDARG` for bad options, `EPROTOCOL` for an
 * impossible answer from the stub, or the stub's errors (`ESTUBDEAD`, …).
 *
 * @example
 * ```ts
 * const platform = await createPlatform();
 * const as = await platform.newAddressSpace();
 * const p = await loadProgram(as, { path: '/bin/ls', argv: ['ls', '-l'], envp: ['PATH=/bin'] });
 * // start a context with rip = p.entry, rsp = p.sp; the sentry's brk starts at p.brkStart
 * ```
 */
export async function loadProgram(as: AddressSpace | StubSyscalls, opts: LoadOptions): Promise<LoadedProgram> {
  checkOptions(opts);
  const layout = planLayout(as.userLimit, opts);
  const io = new StubIO(as, layout.scratch.start);
  await io.mapScratch();
  const log: MapLog = { mappings: [], placed: [] };
  const fds: bigint[] = [];
  try {
    const files = await openFiles(io, opts, fds);
    const images = placeImages(files, opts, layout);
    // Every mapping, then the stack's contents, in one round trip (a read-only bss page aside).
    await mapImage(io, images.main, images.mainBias, log);
    if (images.interp) await mapImage(io, images.interp, images.interpBias, log);
    const stack = setUpStack(io, opts, images, layout, log);
    // The patching table, read and execute only: only the sentry writes it (through
    // /proc/PID/mem). Best effort: where the program's image took the place, no patching.
    let usertrapTable: bigint | undefined;
    if (opts.usertrap) {
      const pages = (UserTrap.RANGE.end - UserTrap.RANGE.start - BigInt(UserTrap.TABLE_SIZE)) / PAGE + 1n;
      const at = UserTrap.RANGE.start + (BigInt(native.getRandom(1)[0]) % pages) * PAGE;
      const args = [at, BigInt(UserTrap.TABLE_SIZE), PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1n, 0n];
      io.later(SYS.mmap, args, undefined, (r) => (usertrapTable = r === at ? at : undefined));
    }
    await io.flush();
    const code = imageRange(images.main.info, images.mainBias);
    // Best effort (see describeImage), queued with the closes below.
    describeImage(io, { code, brk: roundUp(code.end, PAGE), stack: stack.sp, args: stack.args, env: stack.env, auxv: stack.auxv });
    return { ...result(images, layout, stack, log), ...(usertrapTable !== undefined ? { usertrapTable } : {}) };
  } catch (e) {
    // Undo: the address space must look as it did before the call (what is queued never runs).
    io.discard();
    await unmapPlaced(io, log);
    throw e;
  } finally {
    // Queued, with no result needed: one round trip, whose failure (the stub gone) says less
    // than the error that may be on its way.
    for (const fd of fds) io.later(SYS.close, [fd], undefined, () => undefined);
    io.unmapScratchLater();
    await io.flush().catch(() => undefined);
  }
}

/**
 * Opens and checks the program (the ELF file its '#!' lines lead to, for a script) and its
 * interpreter. Their fds go to `fds` as soon as they are open, for the caller to close whatever
 * happens next.
 */
async function openFiles(io: StubIO, opts: LoadOptions, fds: bigint[]): Promise<Files> {
  const { main, argv, scripts } = await openProgram(io, opts.path, opts.execfn ?? opts.path, opts.argv);
  fds.push(main.fd);
  if (main.info.interp === undefined) return { main, argv, scripts };
  const interp = await openInterp(io, main.info.interp, main.path);
  fds.push(interp.fd);
  checkInterpStandsAlone(interp, main.path);
  return { main, interp, argv, scripts };
}

/** Chooses the load biases and checks that everything fits, before anything is mapped. */
function placeImages(files: Files, opts: LoadOptions, layout: Layout): Images {
  const { main, interp } = files;
  const biases = chooseBiases(main.info, interp, opts, layout.mmapTop);
  const wanted: Placement[] = [
    { ...imageRange(main.info, biases.main), name: main.path },
    { start: layout.stackBottom, end: layout.stackTop, name: '[stack]' },
    { ...layout.scratch, name: '[scratch]' },
  ];
  if (interp) wanted.push({ ...imageRange(interp.info, biases.interp), name: interp.path });
  checkPlacement(layout.limit, wanted);
  return { ...files, mainBias: biases.main, interpBias: biases.interp };
}

/** AT_PHDR: where the main program's headers are in memory once loaded. */
function phdrAddress(info: ElfInfo, bias: bigint): bigint {
  // phdrVaddr is PT_PHDR's address or the PT_LOAD holding the table (Linux uses the latter);
  // without either, old kernels' load address + e_phoff.
  return (info.phdrVaddr ?? info.span.start + info.header.phoff) + bias;
}

/** Maps the stack and writes argv, envp, their strings and the auxv on it (at the next flush). */
function setUpStack(io: StubIO, opts: LoadOptions, images: Images, layout: Layout, log: MapLog): StackResult {
  const mi = images.main.info;
  const prot = PROT_READ | PROT_WRITE | (mi.execStack ? PROT_EXEC : 0n);
  mapStack(io, { start: layout.stackBottom, end: layout.stackTop }, prot, log);
  const auxv = programAuxv({
    phdr: phdrAddress(mi, images.mainBias),
    phnum: mi.header.phnum,
    interpBase: images.interpBias,
    entry: mi.header.entry + images.mainBias,
  });
  const image = buildStackImage({
    stackTop: layout.stackTop,
    argv: images.argv.length > 0 ? images.argv : [''],
    envp: opts.envp,
    execfn: opts.execfn ?? opts.path,
    auxv,
    random: opts.random ?? native.getRandom(RANDOM_SIZE),
    maxSize: Number(layout.stackSize / ARG_SPACE_FRACTION),
  });
  io.afterFlush(() => io.write(image.sp, image.bytes));
  // Strings lie upward from the first one's address (the kernel's order): where each list ends.
  const span = (addrs: bigint[], strings: readonly string[]) => {
    const start = addrs[0] ?? image.execfnAddr;
    return { start, end: start + BigInt(strings.reduce((n, s) => n + Buffer.byteLength(s) + 1, 0)) };
  };
  return { sp: image.sp, auxv: image.auxv, args: span(image.argvAddrs, images.argv.length > 0 ? images.argv : ['']), env: span(image.envpAddrs, opts.envp) };
}

/** What the caller needs to start the program. */
function result(images: Images, layout: Layout, stack: StackResult, log: MapLog): LoadedProgram {
  const { main, interp, mainBias, interpBias } = images;
  const mi = main.info;
  const programEntry = mi.header.entry + mainBias;
  const interpRange = interp ? imageRange(interp.info, interpBias) : undefined;
  const mappings = [...log.mappings].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  return {
    entry: interp ? interp.info.header.entry + interpBias : programEntry,
    programEntry,
    sp: stack.sp,
    stackTop: layout.stackTop,
    stackSize: layout.stackSize,
    loadBias: mainBias,
    interpBase: interpBias,
    ...(interp ? { interp: mi.interp, interpElf: interp.info } : {}),
    phdr: phdrAddress(mi, mainBias),
    phent: PHDR_SIZE,
    phnum: mi.header.phnum,
    brkStart: roundUp(imageRange(mi, mainBias).end, PAGE),
    mmapBase: mmapBaseAfter(layout.mmapTop, interpRange),
    execStack: mi.execStack,
    auxv: stack.auxv,
    mappings,
    path: main.path,
    argv: images.argv.length > 0 ? images.argv : [''],
    scripts: images.scripts,
    elf: mi,
  };
}
