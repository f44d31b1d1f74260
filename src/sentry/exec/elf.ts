import { open } from 'node:fs/promises';
import { LoaderErrors } from './loaderErrors.js';

/**
 * ELF64 parsing for the loader: the file header and the program headers, which is all execve
 * needs (sections are never looked at). Every field is validated the way Linux's binfmt_elf
 * validates it, so that a file the kernel would refuse is refused here with a typed error
 * instead of being mapped half-way.
 */

/**
 * e_type values: only EXEC and DYN can be executed.
 *
 * @example
 * ```ts
 * parseElfHeader(buf).type === ET.DYN; // a PIE, a static-pie or ld.so
 * ```
 */
export const ET = { REL: 1, EXEC: 2, DYN: 3, CORE: 4 } as const;

/**
 * e_machine values the loader accepts (X86_64) or names in its "wrong architecture" errors.
 *
 * @example
 * ```ts
 * parseElfHeader(buf).machine === EM.X86_64; // always true once parsed
 * ```
 */
export const EM = { I386: 3, ARM: 40, X86_64: 62, AARCH64: 183, RISCV: 243 } as const;

/**
 * p_type values.
 *
 * @example
 * ```ts
 * info.programHeaders.filter((p) => p.type === PT.TLS);
 * ```
 */
export const PT = {
  NULL: 0,
  LOAD: 1,
  DYNAMIC: 2,
  INTERP: 3,
  NOTE: 4,
  PHDR: 6,
  TLS: 7,
  GNU_EH_FRAME: 0x6474e550,
  GNU_STACK: 0x6474e551,
  GNU_RELRO: 0x6474e552,
  GNU_PROPERTY: 0x6474e553,
} as const;

/**
 * p_flags bits.
 *
 * @example
 * ```ts
 * const executable = (segment.flags & PF.X) !== 0;
 * ```
 */
export const PF = { X: 1, W: 2, R: 4 } as const;

/** Size of an ELF64 file header. */
const EHDR_SIZE = 64;

/**
 * Size of one ELF64 program header (AT_PHENT).
 *
 * @example
 * ```ts
 * const tableBytes = header.phnum * PHDR_SIZE;
 * ```
 */
export const PHDR_SIZE = 56;

/** Longest PT_INTERP path the kernel accepts (PATH_MAX, NUL included). */
const MAX_INTERP_LEN = 4096;

/**
 * Most bytes of program headers the kernel reads (binfmt_elf refuses more than 64 KiB); this
 * also bounds what a hostile file can make us allocate.
 */
const MAX_PHDRS_SIZE = 65536;

const PAGE = 4096n;
// x86-64 user addresses are 47 bits; anything at or above this cannot be mapped.
const ADDRESS_LIMIT = 1n << 47n;

/**
 * The validated ELF64 file header.
 *
 * @example
 * ```ts
 * const { type, entry, phnum } = parseElfHeader(firstPage, path);
 * ```
 */
export interface ElfHeader {
  /** ET_EXEC (fixed addresses) or ET_DYN (position independent: PIE, static-pie, ld.so). */
  type: typeof ET.EXEC | typeof ET.DYN;
  machine: number;
  /** e_entry, unrelocated (add the load bias for ET_DYN). */
  entry: bigint;
  /** File offset of the program header table. */
  phoff: bigint;
  /** Bytes per program header (always 56 once validated). */
  phentsize: number;
  phnum: number;
}

/**
 * One program header, fields as in Elf64_Phdr.
 *
 * @example
 * ```ts
 * const bss = info.loads.filter((p: ProgramHeader) => p.memsz > p.filesz);
 * ```
 */
export interface ProgramHeader {
  type: number;
  /** PF.R | PF.W | PF.X bits. */
  flags: number;
  offset: bigint;
  vaddr: bigint;
  paddr: bigint;
  filesz: bigint;
  memsz: bigint;
  align: bigint;
}

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
   * (the x86-64 kernel's default for old binaries).
   */
  execStack: boolean;
  /**
   * Unrelocated address of the program headers in memory (AT_PHDR minus the bias): PT_PHDR's
   * vaddr, else the PT_LOAD whose file range holds them, else undefined (the program then gets
   * no usable AT_PHDR, like on Linux).
   */
  phdrVaddr?: bigint;
  span: ElfSpan;
  /**
   * 'static' (ET.EXEC, no interpreter), 'static-pie' (ET.DYN, no interpreter: also what ld.so
   * itself is), 'dynamic' (has PT_INTERP; ET_DYN = PIE or ET_EXEC = non-PIE).
   */
  kind: 'static' | 'static-pie' | 'dynamic';
}

