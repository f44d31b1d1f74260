import { close, open, read } from 'node:fs';

// node:fs's callback API rather than node:fs/promises: the latter loads a few ms of Node's
// stream code on the main thread at start-up, for reads that most runs never make.

/**
 * Opens `path` with `flags` (a string or O_* bits) off the event loop; rejects like fs.open.
 *
 * @example
 * ```ts
 * const fd = await openFile('/bin/true', 'r');
 * ```
 */
export function openFile(path: string, flags: string | number): Promise<number> {
  return new Promise((resolve, reject) => open(path, flags, (e, fd) => (e ? reject(e) : resolve(fd))));
}

/** Closes an fd openFile gave; errors are ignored (nothing was written through it). */
export function closeFile(fd: number): Promise<void> {
  return new Promise((resolve) => close(fd, () => resolve()));
}

/**
 * `length` bytes of an open file at `offset`, fewer only at its end (reads until then).
 *
 * @example
 * ```ts
 * const header = await readFully(fd, 0n, 64);
 * ```
 */
export async function readFully(fd: number, offset: bigint, length: number): Promise<Uint8Array> {
  const buf = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const n = await new Promise<number>((resolve, reject) => read(fd, buf, got, length - got, Number(offset) + got, (e, bytes) => (e ? reject(e) : resolve(bytes))));
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}
