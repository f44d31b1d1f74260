import { native, type NativeMemoryFile } from './native.js';
import { Errors } from './errors.js';
import { PAGE_SIZE } from './abi/linux.js';

/**
 * A range of the memory file, `[start, end)` in bytes, page aligned (gVisor's memmap.FileRange).
 */
export interface FileRange {
  readonly start: number;
  readonly end: number;
}

/**
 * How another thread (a runner or sentry worker) finds a platform's memory file: Node's fd for
 * it, its window, and a token unique to the file (fd numbers are reused once a platform
 * closes). See `workerFile` in src/shm/sharedFile.ts.
 */
export interface MemoryFileRef {
  readonly fd: number;
  readonly maxSize: number;
  readonly token: string;
}

/** Options of a memory file. */
export interface MemoryFileOptions {
  /** Largest size the file may grow to (address space reserved in Node). Default 64 GiB. */
  maxSize?: number;
  /** Bytes added at a time when the file must grow. Default 16 MiB. */
  growBy?: number;
}

/**
 * The memory shared by Node and every stub: a memfd (`systrap-memory`) that Node maps and that
 * stubs map by fd (gVisor's pgalloc.MemoryFile). Application memory, syscall-thread messages
 * and (later) context slots are ranges of it.
 *
 * Threading: a MemoryFile belongs to the thread that created it; allocate/free are not
 * synchronised.
 *
 * @example
 * ```ts
 * const range = platform.memoryFile.allocate(4096);
 * platform.memoryFile.view(range).set([0x90, 0xc3]);
 * await as.mapFile(0x400000n, range, 'rx');
 * platform.memoryFile.free(range);
 * ```
 */
export class MemoryFile {
  /**
   * The native file under the allocator: views of any range, and the futex waits and wakes of
   * the shared-memory protocols (context queues, syscall threads) on its words. For the
   * platform's own use and for sentries (see `src/shm/`); users need only allocate/view/free.
   */
  readonly shared: NativeMemoryFile;
  /** How another thread (a runner or sentry worker) maps this file: see `workerFile`. */
  readonly ref: MemoryFileRef;
  readonly #growBy: number;
  /** Free ranges, sorted by start, coalesced. Protected by: single-threaded use. */
  #free: Array<{ start: number; end: number }> = [];
  #allocated = 0;

  constructor(options: MemoryFileOptions = {}, adopt?: { fd: number; name: string }) {
    const maxSize = options.maxSize ?? 64 * 2 ** 30;
    const growBy = options.growBy ?? 16 * 2 ** 20;
    if (!Number.isSafeInteger(maxSize) || maxSize <= 0 || maxSize % PAGE_SIZE)
      throw Errors.InvalidArg('options.maxSize must be a positive multiple of 4096');
    if (!Number.isSafeInteger(growBy) || growBy <= 0 || growBy % PAGE_SIZE)
      throw Errors.InvalidArg('options.growBy must be a positive multiple of 4096');
    this.shared = adopt ? new native.MemoryFile(adopt.name, maxSize, adopt.fd) : new native.MemoryFile('systrap-memory', maxSize);
    this.ref = { fd: this.shared.fd, maxSize, token: native.getRandom(16).toString('hex') };
    this.#growBy = growBy;
    if (adopt) this.#insertFree(0, this.shared.size);
  }

  /**
   * A memory file over a memfd that already has its size and seals (see native adoptMemfd):
   * a forked process's control memory, which the child made. Node maps it (its own duplicate
   * of `fd`; the caller closes `fd`); the whole file is free to allocate.
   *
   * @example
   * ```ts
   * native.adoptMemfd(fd, size);
   * const file = MemoryFile.adopt(fd, size, 'systrap-control');
   * const all = file.allocate(size);
   * ```
   */
  static adopt(fd: number, size: number, name: string): MemoryFile {
    return new MemoryFile({ maxSize: size, growBy: size }, { fd, name });
  }

  /** The memfd in Node's fd table (each stub has it as fd `STUB_MEMFD`). */
  get fd(): number {
    return this.shared.fd;
  }

  /** Current size of the file in bytes. */
  get size(): number {
    return this.shared.size;
  }

  /** Bytes currently allocated. */
  get allocated(): number {
    return this.#allocated;
  }

  /**
   * Allocates `length` bytes (rounded up to pages), zero-filled.
   *
   * @example
   * ```ts
   * const r = memoryFile.allocate(8192); // { start, end }
   * ```
   */
  allocate(length: number): FileRange {
    if (!Number.isSafeInteger(length) || length <= 0) throw Errors.InvalidArg('length must be a positive integer');
    const len = Math.ceil(length / PAGE_SIZE) * PAGE_SIZE;
    let i = this.#free.findIndex((f) => f.end - f.start >= len);
    if (i < 0) {
      // Grow: a free range touching the end of the file counts towards the request.
      const size = this.shared.size;
      const last = this.#free[this.#free.length - 1];
      const tail = last !== undefined && last.end === size ? last.end - last.start : 0;
      const newSize = Math.min(Math.ceil((size + len - tail) / this.#growBy) * this.#growBy, this.shared.maxSize);
      if (newSize - size + tail < len) throw Errors.MemoryFileFull(len);
      this.shared.grow(newSize);
      this.#insertFree(size, newSize);
      i = this.#free.findIndex((f) => f.end - f.start >= len);
    }
    const f = this.#free[i];
    const range = { start: f.start, end: f.start + len };
    if (f.end === range.end) this.#free.splice(i, 1);
    else f.start = range.end;
    this.#allocated += len;
    return range;
  }

  /**
   * Returns a range to the file; its pages go back to the host (hole punched), so a later
   * allocation of the same bytes reads zeros.
   */
  free(range: FileRange): void {
    this.#check(range);
    this.shared.punchHole(range.start, range.end - range.start);
    this.#insertFree(range.start, range.end);
    this.#allocated -= range.end - range.start;
  }

  /**
   * A Uint8Array over the range, shared with every stub that maps it. Writes are seen by the
   * stub at once; the view stays safe to touch after free() or close() (it then reads zeros).
   */
  view(range: FileRange): Uint8Array {
    this.#check(range);
    return new Uint8Array(this.shared.buffer(range.start, range.end - range.start));
  }

  /** Releases the file. Views kept past this point read zeros. */
  close(): void {
    this.shared.close();
  }

  #check(range: FileRange): void {
    if (
      !range ||
      !Number.isSafeInteger(range.start) ||
      !Number.isSafeInteger(range.end) ||
      range.start % PAGE_SIZE ||
      range.end % PAGE_SIZE ||
      range.start >= range.end ||
      range.end > this.shared.size
    )
      throw Errors.InvalidArg('range must be a page-aligned FileRange inside the memory file');
  }

  #insertFree(start: number, end: number): void {
    const list = this.#free;
    let i = 0;
    while (i < list.length && list[i].start < start) i++;
    if (i > 0 && list[i - 1].end > start) throw Errors.InvalidArg('range is already free');
    if (i < list.length && list[i].start < end) throw Errors.InvalidArg('range is already free');
    list.splice(i, 0, { start, end });
    if (i + 1 < list.length && list[i].end === list[i + 1].start) {
      list[i].end = list[i + 1].end;
      list.splice(i + 1, 1);
    }
    if (i > 0 && list[i - 1].end === list[i].start) {
      list[i - 1].end = list[i].end;
      list.splice(i, 1);
    }
  }
}
