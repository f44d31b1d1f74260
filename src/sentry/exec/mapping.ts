import { SYS } from '../../abi/syscalls.js';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_PRIVATE, PROT_EXEC, PROT_NONE, PROT_READ, PROT_WRITE } from '../../abi/linux.js';
import { PAGE, roundDown, roundUp, type AddressRange } from './addresses.js';
import { PF, type ProgramHeader } from './elfFormat.js';
import type { ElfInfo } from './elf.js';
import { imageRange } from './layout.js';
import type { OpenImage } from './open.js';
import type { StubIO } from './stubIO.js';

/**
 * Mapping into the stub: an ELF image segment by segment from its file (binfmt_elf's elf_map,
 * elf_load and padzero), and the stack (exec.c's setup_arg_pages). What is mapped is recorded
 * in a {@link MapLog}, so that a failed load can take it all back.
 */

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
 * What a load has mapped so far.
 *
 * @example
 * ```ts
 * const log: MapLog = { mappings: [], placed: [] };
 * try { await mapImage(io, main, bias, log); } catch (e) { await unmapPlaced(io, log); throw e; }
 * ```
 */
export interface MapLog {
  /** Every mapping made, for LoadedProgram.mappings. */
  readonly mappings: LoadedMapping[];
  /** The ranges this load owns (reserved with MAP_FIXED_NOREPLACE): what to unmap on failure. */
  readonly placed: AddressRange[];
}

/** Private anonymous memory at exactly the given address, replacing nothing. */
const MAP_NEW_ANON = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;

/** PROT_* bits of a segment's PF_* flags. */
function segmentProt(p: ProgramHeader): bigint {
  return (p.flags & PF.R ? PROT_READ : 0n) | (p.flags & PF.W ? PROT_WRITE : 0n) | (p.flags & PF.X ? PROT_EXEC : 0n);
}

/**
 * Maps an opened image at `bias`: one PROT_NONE reservation of the whole span (so that the
 * segments land relative to one base and nothing else is there: MAP_FIXED_NOREPLACE), then each
 * PT_LOAD file-backed with its protections, its bss zeroed and mapped anonymous, and finally the
 * holes between segments unmapped again, as Linux leaves them. The calls are queued on `io`
 * (one round trip for all of them at its next flush); `log` grows as they succeed.
 *
 * Preconditions: `img.fd` is open; the biased span lies below the stub region (see
 * checkPlacement in layout.ts).
 *
 * @throws LoaderError `ENOMEM` (the span is taken), `EACCES` (noexec mount); SystrapError
 * `EPROTOCOL` for an impossible answer from the stub (at the flush that runs them).
 *
 * @example
 * ```ts
 * await mapImage(io, main, loadBias, log);
 * await io.flush();
 * ```
 */
export async function mapImage(io: StubIO, img: OpenImage, bias: bigint, log: MapLog): Promise<void> {
  const span = imageRange(img.info, bias);
  // Only once it is made is the range ours to unmap on failure (NOREPLACE refuses anything there).
  io.mmapLater(span.start, span.end - span.start, PROT_NONE, MAP_NEW_ANON, -1n, 0n, img.path, () => log.placed.push(span));
  for (const p of img.info.loads) await mapSegment(io, img, p, bias, log);
  unmapHoles(io, img.info, bias);
}

/** One PT_LOAD: the file part, then anonymous zero pages up to p_memsz. */
async function mapSegment(io: StubIO, img: OpenImage, p: ProgramHeader, bias: bigint, log: MapLog): Promise<void> {
  const prot = segmentProt(p);
  const start = p.vaddr + bias;
  const memEnd = roundUp(start + p.memsz, PAGE);
  const anonStart = p.filesz > 0n ? await mapFilePart(io, img, p, start, prot, log) : roundDown(start, PAGE);
  if (memEnd > anonStart) {
    const bss = { start: anonStart, end: memEnd, prot, name: '[bss]' };
    io.mmapLater(anonStart, memEnd - anonStart, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1n, 0n, img.path, () => log.mappings.push(bss));
  }
}

