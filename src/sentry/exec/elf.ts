import { PAGE_SIZE, PATH_MAX } from '../../abi/linux.js';
import { PAGE, roundUp } from './addresses.js';
import {
  EHDR,
  EHDR_SIZE,
  EI,
  ELFCLASS,
  ELFDATA,
  ELF_MAGIC,
  EM,
  ET,
  EV_CURRENT,
  PF,
  PHDR,
  PHDR_SIZE,
  PT,
  machineName,
  type ElfHeader,
  type ProgramHeader,
} from './elfFormat.js';
import { LoaderErrors } from './loaderErrors.js';
import { closeFile, openFile, readFully } from './readFully.js';

/**
 * ELF64 parsing for the loader: the file header and the program headers, which is all execve
 * needs (sections are never looked at). Every field is validated the way Linux's binfmt_elf
 * validates it, so that a file the kernel would refuse is refused here with a typed error
 * instead of being mapped half-way. The format itself (constants, field offsets) is in
 * elfFormat.ts.
 */

/**
 * Most bytes of program headers the kernel reads (binfmt_elf refuses more than 64 KiB); this
 * also bounds what a hostile file can make us allocate.
 */
const MAX_PHDRS_SIZE = 65536;

/** x86-64 user addresses are 47 bits: nothing at or above this can be mapped. */
const ADDRESS_LIMIT = 1n << 47n;

/**
 * Largest span of a position-independent image: a quarter of the address space, so that it
 * fits between the PIE base and the interpreter and stack above it (loader policy; Linux has no
 * such limit and fails in mmap instead).
 */
const MAX_DYN_SPAN = ADDRESS_LIMIT / 4n;

/** How much {@link decodeElf} reads first: one page holds the headers of nearly every binary. */
const FIRST_READ = PAGE_SIZE;

/** The shebang that starts a script: "#!". */
const SHEBANG = [0x23, 0x21];

/**
 * Where the image lies in its own (unrelocated) addresses.
 *
 * @example
 * ```ts
 * const bytesToReserve = info.span.end - info.span.start;
 * ```
 */
export interface ElfSpan {
  /** Page-aligned start of the lowest PT_LOAD. */
  start: bigint;
  /** Page-aligned end of the highest PT_LOAD (vaddr + memsz, rounded up). */
  end: bigint;
  /** Largest PT_LOAD alignment (at least a page): ET_DYN load biases are multiples of it. */
  align: bigint;
}

/**
 * Everything the loader needs to know about one ELF executable.
 *
 * @example
 * ```ts
 * const info: ElfInfo = await readElf('/bin/ls');
 * if (info.kind === 'dynamic') console.log('needs', info.interp);
 * ```
 */
export interface ElfInfo {
  header: ElfHeader;
  /** All program headers, in file order. */
  programHeaders: ProgramHeader[];
  /** PT_LOAD headers, in file (= ascending vaddr) order; at least one. */
  loads: ProgramHeader[];
  /** PT_INTERP path (the dynamic loader), if any. */
  interp?: string;
  /**
   * Whether the stack must be executable: PT_GNU_STACK with PF_X, or no PT_GNU_STACK at all
   * (what x86-64 kernels before 5.8 did for such old binaries).
   */
  execStack: boolean;
  /**
   * Unrelocated address of the program headers in memory (AT_PHDR minus the bias): PT_PHDR's
   * vaddr, else the PT_LOAD whose file range holds them, else undefined (the loader then
   * falls back to the image start + e_phoff, as old kernels did).
   */
  phdrVaddr?: bigint;
  span: ElfSpan;
  /**
   * 'static' (ET.EXEC, no interpreter), 'static-pie' (ET.DYN, no interpreter: also what ld.so
   * itself is), 'dynamic' (has PT_INTERP; ET_DYN = PIE or ET_EXEC = non-PIE).
   */
  kind: 'static' | 'static-pie' | 'dynamic';
}

/**
 * Reads `length` bytes at `offset` of a file; returns fewer only at end of file. The loader
 * passes one that reads through a file descriptor of the stub, {@link readElf} one over Node's fs.
 *
 * @example
 * ```ts
 * const fromBuffer: ElfReader = async (off, len) => file.subarray(Number(off), Number(off) + len);
 * ```
 */