function dataView(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

function machineName(machine: number): string {
  switch (machine) {
    case EM.I386:
      return 'an i386 (EM_386) ELF file';
    case EM.ARM:
      return 'an ARM (EM_ARM) ELF file';
    case EM.AARCH64:
      return 'an AArch64 (EM_AARCH64) ELF file';
    case EM.RISCV:
      return 'a RISC-V (EM_RISCV) ELF file';
    default:
      return `an ELF file for machine ${machine}`;
  }
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
  if (buf.length < 4 || buf[0] !== 0x7f || buf[1] !== 0x45 || buf[2] !== 0x4c || buf[3] !== 0x46) {
    // Scripts are execve's other big family; say so, since the fix is different.
    if (buf.length >= 2 && buf[0] === 0x23 && buf[1] === 0x21)
      throw LoaderErrors.NotElf(path, "is a '#!' script, not an ELF file (load its interpreter instead)");
    throw LoaderErrors.NotElf(path);
  }
  if (buf.length < 6) throw LoaderErrors.BadElf(path, 'file ends inside the ELF identification');
  const cls = buf[4];
  if (cls === 1) throw LoaderErrors.WrongArch(path, `a 32-bit (ELFCLASS32) ${machineName32(buf)}`);
  if (cls !== 2) throw LoaderErrors.BadElf(path, `unknown ELF class ${cls}`);
  const data = buf[5];
  if (data === 2) throw LoaderErrors.WrongArch(path, 'a big-endian ELF file');
  if (data !== 1) throw LoaderErrors.BadElf(path, `unknown data encoding ${data}`);
  if (buf.length < EHDR_SIZE) throw LoaderErrors.BadElf(path, 'file ends inside the ELF header');
  const dv = dataView(buf);
  if (buf[6] !== 1 || dv.getUint32(20, true) !== 1) throw LoaderErrors.BadElf(path, 'unknown ELF version');
  const type = dv.getUint16(16, true);
  const machine = dv.getUint16(18, true);
  // Machine before type: an ARM shared library is "wrong architecture" first of all.
  if (machine !== EM.X86_64) throw LoaderErrors.WrongArch(path, machineName(machine));
  if (type !== ET.EXEC && type !== ET.DYN) {
    const what = type === ET.REL ? 'a relocatable object (ET_REL)' : type === ET.CORE ? 'a core dump (ET_CORE)' : `ELF type ${type}`;
    throw LoaderErrors.NotElf(path, `is ${what}, not an executable`);
  }
  const entry = dv.getBigUint64(24, true);
  const phoff = dv.getBigUint64(32, true);
  const ehsize = dv.getUint16(52, true);
  const phentsize = dv.getUint16(54, true);
  const phnum = dv.getUint16(56, true);
  if (ehsize < EHDR_SIZE) throw LoaderErrors.BadElf(path, `e_ehsize ${ehsize} is smaller than an ELF64 header`);
  if (phentsize !== PHDR_SIZE) throw LoaderErrors.BadElf(path, `e_phentsize is ${phentsize}, not ${PHDR_SIZE}`);
  if (phnum === 0) throw LoaderErrors.BadElf(path, 'no program headers');
  if (phnum * PHDR_SIZE > MAX_PHDRS_SIZE) throw LoaderErrors.BadElf(path, `${phnum} program headers are too many`);
  if (phoff === 0n || phoff > ADDRESS_LIMIT) throw LoaderErrors.BadElf(path, `e_phoff ${phoff} is not a file offset`);
  return { type: type as ElfHeader['type'], machine, entry, phoff, phentsize, phnum };
}

// The 32-bit header has e_machine at the same offset (18); name it when the buffer holds it.
function machineName32(buf: Uint8Array): string {
  if (buf.length < 20) return 'ELF file';
  const m = buf[18] | (buf[19] << 8);
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
export function programHeaderRange(header: ElfHeader): { offset: bigint; length: number } {
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
export function parseProgramHeaders(table: Uint8Array, header: ElfHeader, path = '<buffer>'): ProgramHeader[] {
  const want = header.phnum * header.phentsize;
  if (table.length < want) throw LoaderErrors.BadElf(path, 'file ends inside the program headers');
  const dv = dataView(table);
  const out: ProgramHeader[] = [];
  for (let i = 0; i < header.phnum; i++) {
    const o = i * header.phentsize;
    out.push({
      type: dv.getUint32(o, true),
      flags: dv.getUint32(o + 4, true),
      offset: dv.getBigUint64(o + 8, true),
      vaddr: dv.getBigUint64(o + 16, true),
      paddr: dv.getBigUint64(o + 24, true),
      filesz: dv.getBigUint64(o + 32, true),
      memsz: dv.getBigUint64(o + 40, true),
      align: dv.getBigUint64(o + 48, true),
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
export function findInterp(phdrs: ProgramHeader[], path = '<buffer>'): ProgramHeader | undefined {
  const interps = phdrs.filter((p) => p.type === PT.INTERP);
  if (interps.length > 1) throw LoaderErrors.BadElf(path, 'more than one PT_INTERP');
  const pi = interps[0];
  if (pi && (pi.filesz < 2n || pi.filesz > BigInt(MAX_INTERP_LEN)))
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
export function parseInterp(bytes: Uint8Array, path = '<buffer>'): string {
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
export function describeElf(header: ElfHeader, phdrs: ProgramHeader[], interp: string | undefined, path = '<buffer>'): ElfInfo {
  const loads = phdrs.filter((p) => p.type === PT.LOAD);
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
  if (header.type === ET.DYN && span.end - span.start > ADDRESS_LIMIT / 4n)
    throw LoaderErrors.BadElf(path, 'the image is larger than a quarter of the address space');

  const gnuStack = phdrs.find((p) => p.type === PT.GNU_STACK);
  const phdrSeg = phdrs.find((p) => p.type === PT.PHDR);
  let phdrVaddr: bigint | undefined = phdrSeg?.vaddr;
  if (phdrVaddr === undefined) {
    // No PT_PHDR (typical of static binaries): the table is wherever its file bytes got mapped.
    const tableEnd = header.phoff + BigInt(header.phnum * header.phentsize);
    const holder = loads.find((p) => p.offset <= header.phoff && tableEnd <= p.offset + p.filesz);
    if (holder) phdrVaddr = holder.vaddr + (header.phoff - holder.offset);
  }
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
 * Reads `length` bytes at `offset` of a file; returns fewer only at end of file. The loader
 * passes one that reads through a file descriptor of the stub, {@link readElf} one over Node's fs.
 *
 * @example
 * ```ts
 * const fromBuffer: ElfReader = async (off, len) => file.subarray(Number(off), Number(off) + len);
 * ```
 */
export type ElfReader = (offset: bigint, length: number) => Promise<Uint8Array>;

/** How much {@link decodeElf} reads first: one page holds the headers of nearly every binary. */
const FIRST_READ = 4096;

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
 * const info = await readElf('/usr/bin/python3.11');
 * console.log(info.kind, info.loads.length);
 * ```
 */
export async function readElf(path: string): Promise<ElfInfo> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw LoaderErrors.NoFile(path);
    if (code === 'EACCES' || code === 'EPERM') throw LoaderErrors.Access(path, 'cannot be opened for reading');
    throw e;
  }
  try {
    return await decodeElf(async (offset, length) => {
      const buf = Buffer.alloc(length);
      let got = 0;
      while (got < length) {
        const { bytesRead } = await fh.read(buf, got, length - got, Number(offset) + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return buf.subarray(0, got);
    }, path);
  } finally {
    await fh.close();
  }
}

/**
 * Rounds `v` up to a multiple of `to` (a power of two).
 *
 * @example
 * ```ts
 * roundUp(4097n, 4096n); // 8192n
 * ```
 */
export function roundUp(v: bigint, to: bigint): bigint {
  return (v + to - 1n) & ~(to - 1n);
}

/**
 * Rounds `v` down to a multiple of `to` (a power of two).
 *
 * @example
 * ```ts
 * roundDown(4097n, 4096n); // 4096n
 * ```
 */
export function roundDown(v: bigint, to: bigint): bigint {
  return v & ~(to - 1n);
}
