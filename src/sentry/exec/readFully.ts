import type { FileHandle } from 'node:fs/promises';

/**
 * `length` bytes of an open file at `offset`, fewer only at its end (reads until then).
 *
 * @example
 * ```ts
 * const header = await readFully(fh, 0n, 64);
 * ```
 */
export async function readFully(fh: FileHandle, offset: bigint, length: number): Promise<Uint8Array> {
  const buf = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, Number(offset) + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buf.subarray(0, got);
}
