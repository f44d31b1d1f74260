/**
 * The ELF64 file format as far as execve reads it (Linux's include/uapi/linux/elf.h): the
 * constants, the byte layout of the file header and of one program header, and the decoded
 * records. Parsing and validation live in elf.ts.
 */

/**
 * The four bytes every ELF file starts with: "\x7fELF".
 *
 * @example
 * ```ts
 * const isElf = ELF_MAGIC.every((b, i) => buf[i] === b);
 * ```
 */
export const ELF_MAGIC: readonly number[] = [0x7f, 0x45, 0x4c, 0x46];

/**
 * e_ident[EI_CLASS] values: the word size of the file.
 *
 * @example
 * ```ts
 * buf[EI.CLASS] === ELFCLASS.CLASS64; // a 64-bit ELF file
 * ```
 */
export const ELFCLASS = { CLASS32: 1, CLASS64: 2 } as const;

/**
 * e_ident[EI_DATA] values: the byte order of the file.
 *
 * @example
 * ```ts
 * buf[EI.DATA] === ELFDATA.LSB; // little endian, as on x86-64
 * ```
 */
export const ELFDATA = { LSB: 1, MSB: 2 } as const;

/**
 * EV_CURRENT: the only ELF version there is (e_ident[EI_VERSION] and e_version).
 *
 * @example
 * ```ts
 * buf[EI.VERSION] === EV_CURRENT;
 * ```
 */
export const EV_CURRENT = 1;

/**
 * Indexes into e_ident, the first 16 bytes of the file header.
 *
 * @example
 * ```ts
 * const cls = buf[EI.CLASS];
 * ```
 */
export const EI = { CLASS: 4, DATA: 5, VERSION: 6 } as const;

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

/**
 * Size of an ELF64 file header (Elf64_Ehdr).
 *
 * @example
 * ```ts
 * if (buf.length < EHDR_SIZE) throw new Error('truncated');
 * ```
 */
export const EHDR_SIZE = 64;

/**
 * Byte offsets of the Elf64_Ehdr fields after e_ident (all little endian once checked).
 *
 * @example
 * ```ts
 * const entry = view.getBigUint64(EHDR.e_entry, true);
 * ```
 */
export const EHDR = {
  e_type: 16,
  e_machine: 18,
  e_version: 20,
  e_entry: 24,
  e_phoff: 32,
  e_ehsize: 52,
  e_phentsize: 54,
  e_phnum: 56,
} as const;

/**
 * Size of one ELF64 program header (Elf64_Phdr), and so AT_PHENT.
 *
 * @example
 * ```ts
 * const tableBytes = header.phnum * PHDR_SIZE;
 * ```
 */
export const PHDR_SIZE = 56;

/**
 * Byte offsets of the Elf64_Phdr fields inside one program header.
 *
 * @example
 * ```ts
 * const vaddr = view.getBigUint64(i * PHDR_SIZE + PHDR.p_vaddr, true);
 * ```
 */
export const PHDR = {
  p_type: 0,
  p_flags: 4,
  p_offset: 8,
  p_vaddr: 16,
  p_paddr: 24,
  p_filesz: 32,
  p_memsz: 40,
  p_align: 48,
} as const;

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
 * A machine's name for error messages, as "a/an <name> ELF file".
 *
 * @example
 * ```ts
 * machineName(EM.AARCH64); // 'an AArch64 (EM_AARCH64) ELF file'
 * ```
 */
export function machineName(machine: number): string {
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