/** The file-backed pages of a segment starting at `start`; returns the page-aligned end. */
async function mapFilePart(io: StubIO, img: OpenImage, p: ProgramHeader, start: bigint, prot: bigint, log: MapLog): Promise<bigint> {
  const pageStart = roundDown(start, PAGE);
  const fileEnd = start + p.filesz;
  const fileMapEnd = roundUp(fileEnd, PAGE);
  const off = p.offset - (start - pageStart);
  const mapped = { start: pageStart, end: fileMapEnd, prot, name: img.path };
  io.mmapLater(pageStart, fileMapEnd - pageStart, prot, MAP_PRIVATE | MAP_FIXED, img.fd, off, img.path, () => log.mappings.push(mapped));
  if (p.memsz > p.filesz && fileEnd < fileMapEnd) await padZero(io, fileEnd, fileMapEnd, prot);
  return fileMapEnd;
}

/**
 * Zeroes [fileEnd, pageEnd): the file page holding the end of .data also holds whatever follows
 * it in the file, and the bss that starts there must read as zeros (Linux's padzero). A writable
 * page is written once the flush has mapped it (nothing queued after it touches the page); a
 * read-only one (rare) is opened for writing in between, which costs a round trip of its own.
 */
async function padZero(io: StubIO, fileEnd: bigint, pageEnd: bigint, prot: bigint): Promise<void> {
  const zero = () => io.write(fileEnd, new Uint8Array(Number(pageEnd - fileEnd)));
  if ((prot & PROT_WRITE) !== 0n) return io.afterFlush(zero);
  const tailPage = pageEnd - PAGE;
  // process_vm_writev honours page protections: open the page for writing briefly.
  io.callLater('mprotect', SYS.mprotect, [tailPage, PAGE, prot | PROT_WRITE], 0n);
  await io.flush();
  zero();
  io.callLater('mprotect', SYS.mprotect, [tailPage, PAGE, prot], 0n);
}

/** Holes between segments (alignment padding) stay unmapped, as after Linux's execve (queued). */
function unmapHoles(io: StubIO, info: ElfInfo, bias: bigint): void {
  for (let i = 1; i < info.loads.length; i++) {
    const prev = info.loads[i - 1];
    const holeStart = roundUp(prev.vaddr + prev.memsz, PAGE) + bias;
    const holeEnd = roundDown(info.loads[i].vaddr, PAGE) + bias;
    if (holeEnd > holeStart) io.callLater('munmap', SYS.munmap, [holeStart, holeEnd - holeStart], 0n);
  }
}

/**
 * Maps the stack, [stackTop - stackSize, stackTop), refusing to replace anything there (queued
 * on `io` for its next flush).
 *
 * @throws LoaderError `ENOMEM` when the range is taken (at the flush).
 *
 * @example
 * ```ts
 * mapStack(io, { start: stackTop - stackSize, end: stackTop }, PROT_READ | PROT_WRITE, log);
 * await io.flush();
 * ```
 */
export function mapStack(io: StubIO, stack: AddressRange, prot: bigint, log: MapLog): void {
  io.mmapLater(stack.start, stack.end - stack.start, prot, MAP_NEW_ANON, -1n, 0n, '[stack]', () => {
    log.placed.push({ start: stack.start, end: stack.end });
    log.mappings.push({ start: stack.start, end: stack.end, prot, name: '[stack]' });
  });
}

/**
 * Unmaps everything the load placed, so that the address space looks as it did before; errors
 * are ignored (the first error is the one worth reporting).
 *
 * @example
 * ```ts
 * catch (e) { await unmapPlaced(io, log); throw e; }
 * ```
 */
export async function unmapPlaced(io: StubIO, log: MapLog): Promise<void> {
  for (const r of log.placed) await io.unmap(r);
}
