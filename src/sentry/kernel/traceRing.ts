import { QUEUE_OFFSET } from '../../abi/stub.js';
import { TRACE_CAPTURE, TRACE_RECORD, TRACE_RING, TraceRecordKind } from '../../abi/traceRing.js';
import type { FileRange } from '../../memoryFile.js';
import type { SharedFile } from '../../shm/sharedFile.js';
import type { MemoryReader } from '../strace/decode/umove.js';
import type { RingStats } from '../protocol.js';

/** One recorded call, as the sentry decodes it. */
export interface RingCall {
  /** The ThreadContext whose program thread made it. */
  context: number;
  sysno: number;
  args: bigint[];
  ret: bigint;
  /** CLOCK_MONOTONIC ns (process.hrtime's clock), 0n when the spec asked for no times. */
  entryNs: bigint;
  exitNs: bigint;
  /** The program's rip past its `syscall` when the call came by a signal (its site may be patched), else 0n. */
  site: bigint;
  /** What the stub copied of its arguments: reads of anything else fail (the decoder prints addresses). */
  mem: MemoryReader;
}

/**
 * Where the trace ring of the process whose context queue is `queue` ends in their file (a
 * worker maps the file at least that far).
 *
 * @example
 * ```ts
 * const file = workerFile(spec.memory, ringEnd(spec.queue));
 * ```
 */
export function ringEnd(queue: FileRange): number {
  return queue.start + (TRACE_RING.offset - QUEUE_OFFSET) + TRACE_RING.size;
}

/** How long a drain that must reach the end waits for a record being written (the writer runs stub code only). */
const SETTLE_SPINS = 200_000;
/** More than a stub could count between two drains: the program wrote the counter. */
const MAX_COUNT_STEP = 1 << 24;
/** Threads waiting for room are woken at least this often (ms), whatever the ring's words say. */
const WAKE_EVERY_MS = 20;
/** A record still being written after this long (ms) is taken as written over: its writer ran stub code only. */
const STUCK_MS = 1000;

const EMPTY = new Uint8Array(0);

/** The bytes the stub copied, by program address (a MemoryReader over a record's captures). */
class CapturedMemory implements MemoryReader {
  constructor(private readonly captures: ReadonlyArray<{ addr: bigint; bytes: Uint8Array }>) {}

  read(addr: bigint, len: number): Uint8Array | null {
    const b = this.readSome(addr, len);
    return b.length === len ? b : null;
  }

  readSome(addr: bigint, len: number): Uint8Array {
    let best: Uint8Array | undefined;
    for (const c of this.captures) {
      if (addr < c.addr) continue;
      const at = Number(addr - c.addr);
      if (at >= c.bytes.length) continue;
      const b = c.bytes.subarray(at, Math.min(at + len, c.bytes.length));
      if (b.length === len) return b;
      if (!best || b.length > best.length) best = b;
    }
    return best ?? EMPTY;
  }
}

/**
 * A process's trace ring, the sentry's half (native/stub/trace_ring.c is the stub's): the
 * stub's threads append a record per observed call they made themselves; this drains them in
 * the order their room was reserved, which for each program thread is the order of its calls,
 * hands each to `onCall`, zeroes what it consumed and moves tail, waking threads that wait for
 * room. Collected at every turn of the process and before each of its traps is handled, and
 * decoded before any other line is printed, so that a thread's recorded calls come before its
 * next trapped one.
 *
 * Everything here is memory the program can write: sizes and captures are checked when records
 * are marked and again when they are decoded, and a ring written over is reset (counted in
 * `stats.corrupt`).
 * Protected by: the sentry thread.
 *
 * @example
 * ```ts
 * const ring = new TraceRing(file, queueRange, 1 << 20);
 * ring.collect();                                       // at each turn, before its traps
 * ring.decode((call) => console.log(call.sysno, call.ret), ring.marked, 16);
 * ```
 */
export class TraceRing {
  /** Bytes consumed (u32, wraps), the sentry's own count: tail is written from it, never read. */
  #tail = 0;
  /** Rings found holding what no stub writes. */
  #corrupt = 0;
  /** When waiters were last woken (performance.now()). */
  #lastWake = 0;
  /** Since when the record at #tail has been seen being written (ms), or undefined. */
  #writingSince?: number;
  /** The header page's words (head, tail, waiters, the stubs' counters). */
  readonly #head: Uint32Array;
  readonly #data: Uint8Array;
  readonly #dv: DataView;
  readonly #words: Int32Array;
  readonly #tailOffset: number;

