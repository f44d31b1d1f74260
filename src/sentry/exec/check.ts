import { closeSync, constants, openSync, readSync } from 'node:fs';
import { ERRNO, S_IFMT, S_IFREG } from '../../abi/linux.js';
import { native, type ExecProbe, type ProbeCreds } from '../../native.js';
import { decodeElf } from './elf.js';
import { LoaderErrors } from './loaderErrors.js';
import { closeFile, openFile, readFully } from './readFully.js';
import { followScripts, type ExecFileAccess } from './script.js';

/** Most bytes read from the file in one go (decodeElf asks for a page, the headers, PT_INTERP). */
const MAX_READ = 1 << 16;
/** Bytes the probe reads: the headers of any ordinary executable (and a whole '#!' line). */
const PROBE_BYTES = 1 << 16;

/**
 * What execve would fail with before its point of no return, for the program at `path` (0: it
 * can go on): each file is opened without waiting (O_NONBLOCK: a FIFO never blocks the open), it
 * must be a regular file with execute permission (EACCES otherwise, as Linux's may_open says for
 * directories, devices and FIFOs), a '#!' script's line must parse and its interpreter pass the
 * same checks, at most five scripts deep (script.ts), and the ELF file they lead to must have
 * headers that parse (ENOEXEC). Each file is looked at in one task on libuv's pool (open,
 * fstat, access and its first 64 KiB: native execProbe), never on the event loop thread; headers
 * past those bytes (rare) are read in bounded pieces the same way Node reads files. The loader
 * checks the same again in the stub when it maps the file.
 *
 * `resolve` turns a path as the program would open it (relative to its working directory) into
 * one Node can open; it is applied to the program and to every '#!' interpreter. `creds`: the
 * program's filesystem ids and groups when it changed them (files are then opened and checked
 * as it would: a program that dropped root gets EACCES where it would natively).
 * `onThisThread`: every file call made on the calling thread, which it blocks (a sentry worker,
 * whose exec waits for the answer anyway; never the event loop thread, whose default is the pool).
 *
 * @example
 * ```ts
 * const errno = await checkExecutable('a.out', (p) => join('/proc/1234/cwd', p)); // 0, or ENOENT, EACCES, ENOEXEC, ELOOP…
 * ```
 */
export async function checkExecutable(path: string, resolve: (path: string) => string = (p) => p, creds?: ProbeCreds, onThisThread = false): Promise<number> {
  try {
    const target = await followScripts(probeAccess(resolve, creds, onThisThread), path, []);
    const { real, probe } = target.file;
    // All of a file shorter than the probe is in hand: no read goes past it.
    const whole = probe.head.length < PROBE_BYTES;
    await decodeElf(async (offset, length) => {
      const end = offset + BigInt(length);
      if (whole || end <= BigInt(probe.head.length)) return probe.head.subarray(Math.min(Number(offset), probe.head.length), Math.min(Number(end), probe.head.length));
      return onThisThread ? readAtHere(real, offset, Math.min(length, MAX_READ)) : readAt(real, offset, Math.min(length, MAX_READ));
    }, target.path);
    return 0;
  } catch (e) {
    const errno = (e as { errno?: unknown }).errno;
    return typeof errno === 'number' ? Math.abs(errno) : ERRNO.ENOEXEC;
  }
}

/** A file execve would open, as the probe saw it (`real`: the path Node opened). */
interface Probed {
  real: string;
  probe: ExecProbe;
}

/** Files looked at by the native probe, checked as execve opens them (see {@link checkExecutable}). */
function probeAccess(resolve: (path: string) => string, creds: ProbeCreds | undefined, onThisThread: boolean): ExecFileAccess<Probed> {
  return {
    open: async (p) => {
      const real = resolve(p);
      let probe: ExecProbe;
      try {
        probe = onThisThread ? native.execProbeSync(real, PROBE_BYTES, creds) : await native.execProbe(real, PROBE_BYTES, creds);
      } catch (e) {
        throw (e as { syscall?: string }).syscall === 'open' ? openError(p, e) : e;
      }
      if ((probe.mode & S_IFMT) !== S_IFREG) throw LoaderErrors.Access(p, 'is not a regular file');
      if (!probe.executable) throw LoaderErrors.Access(p, 'is not executable');
      return { real, probe };
    },
    head: async (f) => f.probe.head,
    close: async () => undefined,
  };
}

function openError(path: string, e: unknown): unknown {
  const { code, errno } = e as NodeJS.ErrnoException;
  if (code === 'ENOENT' || code === 'ENOTDIR') return LoaderErrors.NoFile(path, errno);
  if (code === 'EACCES' || code === 'EPERM') return LoaderErrors.Access(path, 'cannot be opened', errno);
  return e;
}

/** Bytes at `offset` of the file at `path` (fewer at its end): headers the probe did not hold. */
async function readAt(path: string, offset: bigint, length: number): Promise<Uint8Array> {
  const fd = await openFile(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  try {
    return await readFully(fd, offset, length);
  } finally {
    await closeFile(fd);
  }
}

/** {@link readAt} on the calling thread (a sentry worker's check). */
function readAtHere(path: string, offset: bigint, length: number): Uint8Array {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  try {
    const buf = Buffer.alloc(length);
    let got = 0;
    while (got < length) {
      const n = readSync(fd, buf, got, length - got, Number(offset) + got);
      if (n === 0) break;
      got += n;
    }
    return buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}
