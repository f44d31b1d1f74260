import { readFileSync } from 'node:fs';
import { FORWARDED_SIGNALS } from '../../abi/sysmsg.js';
import type { ThreadGroup } from './threadGroup.js';
import type { TakenSignal } from '../protocol.js';

/** How often (ms) a process whose tasks are all parked in the sentry is looked at. */
export const STUB_SIGNAL_POLL_MS = 10;

/** FORWARDED_SIGNALS as a sigset (bit n-1 for signal n). */
export const FORWARDED_SET: bigint = FORWARDED_SIGNALS.reduce((m, s) => m | (1n << BigInt(s - 1)), 0n);


/** What StubSignals uses of the kernel. */
export interface StubSignalHost {
  /** Asks the main thread to take the signals of `set` pending for `p`'s stub; `onTaken` runs in a later turn. */
  takeSignals(p: ThreadGroup, set: bigint, onTaken: (signals: TakenSignal[]) => void): void;
}

/**
 * The process-directed signals pending for stub `hostPid` (ShdPnd in /proc/PID/status); 0 when
 * it is gone.
 *
 * @example
 * ```ts
 * if ((stubPendingSignals(p.hostPid) & FORWARDED_SET) !== 0n) take(p);
 * ```
 */
export function stubPendingSignals(hostPid: number): bigint {
  try {
    const m = /^ShdPnd:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${hostPid}/status`, 'utf8'));
    return m ? BigInt(`0x${m[1]}`) : 0n;
  } catch {
    return 0n; // gone: its death is checkStub's
  }
}

/**
 * Signals sent to a program process's stub (a kill of the pid `ps` shows, F_SETOWN's SIGIO)
 * while none of its threads runs program code: every task of the process parked in the sentry
 * (a sleep, a wait, sigsuspend). Stub threads take those signals only while they run program
 * code (FORWARDED_SIGNALS, see TrapHandler), so then none would, and the kernel would keep them
 * pending in the stub for as long as the program sleeps: `kill PID` of a sleeping `sleep` did
 * nothing. While a process is so parked it is looked at every {@link STUB_SIGNAL_POLL_MS}, and
 * what is pending is taken by its syscall thread (which blocks every signal) and sent to the
 * process, as a stub thread would have handed it over.
 *
 * @example
 * ```ts
 * const stubSignals = new StubSignals(host);
 * stubSignals.poll(kernel.table.live(), performance.now()); // in each turn
 * deadline = Math.min(deadline, stubSignals.nextDeadline()); // before the host sleeps
 * ```
 */
export class StubSignals {
  /** When to look next (performance.now()); Infinity: no process was parked at the last look. Protected by: the kernel's turn. */
  #dueAt = Infinity;
  /** Processes with a take on its way (one at a time each). Protected by: the kernel's turn. */
  readonly #taking = new WeakSet<ThreadGroup>();

  constructor(private readonly host: StubSignalHost) {}

  /** When the host must wake to look (performance.now() time). */
  nextDeadline(): number {
    return this.#dueAt;
  }

  /** Looks at each parked process once its time has come. Precondition: the kernel's turn. */
  poll(procs: Iterable<ThreadGroup>, now: number): void {
    if (now < this.#dueAt && this.#dueAt !== Infinity) return;
    let parked = false;
    for (const p of procs) {
      if (!p.live || p.anyInStub() || p.execing || this.#taking.has(p)) continue;
      parked = true;
      // Armed by the first look that finds a parked process: a process that is parked for
      // less than a period costs nothing.
      if (this.#dueAt === Infinity) continue;
      if ((stubPendingSignals(p.hostPid) & FORWARDED_SET) === 0n) continue;
      this.#taking.add(p);
      this.host.takeSignals(p, FORWARDED_SET, (signals) => {
        this.#taking.delete(p);
        for (const s of signals) p.signals.sendGroup(s.signo, s.info);
      });
    }
    this.#dueAt = parked ? now + STUB_SIGNAL_POLL_MS : Infinity;
  }
}
