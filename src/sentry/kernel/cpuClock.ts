import { existsSync } from 'node:fs';
import { native } from '../../native.js';

/**
 * A process's CPU clock (CLOCK_PROCESS_CPUTIME_ID, glibc's clock()): the CPU time of its stub
 * and of the stub's sysmsg threads together, to the nanosecond (native cpuClockNs). Passed to
 * the kernel, the call would read the clock of the one sysmsg thread that made it (each was a
 * process of its own; a thread made by a transaction still is), which the program's threads
 * move between: its time went backwards half the time. Never backwards here either (a sysmsg thread that is gone takes its time with it).
 * The time sysmsg threads spin for the sentry counts, as in getrusage (see cpuTime.ts).
 *
 * @example
 * ```ts
 * const clock = new ProcessCpuClock(() => [stub.pid, ...sched.hostTids()]);
 * clock.nowNs(); // 12_345_678n
 * ```
 */
export class ProcessCpuClock {
  /** The highest value read so far. Protected by: the sentry worker. */
  #floor = 0n;
  /** Whether each sysmsg thread is a process apart from the stub, by tid. */
  readonly #apartBy = new Map<number, boolean>();

  #apart(stub: number, tid: number): boolean {
    let a = this.#apartBy.get(tid);
    if (a === undefined) this.#apartBy.set(tid, (a = tid !== stub && !existsSync(`/proc/${stub}/task/${tid}`)));
    return a;
  }

  /** `pids`: the stub's pid and its sysmsg threads' tids (host view), as known now. */
  constructor(private readonly pids: () => number[]) {}

  nowNs(): bigint {
    const [stub, ...tids] = this.pids();
    // Threads of the stub are in its process clock already; a sysmsg thread made by ptrace is a
    // process of its own (its membership never changes: looked up once).
    const own = tids.filter((tid) => this.#apart(stub, tid));
    const v = native.cpuClockNs([stub, ...own]);
    if (v > this.#floor) this.#floor = v;
    return this.#floor;
  }
}