  /** `queue`: the process's context queue in `file` (the ring lies at a fixed distance from it). */
  constructor(
    private readonly file: SharedFile,
    queue: FileRange,
    private readonly dataSize: number,
  ) {
    const at = queue.start + (TRACE_RING.offset - QUEUE_OFFSET);
    this.#head = new Uint32Array(file.buffer(at, TRACE_RING.data));
    this.#data = new Uint8Array(file.buffer(at + TRACE_RING.data, dataSize));
    this.#dv = new DataView(this.#data.buffer, this.#data.byteOffset, dataSize);
    this.#words = new Int32Array(this.#data.buffer, this.#data.byteOffset, dataSize / 4);
    this.#tailOffset = at + TRACE_RING.tail;
  }

  /**
   * What the stubs counted, and the times the ring was found written over. The stubs' counters
   * are taken (and zeroed) at each drain: a count no stub could have made in between is the
   * program's writing, and counted as such.
   */
  get stats(): RingStats {
    this.#takeCounts();
    return { records: this.#counts.records, fullWaits: this.#counts.fullWaits, faults: this.#counts.faults, corrupt: this.#corrupt };
  }

  /** The stubs' counters, summed (see stats). */
  readonly #counts = { records: 0, fullWaits: 0, faults: 0 };

  #takeCounts(): void {
    const take = (at: number): number => {
      const n = Atomics.exchange(this.#head, at / 4, 0);
      if (n <= MAX_COUNT_STEP) return n;
      this.#corrupt++;
      return 0;
    };
    this.#counts.records += take(TRACE_RING.records);
    this.#counts.fullWaits += take(TRACE_RING.fullWaits);
    this.#counts.faults += take(TRACE_RING.faults);
    this.#corrupt += take(TRACE_RING.lost);
  }

  /**
   * Hands every complete record to `onCall`, in order (collect, then decode). A record still
   * being written ends the drain, unless `settle`: see collect.
   */
  drain(onCall: (call: RingCall) => void, settle = false): void {
    this.collect(settle);
    this.decode(onCall);
  }

  /** Whether records were collected and are not decoded yet. */
  get pending(): boolean {
    return this.#marked !== this.#tail;
  }

  /**
   * Marks every complete record for decode, without decoding it: a trap of the process is then
   * answered first (its thread runs on while the sentry decodes). A record still being written
   * ends it, unless `settle` (a trap of the process is about to be handled, and the record may
   * be the trapping thread's last call): then it is waited for a little, as its writer has only
   * stub code left to run. Their room goes back to the stubs once they are decoded.
   */
  collect(settle = false): void {
    const head = Atomics.load(this.#head, TRACE_RING.head / 4);
    const size = this.dataSize;
    if ((head & 7) !== 0 || ((head - this.#tail) >>> 0) > size) return this.#skip(head);
    const start = this.#marked;
    let at = start;
    while (at !== head) {
      const off = at & (size - 1);
      let kind = Atomics.load(this.#words, (off >> 2) + 1);
      for (let spins = 0; kind === TraceRecordKind.Writing && settle && spins < SETTLE_SPINS; spins++) kind = Atomics.load(this.#words, (off >> 2) + 1);
      if (kind === TraceRecordKind.Writing) {
        // Its writer runs stub code only: one that never ends was written over.
        const now = performance.now();
        if (at !== start) this.#writingSince = undefined;
        this.#writingSince ??= now;
        if (now - this.#writingSince > STUCK_MS) return this.#skip(head);
        break;
      }
      const len = this.#dv.getUint32(off, true);
      if (len < 8 || len % 8 !== 0 || off + len > size || len > ((head - at) >>> 0) || (kind !== TraceRecordKind.Call && kind !== TraceRecordKind.Pad)) {
        return this.#skip(head);
      }
      at = (at + len) >>> 0;
    }
    if (at !== start) {
      this.#writingSince = undefined;
      this.#takeCounts();
    }
    this.#marked = at;
    this.#wake(false);
  }

  /** How far decode went (a position in the ring). */
  get decoded(): number {
    return this.#tail;
  }

  /** How far collect marked (a position in the ring; decode stops at such positions). */
  get marked(): number {
    return this.#marked;
  }

  /**
   * Decodes what collect marked, in order, in place, up to `upTo` (a position `marked` gave,
   * default all) and at most `max` records; then their room is zeroed (a record's kind must
   * read 0 until written again) and given back. Re-entered: a no-op. Sizes are read again: the
   * program may have written them since.
   */
  decode(onCall: (call: RingCall) => void, upTo = this.#marked, max = Infinity): void {
    if (this.#decoding || upTo === this.#tail || ((upTo - this.#tail) >>> 0) > ((this.#marked - this.#tail) >>> 0)) return;
    this.#decoding = true;
    const size = this.dataSize;
    let end = upTo;
    try {
      let n = 0;
      for (let at = this.#tail; at !== end; ) {
        if (n++ === max) {
          end = at;
          break;
        }
        const off = at & (size - 1);
        const len = this.#dv.getUint32(off, true);
        if (len < 8 || len % 8 !== 0 || off + len > size || len > ((end - at) >>> 0)) {
          this.#corrupt++;
          break;
        }
        if (this.#dv.getUint32(off + 4, true) === TraceRecordKind.Call && len >= TRACE_RECORD.headerSize) onCall(parseRecord(this.#data, this.#dv, off, len));
        at = (at + len) >>> 0;
      }
    } finally {
      this.#decoding = false;
      const from = this.#tail & (size - 1);
      const to = end & (size - 1);
      if (from < to) this.#data.fill(0, from, to);
      else if (end !== this.#tail) {
        this.#data.fill(0, from);
        this.#data.fill(0, 0, to);
      }
      this.#tail = end;
    }
    this.#wake(true);
  }

  /** Records up to here (u32 position) were found complete by collect and wait for decode. */
  #marked = 0;
  /** A decode is under way (see decode). */
  #decoding = false;

  /**
   * Threads wait on tail for room: tail is stored (the sentry's own count: whatever the program
   * wrote there goes) when it moved, and they are woken (all: the one that fits goes on, the
   * rest wait again) when some wait, and at least every WAKE_EVERY_MS whatever the words say.
   */
  #wake(moved: boolean): void {
    // Stored whenever it moved (cheap: a stub reads it for room), woken only when needed (a syscall).
    if (moved) Atomics.store(this.#head, TRACE_RING.tail / 4, this.#tail);
    const now = performance.now();
    const due = Atomics.load(this.#head, TRACE_RING.waiters / 4) !== 0 || now - this.#lastWake > WAKE_EVERY_MS;
    if (!due) return;
    this.#lastWake = now;
    Atomics.store(this.#head, TRACE_RING.tail / 4, this.#tail);
    this.file.futexWake(this.#tailOffset, 1 << 30);
  }

  /**
   * The ring holds what no stub writes (the program wrote over it): what it holds is dropped
   * and zeroed, and head goes back to tail, unless a stub claimed room meanwhile (then the next
   * drain looks again).
   */
  #skip(head: number): void {
    this.#corrupt++;
    this.#marked = this.#tail;
    this.#writingSince = undefined;
    this.#data.fill(0);
    Atomics.store(this.#head, TRACE_RING.tail / 4, this.#tail);
    Atomics.compareExchange(this.#head, TRACE_RING.head / 4, head, this.#tail);
    this.#wake(true);
  }
}

/** A u64 of the record: most are 0 (unused arguments, no times, no site), which costs no BigInt. */
function u64(dv: DataView, at: number): bigint {
  return dv.getUint32(at, true) === 0 && dv.getUint32(at + 4, true) === 0 ? 0n : dv.getBigUint64(at, true);
}

/** What a record without captures decodes from: nothing is readable. */
const NOTHING = new CapturedMemory([]);

/** One record (its size checked against the data it lies in). */
function parseRecord(bytes: Uint8Array, dv: DataView, off: number, len: number): RingCall {
  const args: bigint[] = [];
  for (let i = 0; i < 6; i++) args.push(u64(dv, off + TRACE_RECORD.args + 8 * i));
  const captures: Array<{ addr: bigint; bytes: Uint8Array }> = [];
  const end = off + len;
  for (let p = off + TRACE_RECORD.headerSize; p + TRACE_CAPTURE.headerSize <= end; ) {
    const n = dv.getUint32(p + TRACE_CAPTURE.len, true);
    const room = dv.getUint32(p + TRACE_CAPTURE.room, true);
    const at = p + TRACE_CAPTURE.headerSize;
    if (room % 8 !== 0 || n > room || at + room > end) break;
    if (n > 0) captures.push({ addr: dv.getBigUint64(p + TRACE_CAPTURE.addr, true), bytes: bytes.subarray(at, at + n) });
    p = at + room;
  }
  return {
    context: dv.getUint32(off + TRACE_RECORD.context, true),
    sysno: dv.getUint32(off + TRACE_RECORD.sysno, true),
    args,
    ret: BigInt.asIntN(64, u64(dv, off + TRACE_RECORD.ret)),
    entryNs: u64(dv, off + TRACE_RECORD.entryNs),
    exitNs: u64(dv, off + TRACE_RECORD.exitNs),
    site: u64(dv, off + TRACE_RECORD.site),
    mem: captures.length === 0 ? NOTHING : new CapturedMemory(captures),
  };
}
