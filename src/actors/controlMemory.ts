import { PER_THREAD, contextSlotAddr, controlBase, controlSize, threadSlotAddr, abi } from '../abi/stub.js';
import { THREAD_CONTEXT } from '../abi/sysmsg.js';
import { Errors } from '../errors.js';
import type { FileRange, MemoryFile } from '../memoryFile.js';
import type { StubRegion } from '../abi/stub.js';
import { ContextIds } from './contextSlots.js';

/**
 * One stub's control memory (gVisor maps one shared region into every stub; we give each stub
 * its own range of the memory file, laid out as the stub region is, see controlBase): its
 * syscall thread's message, the context queue, the ThreadContext slots and the sysmsg threads'
 * shared parts. Nothing in it is another stub's, so a program that corrupts its own control
 * memory corrupts nothing but its own.
 *
 * Lifetime: allocated when the stub's syscall thread starts; given back to the memory file once
 * the stub is reaped *and* no context still views a slot in it (a context's view must never
 * reach memory handed to another stub). Protected by: the event loop.
 *
 * @example
 * ```ts
 * const control = new ControlMemory(memoryFile, region);
 * control.allocate();
 * const { id, slot } = control.bindContext(); // a context's id and ThreadContext slot
 * control.unbindContext(id);
 * control.ownerReaped(); // frees the range: no context is bound
 * ```
 */
export class ControlMemory {
  /** The range, from allocate() until freed. */
  #range?: FileRange;
  /** The rules area of a program's own filter (see Subprocess.installRules), freed with the rest. */
  #rules?: FileRange;
  /** Context ids of this stub (each names a ThreadContext slot here). */
  readonly #ids = new ContextIds();
  /** Contexts bound to this stub (each views its slot). */
  #users = 0;
  #reaped = false;
  #freed = false;

  /**
   * @param file where the control memory lives: the platform's memory file, or (`own`) a file
   * of this stub's alone (a forked process's, sized for its control memory and rules, see
   * MemoryFile.adopt), closed when the control memory is freed.
   */
  constructor(
    readonly file: MemoryFile,
    readonly region: StubRegion,
    readonly own = false,
  ) {}

  /** How a worker maps the file the control memory is in (see workerFile). */
  get ref() {
    return this.file.ref;
  }

  /** Takes the range from the memory file. Precondition: not allocated yet. */
  allocate(): void {
    if (this.#range) throw Errors.InvalidArg('control memory allocated twice');
    this.#range = this.file.allocate(controlSize(this.region));
  }

  /** The rules area, once taken (see allocateRules). */
  get rules(): FileRange | undefined {
    return this.#rules;
  }

  /** Takes the rules area (a program's own filter). Precondition: none taken yet. */
  allocateRules(): FileRange {
    if (this.#rules) throw Errors.InvalidArg('rules area allocated twice');
    this.#rules = this.file.allocate(abi.STUB_RULES_SIZE);
    return this.#rules;
  }

  /**
   * The part at stub address `addr` (`len` bytes) as a memory-file range.
   * Precondition: allocated, and [addr, addr + len) lies in the control memory.
   */
  rangeAt(addr: bigint, len: number): FileRange {
    const base = controlBase(this.region);
    if (!this.#range || addr < base || addr + BigInt(len) > this.region.end) throw Errors.InvalidArg(`no control memory at 0x${addr.toString(16)}`);
    const start = this.#range.start + Number(addr - base);
    return { start, end: start + len };
  }

  /** The ThreadContext slot of context `id`. */
  contextSlot(id: number): FileRange {
    return this.rangeAt(contextSlotAddr(this.region, id), THREAD_CONTEXT.allocatedSize);
  }

  /** The shared part (signal stack and Msg page) of sysmsg thread slot `slot`. */
  threadShared(slot: number): FileRange {
    return this.rangeAt(threadSlotAddr(this.region, slot) + BigInt(PER_THREAD.sharedOffset), PER_THREAD.sharedSize);
  }

  /** A context binds here: its id and slot. Throws when all 4095 ids are taken. */
  bindContext(): { id: number; slot: FileRange } {
    const id = this.#ids.alloc();
    const slot = this.contextSlot(id);
    this.#users++;
    return { id, slot };
  }

  /**
   * Keeps the memory (and its fd, which another thread may still be about to map: a sentry
   * told of a fork child) until the returned function is called, as a bound context does.
   */
  hold(): () => void {
    this.#users++;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.#users--;
      this.#maybeFree();
    };
  }

  /** The id and slot the next bindContext() gives (a fork child's first context, see forkForSentry). */
  nextContext(): { id: number; slot: FileRange } {
    const id = this.#ids.peek();
    return { id, slot: this.contextSlot(id) };
  }

  /** A context leaves: its id is free again (for this stub only, see ContextIds). */
  unbindContext(id: number): void {
    this.#ids.free(id);
    this.#users--;
    this.#maybeFree();
  }

  /** The stub was reaped: the range goes back once no context views it. */
  ownerReaped(): void {
    this.#reaped = true;
    this.#maybeFree();
  }

  #maybeFree(): void {
    if (!this.#reaped || this.#users > 0 || this.#freed) return;
    this.#freed = true;
    if (this.own) this.file.close();
    else for (const r of [this.#range, this.#rules]) if (r) this.file.free(r);
    this.#range = this.#rules = undefined;
  }
}