export type ElfReader = (offset: bigint, length: number) => Promise<Uint8Array>;

function dataView(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

/**
 * Validates and decodes the ELF64 file header.
 *
 * Preconditions: `buf` holds the start of the file (at least the first 64 bytes for an ELF file;
 * shorter buffers are reported as "not ELF", as the kernel does for short files). `path` is only
 * used in error messages.
 *
 * @throws LoaderError `ENOEXEC` (not ELF, not an executable type, corrupt fields) or `EARCH`
 * (32-bit, big endian or a machine other than x86-64).
 *
 * @example
 * ```ts
 * const h = parseElfHeader(readFileSync('/bin/ls').subarray(0, 64), '/bin/ls');
 * h.type === ET.DYN; // true: ls is a PIE
 * ```
 */
export function parseElfHeader(buf: Uint8Array, path = '<buffer>'): ElfHeader {
  checkIdent(buf, path);
  if (buf.length < EHDR_SIZE) throw LoaderErrors.BadElf(path, 'file ends inside the ELF header');
  const dv = dataView(buf);
  if (buf[EI.VERSION] !== EV_CURRENT || dv.getUint32(EHDR.e_version, true) !== EV_CURRENT)
    throw LoaderErrors.BadElf(path, 'unknown ELF version');
  const type = dv.getUint16(EHDR.e_type, true);
  const machine = dv.getUint16(EHDR.e_machine, true);
  // Machine before type: an ARM shared library is "wrong architecture" first of all.
  if (machine !== EM.X86_64) throw LoaderErrors.WrongArch(path, machineName(machine));
  if (type !== ET.EXEC && type !== ET.DYN) {
    const what = type === ET.REL ? 'a relocatable object (ET_REL)' : type === ET.CORE ? 'a core dump (ET_CORE)' : `ELF type ${type}`;
    throw LoaderErrors.NotElf(path, `is ${what}, not an executable`);
  }
  const entry = dv.getBigUint64(EHDR.e_entry, true);
  const phoff = dv.getBigUint64(EHDR.e_phoff, true);
  const ehsize = dv.getUint16(EHDR.e_ehsize, true);
  const phentsize = dv.getUint16(EHDR.e_phentsize, true);
  const phnum = dv.getUint16(EHDR.e_phnum, true);
  if (ehsize < EHDR_SIZE) throw LoaderErrors.BadElf(path, `e_ehsize ${ehsize} is smaller than an ELF64 header`);
  if (phentsize !== PHDR_SIZE) throw LoaderErrors.BadElf(path, `e_phentsize is ${phentsize}, not ${PHDR_SIZE}`);
  if (phnum === 0) throw LoaderErrors.BadElf(path, 'no program headers');
  if (phnum * PHDR_SIZE > MAX_PHDRS_SIZE) throw LoaderErrors.BadElf(path, `${phnum} program headers are too many`);
  if (phoff === 0n || phoff > ADDRESS_LIMIT) throw LoaderErrors.BadElf(path, `e_phoff ${phoff} is not a file offset`);
  return { type: type as ElfHeader['type'], machine, entry, phoff, phentsize, phnum };
}

/** Checks e_ident: the magic, then 64-bit little endian (x86-64's), before any other field. */
function checkIdent(buf: Uint8Array, path: string): void {
  if (buf.length < ELF_MAGIC.length || ELF_MAGIC.some((b, i) => buf[i] !== b)) {
    // Scripts are execve's other big family; say so, since the fix is different.
    if (buf.length >= SHEBANG.length && SHEBANG.every((b, i) => buf[i] === b))
      throw LoaderErrors.NotElf(path, "is a '#!' script, not an ELF file (load its interpreter instead)");
    throw LoaderErrors.NotElf(path);
  }
  if (buf.length <= EI.DATA) throw LoaderErrors.BadElf(path, 'file ends inside the ELF identification');
  const cls = buf[EI.CLASS];
  if (cls === ELFCLASS.CLASS32) throw LoaderErrors.WrongArch(path, `a 32-bit (ELFCLASS32) ${machineName32(buf)}`);
  if (cls !== ELFCLASS.CLASS64) throw LoaderErrors.BadElf(path, `unknown ELF class ${cls}`);
  const data = buf[EI.DATA];
  if (data === ELFDATA.MSB) throw LoaderErrors.WrongArch(path, 'a big-endian ELF file');
  if (data !== ELFDATA.LSB) throw LoaderErrors.BadElf(path, `unknown data encoding ${data}`);
}

/** The machine of a 32-bit file: its header has e_machine (a u16) at the same offset, named if present. */
function machineName32(buf: Uint8Array): string {
  if (buf.length < EHDR.e_machine + Uint16Array.BYTES_PER_ELEMENT) return 'ELF file';
  const m = dataView(buf).getUint16(EHDR.e_machine, true);
  return m === EM.I386 ? 'i386 ELF file' : m === EM.ARM ? 'ARM ELF file' : `ELF file for machine ${m}`;
}

/**
 * Byte range of the program header table in the file.
 *
 * Preconditions: `header` comes from {@link parseElfHeader} (so the size is bounded).
 *
 * @example
 * ```ts
 * const { offset, length } = programHeaderRange(header); // 64n, 13 * 56 for /bin/ls
 * ```
 */
function programHeaderRange(header: ElfHeader): { offset: bigint; length: number } {
  return { offset: header.phoff, length: header.phnum * header.phentsize };
}

/**
 * Decodes the program header table.
 *
 * Preconditions: `table` is exactly the table's bytes (`programHeaderRange(header)`), read from
 * the same file as `header`.
 *
 * @example
 * ```ts
 * const { offset, length } = programHeaderRange(h);
 * const phdrs = parseProgramHeaders(file.subarray(Number(offset), Number(offset) + length), h);
 * ```
 */
function parseProgramHeaders(table: Uint8Array, header: ElfHeader, path = '<buffer>'): ProgramHeader[] {
  const want = header.phnum * header.phentsize;
  if (table.length < want) throw LoaderErrors.BadElf(path, 'file ends inside the program headers');
  const dv = dataView(table);
  const out: ProgramHeader[] = [];
  for (let i = 0; i < header.phnum; i++) {
    const o = i * header.phentsize;
    out.push({
      type: dv.getUint32(o + PHDR.p_type, true),
      flags: dv.getUint32(o + PHDR.p_flags, true),
      offset: dv.getBigUint64(o + PHDR.p_offset, true),
      vaddr: dv.getBigUint64(o + PHDR.p_vaddr, true),
      paddr: dv.getBigUint64(o + PHDR.p_paddr, true),
      filesz: dv.getBigUint64(o + PHDR.p_filesz, true),
      memsz: dv.getBigUint64(o + PHDR.p_memsz, true),
      align: dv.getBigUint64(o + PHDR.p_align, true),
    });
  }
  return out;
}

/**
 * The PT_INTERP header, if the program has one.
 *
 * @throws LoaderError `ENOEXEC` when there are several or its size is impossible.
 *
 * @example
 * ```ts
 * const pi = findInterp(phdrs, '/bin/ls'); // { offset: 0x318n, filesz: 28n, ... }
 * ```
 */
function findInterp(phdrs: ProgramHeader[], path = '<buffer>'): ProgramHeader | undefined {
  const interps = phdrs.filter((p) => p.type === PT.INTERP);
  if (interps.length > 1) throw LoaderErrors.BadElf(path, 'more than one PT_INTERP');
  const pi = interps[0];
  // At least one character and its NUL; at most a path the kernel would open.
  if (pi && (pi.filesz < 2n || pi.filesz > BigInt(PATH_MAX)))
    throw LoaderErrors.BadElf(path, `PT_INTERP size ${pi.filesz} is out of range`);
  return pi;
}

/**
 * Decodes the PT_INTERP string.
 *
 * Preconditions: `bytes` are the `filesz` bytes at the PT_INTERP's file offset.
 *
 * @example
 * ```ts
 * parseInterp(Buffer.from('/lib64/ld-linux-x86-64.so.2\0')); // '/lib64/ld-linux-x86-64.so.2'
 * ```
 */
function parseInterp(bytes: Uint8Array, path = '<buffer>'): string {
  // The kernel requires the NUL at the very end; an embedded one would hide part of the path.
  const nul = bytes.indexOf(0);
  if (nul !== bytes.length - 1) throw LoaderErrors.BadElf(path, 'PT_INTERP is not one NUL-terminated string');
  const s = Buffer.from(bytes.subarray(0, nul)).toString('utf8');
  if (s.length === 0) throw LoaderErrors.BadElf(path, 'PT_INTERP is empty');
  return s;
}

/**
 * Checks the program headers against each other and summarises them.
 *
 * Preconditions: `phdrs` come from {@link parseProgramHeaders} for `header`; `interp` is the
 * decoded PT_INTERP string if there is one.
 *
 * @throws LoaderError `ENOEXEC` for: no PT_LOAD, filesz > memsz, vaddr and offset not congruent
 * modulo the page size, non-ascending or overlapping PT_LOADs, addresses beyond 47 bits, or a
 * non-power-of-two alignment.
 *
 * @example
 * ```ts
 * const info = describeElf(h, phdrs, undefined, '/tmp/static');
 * info.kind; // 'static'
 * ```
 */
function describeElf(header: ElfHeader, phdrs: ProgramHeader[], interp: string | undefined, path = '<buffer>'): ElfInfo {
  const loads = phdrs.filter((p) => p.type === PT.LOAD);
  const span = checkLoads(loads, header, path);
  const gnuStack = phdrs.find((p) => p.type === PT.GNU_STACK);
  const phdrVaddr = phdrAddress(header, phdrs, loads);
  return {
    header,
    programHeaders: phdrs,
    loads,
    ...(interp !== undefined ? { interp } : {}),
    execStack: gnuStack ? (gnuStack.flags & PF.X) !== 0 : true,
    ...(phdrVaddr !== undefined ? { phdrVaddr } : {}),
    span,
    kind: interp !== undefined ? 'dynamic' : header.type === ET.EXEC ? 'static' : 'static-pie',
  };
}

/** Checks the PT_LOAD segments one by one and against each other; returns the span they cover. */
function checkLoads(loads: ProgramHeader[], header: ElfHeader, path: string): ElfSpan {
  if (loads.length === 0) throw LoaderErrors.BadElf(path, 'no PT_LOAD segment');
  let align = PAGE;
  let prevEnd = -1n;
  for (const [i, p] of loads.entries()) {
    const where = `PT_LOAD #${i}`;
    if (p.filesz > p.memsz) throw LoaderErrors.BadElf(path, `${where} has p_filesz > p_memsz`);
    if (p.vaddr + p.memsz > ADDRESS_LIMIT || p.offset + p.filesz > ADDRESS_LIMIT)
      throw LoaderErrors.BadElf(path, `${where} lies beyond the 47-bit address space`);
    // mmap maps whole pages: file offset and address must share their offset inside the page.
    if (p.vaddr % PAGE !== p.offset % PAGE)
      throw LoaderErrors.BadElf(path, `${where} has p_vaddr and p_offset that differ modulo the page size`);
    if (p.align > 1n && (p.align & (p.align - 1n)) !== 0n)
      throw LoaderErrors.BadElf(path, `${where} has p_align ${p.align}, not a power of two`);
    // The ELF spec requires ascending PT_LOADs; overlapping ones would clobber each other.
    if (p.vaddr < prevEnd) throw LoaderErrors.BadElf(path, `${where} overlaps or precedes the previous PT_LOAD`);
    prevEnd = p.vaddr + p.memsz;
    if (p.align > align) align = p.align;
  }
  const first = loads[0];
  const last = loads[loads.length - 1];
  const span: ElfSpan = {
    start: first.vaddr - (first.vaddr % PAGE),
    end: roundUp(last.vaddr + last.memsz, PAGE),
    align,
  };
  if (span.end <= span.start) throw LoaderErrors.BadElf(path, 'the PT_LOAD segments are empty');
  if (header.type === ET.DYN && span.end - span.start > MAX_DYN_SPAN)
    throw LoaderErrors.BadElf(path, 'the image is larger than a quarter of the address space');
  return span;
}

/** Where the program headers are in memory, unrelocated; see {@link ElfInfo.phdrVaddr}. */
function phdrAddress(header: ElfHeader, phdrs: ProgramHeader[], loads: ProgramHeader[]): bigint | undefined {
  const phdrSeg = phdrs.find((p) => p.type === PT.PHDR);
  if (phdrSeg) return phdrSeg.vaddr;
  // No PT_PHDR (typical of static binaries): the table is wherever its file bytes got mapped.
  const tableEnd = header.phoff + BigInt(header.phnum * header.phentsize);
  const holder = loads.find((p) => p.offset <= header.phoff && tableEnd <= p.offset + p.filesz);
  return holder ? holder.vaddr + (header.phoff - holder.offset) : undefined;
}

/**
 * Parses an ELF executable from a buffer holding (at least) its headers and PT_INTERP string,
 * typically the file's first page or the whole file.
 *
 * Preconditions: `buf` starts at file offset 0.
 *
 * @throws LoaderError `ENOEXEC` / `EARCH` (see {@link parseElfHeader}); `ENOEXEC` "file ends
 * inside …" when `buf` is too short to hold the program headers or PT_INTERP — read more of the
 * file, or use {@link readElf}.
 *
 * @example
 * ```ts
 * const info = parseElf(readFileSync('/bin/ls'), '/bin/ls');
 * info.interp; // '/lib64/ld-linux-x86-64.so.2'
 * ```
 */
export function parseElf(buf: Uint8Array, path = '<buffer>'): ElfInfo {
  const header = parseElfHeader(buf, path);
  const { offset, length } = programHeaderRange(header);
  const phdrs = parseProgramHeaders(slice(buf, offset, length, path, 'the program headers'), header, path);
  const pi = findInterp(phdrs, path);
  const interp = pi ? parseInterp(slice(buf, pi.offset, Number(pi.filesz), path, 'PT_INTERP'), path) : undefined;
  return describeElf(header, phdrs, interp, path);
}

function slice(buf: Uint8Array, offset: bigint, length: number, path: string, what: string): Uint8Array {
  if (offset + BigInt(length) > BigInt(buf.length)) throw LoaderErrors.BadElf(path, `file ends inside ${what}`);
  return buf.subarray(Number(offset), Number(offset) + length);
}

/**
 * Parses an ELF executable through a reader, reading only the first page plus whatever of the
 * program headers and PT_INTERP lies beyond it.
 *
 * Preconditions: `read` reads the file at the given offset and returns short only at EOF.
 *
 * @example
 * ```ts
 * const info = await decodeElf((off, len) => readFromStub(fd, off, len), '/bin/ls');
 * ```
 */
export async function decodeElf(read: ElfReader, path = '<file>'): Promise<ElfInfo> {
  const first = await read(0n, FIRST_READ);
  const get = async (offset: bigint, length: number, what: string): Promise<Uint8Array> => {
    if (offset + BigInt(length) <= BigInt(first.length)) return first.subarray(Number(offset), Number(offset) + length);
    const more = await read(offset, length);
    if (more.length < length) throw LoaderErrors.BadElf(path, `file ends inside ${what}`);
    return more;
  };
  const header = parseElfHeader(first, path);
  const { offset, length } = programHeaderRange(header);
  const phdrs = parseProgramHeaders(await get(offset, length, 'the program headers'), header, path);
  const pi = findInterp(phdrs, path);
  const interp = pi ? parseInterp(await get(pi.offset, Number(pi.filesz), 'PT_INTERP'), path) : undefined;
  return describeElf(header, phdrs, interp, path);
}

/**
 * Reads and parses an ELF executable with Node's fs (for tools and tests; the loader reads
 * through the stub instead, so that it maps exactly the file it parsed).
 *
 * Preconditions: `path` is readable by this process.
 *
 * @throws LoaderError as {@link parseElf}; `ENOENT`/`EACCES` when the file cannot be opened.
 *
 * @example
 * ```ts
 * const info = await readElf('/usr/bin/ls');
 * console.log(info.kind, info.loads.length);
 * ```
 */
export async function readElf(path: string): Promise<ElfInfo> {
  let fd: number;
  try {
    fd = await openFile(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw LoaderErrors.NoFile(path);
    if (code === 'EACCES' || code === 'EPERM') throw LoaderErrors.Access(path, 'cannot be opened for reading');
    throw e;
  }
  try {
    return await decodeElf((offset, length) => readFully(fd, offset, length), path);
  } finally {
    await closeFile(fd);
  }
}
