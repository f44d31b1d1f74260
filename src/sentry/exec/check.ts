import { constants } from 'node:fs';
import { access, open, type FileHandle } from 'node:fs/promises';
import { ERRNO, PAGE_SIZE } from '../../abi/linux.js';
import { decodeElf } from './elf.js';
import { LoaderErrors } from './loaderErrors.js';
import { readerAfter } from './open.js';
import { followScripts, type ExecFileAccess } from './script.js';

/** Most bytes read from the file in one go (decodeElf asks for a page, the headers, PT_INTERP). */
const MAX_READ = 1 << 16;

/**
 * What execve would fail with before its point of no return, for the program at `path` (0: it
 * can go on): each file is opened without waiting (O_NONBLOCK: a FIFO never blocks the open), it
 * must be a regular file with execute permission (EACCES otherwise, as Linux's may_open says for
 * directories, devices and FIFOs), a '#!' script's line must parse and its interpreter pass the
 * same checks, at most five scripts deep (script.ts), and the ELF file they lead to must have
 * headers that parse (ENOEXEC). Only the first bytes and the headers are read, in bounded
 * pieces; everything runs on libuv's pool, never on the event loop thread. The loader checks the
 * same again in the stub when it maps the file.
 *
 * `resolve` turns a path as the program would open it (relative to its working directory) into
 * one Node can open; it is applied to the program and to every '#!' interpreter.
 *
 * @example
 * ```ts
 * const errno = await checkExecutable('a.out', (p) => join('/proc/1234/cwd', p)); // 0, or ENOENT, EACCES, ENOEXEC, ELOOP…
 * ```
 */
export async function checkExecutable(path: string, resolve: (path: string) => string = (p) => p): Promise<number> {
  let fh: FileHandle | undefined;
  try {
    const target = await followScripts(nodeAccess(resolve), path, []);
    fh = target.file;
    const file = fh;
    await decodeElf(
      readerAfter(target.head, (offset, length) => readAt(file, offset, Math.min(length, MAX_READ))),
      target.path,
    );
    return 0;
  } catch (e) {
    const errno = (e as { errno?: unknown }).errno;
    return typeof errno === 'number' ? Math.abs(errno) : ERRNO.ENOEXEC;
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/** Files through Node's fs, opened and checked as execve opens them (see {@link checkExecutable}). */
function nodeAccess(resolve: (path: string) => string): ExecFileAccess<FileHandle> {
  return {
    open: async (p) => {
      const real = resolve(p);
      let fh: FileHandle;
      try {
        fh = await open(real, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
      } catch (e) {
        throw openError(p, e);
      }
      try {
        if (!(await fh.stat()).isFile()) throw LoaderErrors.Access(p, 'is not a regular file');
        await access(real, constants.X_OK).catch(() => {
          throw LoaderErrors.Access(p, 'is not executable');
        });
        return fh;
      } catch (e) {
        await fh.close().catch(() => undefined);
        throw e;
      }
    },
    head: (fh) => readAt(fh, 0n, PAGE_SIZE),
    close: (fh) => fh.close().catch(() => undefined),
  };
}

/** A failed open as the loader words it (ENOENT, EACCES), or the error itself. */
function openError(path: string, e: unknown): unknown {
  const { code, errno } = e as NodeJS.ErrnoException;
  if (code === 'ENOENT' || code === 'ENOTDIR') return LoaderErrors.NoFile(path, errno);
  if (code === 'EACCES' || code === 'EPERM') return LoaderErrors.Access(path, 'cannot be opened', errno);
  return e;
}

/** Up to `length` bytes at `offset`, short only at the end of the file. */
async function readAt(fh: FileHandle, offset: bigint, length: number): Promise<Uint8Array> {
  const buf = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, Number(offset) + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buf.subarray(0, got);
}
