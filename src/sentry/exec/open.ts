import { Errors, checkStubReply } from '../../errors.js';
import { SYS } from '../../abi/syscalls.js';
import { AT_FDCWD, O_CLOEXEC, O_NONBLOCK, O_RDONLY, S_IFMT, S_IFREG, X_OK, errnoName } from '../../abi/linux.js';
import { decodeElf, type ElfInfo } from './elf.js';
import { LoaderError, LoaderErrors } from './loaderErrors.js';
import { isError, type StubIO } from './stubIO.js';

/**
 * Opening an executable, as Linux's fs/exec.c (do_open_execat) and the start of binfmt_elf do:
 * open it in the stub, check it is a regular executable file, read and check its ELF headers
 * through that fd. The fd then serves to map the very file that was checked.
 */

/**
 * An executable opened in the stub and parsed.
 *
 * @example
 * ```ts
 * const img: OpenImage = await openImage(io, '/bin/ls');
 * img.info.interp; // '/lib64/ld-linux-x86-64.so.2'
 * ```
 */
export interface OpenImage {
  /** The path opened (absolute for the main program, PT_INTERP's for the interpreter). */
  path: string;
  /** The stub's fd of the file, open until the caller closes it. */
  fd: bigint;
  info: ElfInfo;
}

/**
 * Opens `path` in the stub, checks what execve checks (regular file, execute permission), and
 * parses it through the stub's fd.
 *
 * Preconditions: `io`'s scratch area is mapped.
 *
 * @throws LoaderError `ENOENT`, `EACCES`, `ENOEXEC`, `EARCH`; SystrapError `EINVALIDARG` for a
 * path longer than PATH_MAX, or the stub's errors. On failure the fd is closed again.
 *
 * @example
 * ```ts
 * const main = await openImage(io, '/bin/ls');
 * try { await mapImage(io, main, bias, log); } finally { await io.close(main.fd); }
 * ```
 */
export async function openImage(io: StubIO, path: string): Promise<OpenImage> {
  const pathAddr = io.putPath(path);
  const fd = await openFile(io, path, pathAddr);
  try {
    const size = await checkExecutable(io, path, pathAddr, fd);
    const info = await decodeElf((off, len) => io.pread(fd, off, len), path);
    // A segment past EOF would map pages that raise SIGBUS when the program touches them.
    for (const p of info.loads)
      if (p.offset + p.filesz > size) throw LoaderErrors.BadElf(path, `a PT_LOAD extends past the end of the file (${size} bytes)`);
    return { path, fd, info };
  } catch (e) {
    // Keep the first error: a failing close (stub gone) says less about what went wrong.
    await io.close(fd);
    throw e;
  }
}

/** openat in the stub, read-only; file errors become LoaderErrors. */
async function openFile(io: StubIO, path: string, pathAddr: bigint): Promise<bigint> {
  // O_NONBLOCK: opening a FIFO must not block the stub's syscall thread (it is refused below).
  const fd = await io.raw(SYS.openat, AT_FDCWD, pathAddr, O_RDONLY | O_CLOEXEC | O_NONBLOCK, 0n);
  if (!isError(fd)) return checkStubReply(fd, { syscall: 'openat', expect: 'nonneg', pid: io.pid });
  const errno = Number(-fd);
  const code = errnoName(errno);
  if (code === 'ENOENT' || code === 'ENOTDIR') throw LoaderErrors.NoFile(path, -errno);
  if (code === 'EACCES' || code === 'EPERM') throw LoaderErrors.Access(path, 'cannot be opened', -errno, 'openat');
  throw Errors.Syscall('openat', errno, io.pid);
}

/** execve's own checks on the opened file: a regular file with execute permission. Returns its size. */
async function checkExecutable(io: StubIO, path: string, pathAddr: bigint, fd: bigint): Promise<bigint> {
  const { mode, size } = await io.fstat(fd);
  // execve refuses directories, devices and fifos with EACCES.
  if ((mode & S_IFMT) !== S_IFREG) throw LoaderErrors.Access(path, 'is not a regular file');
  const acc = await io.raw(SYS.faccessat, AT_FDCWD, pathAddr, X_OK);
  if (isError(acc)) throw LoaderErrors.Access(path, 'is not executable', Number(acc), 'faccessat');
  checkStubReply(acc, { syscall: 'faccessat', expect: 0n, pid: io.pid });
  return size;
}

/**
 * Opens the interpreter a program names in PT_INTERP.
 *
 * @throws LoaderError `EINTERP` (with the file error as `cause`) when it cannot be opened or is
 * not a loadable ELF file; the stub's own errors pass through unchanged.
 *
 * @example
 * ```ts
 * const ld = await openInterp(io, main.info.interp!, main.path);
 * ```
 */
export async function openInterp(io: StubIO, interp: string, program: string): Promise<OpenImage> {
  try {
    return await openImage(io, interp);
  } catch (e) {
    // Stub death and host errors stay what they are; file problems name the interpreter.
    if (e instanceof LoaderError) throw LoaderErrors.Interp(interp, program, e);
    throw e;
  }
}

/**
 * Refuses an interpreter that names an interpreter itself: it is a dynamically linked program,
 * not a loader, and could not run without another one. (Linux ignores the interpreter's own
 * PT_INTERP and maps it anyway.)
 *
 * @throws LoaderError `EINTERP`.
 *
 * @example
 * ```ts
 * checkInterpStandsAlone(ld, main.path);
 * ```
 */
export function checkInterpStandsAlone(interp: OpenImage, program: string): void {
  if (interp.info.interp !== undefined)
    throw LoaderErrors.Interp(interp.path, program, LoaderErrors.BadElf(interp.path, 'it has a PT_INTERP of its own'));
}
