import { native, type NativeMemoryFile } from '../native.js';
import type { FileRange, MemoryFileRef } from '../memoryFile.js';

export type { MemoryFileRef };

/**
 * What the shared-memory protocols need of the memory file, on whichever thread maps it: views
 * of ranges, and futex waits and wakes on its words. The native MemoryFile is one; the main
 * thread's is `platform.memoryFile.shared`, a worker's comes from {@link workerFile}.
 *
 * @example
 * ```ts
 * const q = new ContextQueue(range, platform.memoryFile.shared);
 * ```
 */
export type SharedFile = Pick<NativeMemoryFile, 'buffer' | 'futexWait' | 'futexWake' | 'waitWordChange'>;

/** This worker thread's mappings of memory files, by the platform's token for its file. */
const mapped = new Map<string, NativeMemoryFile>();

/**
 * The memory file as mapped in this worker thread: mapped once per thread and file, extended
 * (never moved: views stay valid) when the file has grown past `need`, a range the caller must
 * reach.
 *
 * @example
 * ```ts
 * const f = workerFile(task.memory, task.slot.end);
 * const slot = new Uint32Array(f.buffer(task.slot.start, 4096));
 * ```
 */
export function workerFile(ref: MemoryFileRef, need: number): NativeMemoryFile {
  let f = mapped.get(ref.token);
  if (!f) {
    f = new native.MemoryFile('systrap-memory', ref.maxSize, ref.fd);
    mapped.set(ref.token, f);
  }
  if (f.size < need) f.refresh();
  return f;
}

/**
 * Registers `file`, mapped on this worker thread already (a fork child's control memory the
 * sentry took itself, see localFork.ts), under a new `token`: workerFile finds it by the ref
 * returned, releaseWorkerFile unmaps it. Precondition: `token` names no other file.
 *
 * @example
 * ```ts
 * const memory = adoptWorkerFile(`fork:${pid}:1`, new native.MemoryFile('systrap-control', size, fd));
 * ```
 */
export function adoptWorkerFile(token: string, file: NativeMemoryFile): MemoryFileRef {
  mapped.set(token, file);
  return { token, fd: file.fd, maxSize: file.maxSize };
}

/**
 * Unmaps this worker thread's mapping of the file `ref` names (closes its fd), once nothing on
 * this thread will touch it again: a forked process's own control memory once the process has
 * ended here. Views kept past this read zeros (see NativeMemoryFile.close). Nothing to do for
 * a file this thread never mapped.
 *
 * @example
 * ```ts
 * releaseWorkerFile(child.memory); // its end is handled: the sentry's mapping goes
 * ```
 */
export function releaseWorkerFile(ref: MemoryFileRef): void {
  const f = mapped.get(ref.token);
  if (!f) return;
  mapped.delete(ref.token);
  f.close();
}

/**
 * A range's bytes as 32-bit words (the unit of every atomic and futex in the protocols).
 *
 * @example
 * ```ts
 * const u32 = words(file, slot); Atomics.load(u32, THREAD_CONTEXT.state / 4);
 * ```
 */
export function words(file: SharedFile, range: FileRange): Uint32Array {
  return new Uint32Array(file.buffer(range.start, range.end - range.start));
}
