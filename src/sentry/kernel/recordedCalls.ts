import type { RingStats } from '../protocol.js';
import type { StracePrinter } from '../strace/printer.js';
import type { PatchMemory, UserTrap } from '../../shm/usertrap.js';
import type { RingCall, TraceRing } from './traceRing.js';
import type { Task } from './task.js';

/** What RecordedCalls needs of its process. */
export interface RecordedCallsHost {
  readonly tgid: number;
  readonly tasks: ReadonlyMap<number, Task>;
  readonly strace: StracePrinter;
  readonly usertrap?: UserTrap;
  readonly mem: PatchMemory;
}

/**
 * The calls a process's stub threads made and recorded themselves (its TraceRing), on their
 * way to the trace: marked at every turn of the process and before each of its traps is
 * handled (collect), decoded once the turn's traps are answered (decode). The process's lines
 * printed meanwhile (its trapped calls', formatted while their threads were stopped; its
 * signals, its end) wait for the records marked before them, so that each thread's lines stay
 * in the order of its calls and no trap waits for records to be decoded.
 * Protected by: the sentry thread.
 *
 * @example
 * ```ts
 * const recorded = new RecordedCalls(process, new TraceRing(file, queueRange, size), kernel.traceRing);
 * recorded.collect(false);   // before the traps of a turn
 * recorded.decode(16);       // after them
 * ```
 */
export class RecordedCalls {
  /** Lines of this process waiting for records, in order; `at`: the ring's mark when each came. */
  readonly #held: Array<{ at: number; print: () => void }> = [];
  /** Records decoded (a slice's count, see decode). */
  #seen = 0;
  /** A decode under way: its lines print at once. */
  #decoding = false;
  /** Tasks by context id, for the records' contexts (refreshed when one is not found). */
  #byContext = new Map<number, Task>();
  /** Sites of records this patched (see #record). */
  readonly #sitesPatched = new Set<bigint>();
  readonly #unhook: () => void;

  constructor(
    private readonly host: RecordedCallsHost,
    private readonly ring: TraceRing,
    private readonly program: { readonly calls: ReadonlySet<number>; readonly stats: RingStats },
  ) {
    this.#unhook = host.strace.holdLines((tid, print) => this.#hold(tid, print));
  }

  /** Records marked and not decoded, or lines waiting for them. */
  get waiting(): boolean {
    return this.ring.pending || this.#held.length > 0;
  }

  /**
   * Marks the records made so far. `settle`: a trap is about to be handled, and a record still
   * being written may be the trapping thread's last (see TraceRing.collect).
   */
  collect(settle: boolean): void {
    this.ring.collect(settle);
  }

  /** Decodes up to `max` records, each waiting line printed once the records marked before it are. */
  decode(max = Infinity): void {
    const ring = this.ring;
    this.#decoding = true;
    const stop = this.#seen + max;
    // A mark the ring can no longer reach (reset after the program wrote over it) is passed.
    const reachable = (at: number) => ((at - ring.decoded) >>> 0) <= ((ring.marked - ring.decoded) >>> 0);
    try {
      for (;;) {
        const h = this.#held[0];
        const target = h ? h.at : ring.marked;
        if (reachable(target)) ring.decode(this.#onRecord, target, stop - this.#seen);
        if (ring.decoded !== target && reachable(target)) break;
        if (!h) break;
        this.#held.shift();
        h.print();
      }
    } finally {
      this.#decoding = false;
    }
  }

  /** The process ended: everything is decoded and printed, the ring's counts go to the program's. */
  end(): void {
    this.collect(true);
    this.decode();
    this.#unhook();
    const s = this.ring.stats;
    this.program.stats.fullWaits += s.fullWaits;
    this.program.stats.faults += s.faults;
    this.program.stats.corrupt += s.corrupt;
  }

  /** A line of this process waits while records marked before it are not decoded. */
  #hold(tid: number, print: () => void): boolean {
    if (this.#decoding || !this.waiting) return false;
    if (tid !== this.host.tgid && !this.host.tasks.has(tid)) return false;
    this.#held.push({ at: this.ring.marked, print });
    return true;
  }

  readonly #onRecord = (c: RingCall): void => {
    this.#seen++;
    // A record of a call no stub makes, or one its decoder cannot read, is the program's writing.
    if (!this.program.calls.has(c.sysno)) {
      this.program.stats.corrupt++;
      return;
    }
    try {
      this.#record(c);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).syscall !== undefined) throw e; // the output's, not the record's
      this.program.stats.corrupt++;
    }
  };

  #record(c: RingCall): void {
    this.program.stats.records++;
    // Its site is patched as a trapped call's would be (safe with threads running it), until
    // it is: the records already made through its signal must not each read the code back.
    const ut = this.host.usertrap;
    if (c.site === 0n) {
      if (ut) ut.stats.calls++;
    } else if (ut && !this.#sitesPatched.has(c.site) && ut.tryPatch(this.host.mem, c.site, c.sysno)) {
      if (this.#sitesPatched.size >= 4096) this.#sitesPatched.clear();
      this.#sitesPatched.add(c.site);
    }
    // No times asked for (0n): none shown either.
    this.host.strace.recorded(this.#tidOf(c.context), c.sysno, c.args, c.ret, c.mem, c.entryNs, c.exitNs);
  }

  /** The tid of the thread running in context `id` (the process's, if none is: it went). */
  #tidOf(id: number): number {
    let t = this.#byContext.get(id);
    if (!t || this.host.tasks.get(t.tid) !== t || t.id !== id) {
      this.#byContext = new Map([...this.host.tasks.values()].map((x) => [x.id, x]));
      t = this.#byContext.get(id);
    }
    return t?.tid ?? this.host.tgid;
  }
}
