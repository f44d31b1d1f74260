import { constants } from 'node:fs';
import { access, open, type FileHandle } from 'node:fs/promises';
import { ERRNO } from '../../abi/linux.js';
import { decodeElf } from './elf.js';

/** Most bytes read from the file in one go (decodeElf asks for a page, the headers, PT_INTERP). */
const MAX_READ = 1 << 16;

/**
 * What execve would fail with before its point of no return, for the program at `path` (0: it
 * can go on): the file is opened without waiting (O_NONBLOCK: a FIFO never blocks the open), it
 * must be a regular file with execute permission (EACCES otherwise, as Linux's may_open says for
 * directories, devices and FIFOs), and its ELF headers must parse (ENOEXEC). Only the headers
 * are read, in bounded pieces; everything runs on libuv's pool, never on the event loop thread.
 * The loader checks the same again in the stub when it maps the file.
 *
 * @example
 * ```ts
 * const errno = await checkExecutable('/proc/1234/cwd/a.out'); // 0, or ENOENT, EACCES, ENOEXEC…
 * ```
 */
export async function checkExecutable(path: string): Promise<number> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
    const st = await fh.stat();
    if (!st.isFile()) return ERRNO.EACCES;
    await access(path, constants.X_OK);
    const file = fh;
    await decodeElf(async (offset, length) => {
      const want = Math.min(length, MAX_READ);
      const buf = Buffer.alloc(want);
      const { bytesRead } = await file.read(buf, 0, want, Number(offset));
      return buf.subarray(0, bytesRead);
    }, path);
    return 0;
  } catch (e) {
    const errno = (e as { errno?: unknown }).errno;
    return typeof errno === 'number' ? Math.abs(errno) : ERRNO.ENOEXEC;
  } finally {
    await fh?.close().catch(() => undefined);
  }
}
