import { Errors, checkStubReply } from '../../errors.js';
import { SYS } from '../../abi/syscalls.js';
import { AT_FDCWD, O_CLOEXEC, O_NONBLOCK, O_RDONLY, PAGE_SIZE, S_IFMT, S_IFREG, X_OK, errnoName } from '../../abi/linux.js';
import { decodeElf, type ElfInfo, type ElfReader } from './elf.js';
import { LoaderError, LoaderErrors } from './loaderErrors.js';
import { followScripts, type ExecFileAccess } from './script.js';
import { isError, type StubIO } from './stubIO.js';

/**
 * Opening an executable, as Linux's fs/exec.c (do_open_execat), binfmt_script and the start of
 * binfmt_elf do: open it in the stub, check it is a regular executable file, follow its '#!'
 * line to the interpreter if it is a script (script.ts), read and check the ELF headers of the
 * file that ends up loaded through its fd. That fd then serves to map the very file checked.
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
 * An executable file opened in the stub and checked, not yet parsed.
 *
 * @example
 * ```ts
 * const f: OpenedFile = await openExec(io, '/bin/ls'); // { fd: 5n, size: 142312n, head }
 * ```
 */
export interface OpenedFile {
  /** The stub's fd of the file. */
  fd: bigint;
  /** Its size in bytes when checked. */
  size: bigint;
  /** Its first bytes (up to a page), read in the same round trip as the checks. */
  head: Uint8Array;
}

/**
 * What a program is once execve has followed its '#!' lines: the ELF file to load, and the
 * argv it gets.
 *
 * @example
 * ```ts
 * const { main, argv, scripts }: OpenProgram = await openProgram(io, '/tmp/x.sh', './x.sh', ['x']);
 * ```
 */
export interface OpenProgram {
  main: OpenImage;
  argv: string[];
  /** The scripts passed through, outermost first (empty for an ELF program run directly). */
  scripts: string[];
}

/** Bytes read first from every file: a page holds a '#!' line and nearly every ELF's headers. */
const HEAD_SIZE = PAGE_SIZE;

/**
 * Opens `path` in the stub and checks what execve checks (regular file, execute permission),
 * reading its first page in the same round trip as the checks.
 *
 * Preconditions: `io`'s scratch area is mapped.
 *
 * @throws LoaderError `ENOENT`, `EACCES`; SystrapError `EINVALIDARG` for a path longer than
 * PATH_MAX, or the stub's errors. On failure the fd is closed again.
 *
 * @example
 * ```ts
 * const { fd, size, head } = await openExec(io, '/bin/ls');
 * ```
 */
export async function openExec(io: StubIO, path: string): Promise<OpenedFile> {
  const pathAddr = io.putPath(path);
  const fd = await openFile(io, path, pathAddr);
  try {
    return { fd, ...(await checkExecutable(io, path, pathAddr, fd)) };
  } catch (e) {
    // Keep the first error: a failing close (stub gone) says less about what went wrong.
    await io.close(fd);
    throw e;
  }
}

/**
 * Opens `path` in the stub, checks what execve checks (regular file, execute permission), and
 * parses it as an ELF file through the stub's fd (no '#!': for PT_INTERP's loader).
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
  const file = await openExec(io, path);
  return decodeOpened(io, path, file, file.head);
}

/**
 * Opens the program execve is asked to run: follows its '#!' lines (script.ts) to the ELF file
 * they end at, parses that, and returns it with the argv the interpreters made. `path` is what
 * to open, `name` the path as execve was given it (the script's name in argv).
 *
 * Preconditions: `io`'s scratch area is mapped.
 *
 * @throws LoaderError as {@link openImage} and {@link followScripts} (`ELOOP`, a bad '#!' line,
 * a missing interpreter). Every fd is closed on failure.
 *
 * @example
 * ```ts
 * const p = await openProgram(io, '/home/me/x.sh', './x.sh', ['x.sh', 'a']);
 * p.main.path; // '/bin/sh' for "#!/bin/sh"; p.argv ['/bin/sh', './x.sh', 'a']
 * ```
 */
export async function openProgram(io: StubIO, path: string, name: string, argv: readonly string[]): Promise<OpenProgram> {
  const access: ExecFileAccess<OpenedFile> = {
    open: (p) => openExec(io, p),
    head: async (f) => f.head,
    close: (f) => io.close(f.fd),
  };
  const target = await followScripts(access, path, argv, name);
  const main = await decodeOpened(io, target.path, target.file, target.head);
  return { main, argv: target.argv, scripts: target.scripts };
}

/** A catch handler that closes the file and rethrows. */
function closing(io: StubIO, file: OpenedFile): (e: unknown) => Promise<never> {
  return async (e) => {
    await io.close(file.fd);
    throw e;
  };
}

/** Parses an opened file as an ELF executable, its first bytes already read; closes it on failure. */
async function decodeOpened(io: StubIO, path: string, file: OpenedFile, head: Uint8Array): Promise<OpenImage> {
  try {
    const info = await decodeElf(readerAfter(head, (off, len) => io.pread(file.fd, off, len)), path);
    // A segment past EOF would map pages that raise SIGBUS when the program touches them.
    for (const p of info.loads)
      if (p.offset + p.filesz > file.size) throw LoaderErrors.BadElf(path, `a PT_LOAD extends past the end of the file (${file.size} bytes)`);
    return { path, fd: file.fd, info };
  } catch (e) {
    return closing(io, file)(e);
  }
}

/**
 * A reader that serves what `head` (the file's first bytes) holds without reading again: any
 * range inside it, and anything at all when it is shorter than asked (the file ends there).
 *
 * @example
 * ```ts
 * const read = readerAfter(head, (off, len) => io.pread(fd, off, len));
 * ```
 */
export function readerAfter(head: Uint8Array, read: ElfReader): ElfReader {
  const whole = head.length < HEAD_SIZE;
  return async (offset, length) => {
    const end = offset + BigInt(length);
    if (end <= BigInt(head.length) || whole) {
      const from = Math.min(Number(offset), head.length);
      return head.subarray(from, Math.min(Number(end), head.length));
    }
    return read(offset, length);
  };
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

/**
 * execve's own checks on the opened file: a regular file with execute permission. Returns its
 * size and its first bytes, read for both the '#!' test and the ELF headers. One round trip: the
 * read goes with the checks (a pread has no effect on a file execve would refuse: one that
 * cannot seek refuses it), and the answers are looked at in execve's order.
 */
async function checkExecutable(io: StubIO, path: string, pathAddr: bigint, fd: bigint): Promise<{ size: bigint; head: Uint8Array }> {
  const stat = io.fstatLater(fd);
  let acc = 0n;
  io.later(SYS.faccessat, [AT_FDCWD, pathAddr, X_OK], undefined, (r) => void (acc = r));
  const head = io.preadLater(fd, 0n, HEAD_SIZE);
  await io.flush();
  const { mode, size } = stat();
  // execve refuses directories, devices and fifos with EACCES.
  if ((mode & S_IFMT) !== S_IFREG) throw LoaderErrors.Access(path, 'is not a regular file');
  if (isError(acc)) throw LoaderErrors.Access(path, 'is not executable', Number(acc), 'faccessat');
  checkStubReply(acc, { syscall: 'faccessat', expect: 0n, pid: io.pid });
  return { size, head: head() };
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
