/**
 * The `-c` summary: per-syscall time, calls and errors, printed as strace
 * 6.x prints its table.
 *
 * @module
 */

import { syscallName } from '../../abi/syscalls.js';

/**
 * One row's totals.
 *
 * @example
 * ```ts
 * summary.rows(); // [{ sysno: 0, calls: 3, errors: 0, nanoseconds: 1500 }, ...]
 * ```
 */
export interface SyscallTotals {
  sysno: number;
  calls: number;
  errors: number;
  /** Total time in nanoseconds. */
  nanoseconds: number;
}

/**
 * How {@link SyscallSummary.format} orders rows (strace `-S`).
 *
 * @example
 * ```ts
 * summary.format('calls'); // rows by call count, like strace -S calls
 * ```
 */
export type SummarySort = 'time' | 'calls' | 'errors' | 'name' | 'nothing';

const HEADER = '% time     seconds  usecs/call     calls    errors syscall';

/**
 * Counts calls, errors and time per syscall and prints strace -c's table.
 * Record only calls that returned (strace leaves exit_group and the like out).
 *
 * @example
 * ```ts
 * const s = new SyscallSummary();
 * s.record(SYS.openat, false, 12_000);
 * s.record(SYS.openat, true, 3_000);
 * process.stderr.write(s.format());
 * // % time     seconds  usecs/call     calls    errors syscall
 * // ------ ----------- ----------- --------- --------- ----------------
 * // 100.00    0.000015           7         2         1 openat
 * // ------ ----------- ----------- --------- --------- ----------------
 * // 100.00    0.000015           7         2         1 total
 * ```
 */
export class SyscallSummary {
  readonly #rows = new Map<number, SyscallTotals>();

  /** Count one call of `sysno` that took `nanoseconds` and failed or not. */
  record(sysno: number, error: boolean, nanoseconds: number | bigint): void {
    let row = this.#rows.get(sysno);
    if (!row) {
      row = { sysno, calls: 0, errors: 0, nanoseconds: 0 };
      this.#rows.set(sysno, row);
    }
    row.calls++;
    if (error) row.errors++;
    const ns = Number(nanoseconds);
    if (Number.isFinite(ns) && ns > 0) row.nanoseconds += ns;
  }

  /** The totals so far, one entry per syscall seen, by syscall number. */
  rows(): SyscallTotals[] {
    return [...this.#rows.values()].sort((a, b) => a.sysno - b.sysno).map((r) => ({ ...r }));
  }

  /** Add another summary's counts to this one (e.g. from another worker). */
  merge(other: SyscallSummary): void {
    for (const r of other.rows()) {
      const row = this.#rows.get(r.sysno);
      if (row) {
        row.calls += r.calls;
        row.errors += r.errors;
        row.nanoseconds += r.nanoseconds;
      } else {
        this.#rows.set(r.sysno, { ...r });
      }
    }
  }

  /**
   * The table, newline-terminated; empty when nothing was recorded (strace
   * prints nothing then). Rows sorted by time, most first (ties by syscall
   * number), unless `sort` says otherwise.
   */
  format(sort: SummarySort = 'time'): string {
    const rows = this.rows();
    if (rows.length === 0) return '';
    const byName = (a: SyscallTotals, b: SyscallTotals): number => {
      const [x, y] = [syscallName(a.sysno), syscallName(b.sysno)];
      return x < y ? -1 : x > y ? 1 : 0;
    };
    const order: Record<SummarySort, ((a: SyscallTotals, b: SyscallTotals) => number) | undefined> = {
      time: (a, b) => b.nanoseconds - a.nanoseconds,
      calls: (a, b) => b.calls - a.calls,
      errors: (a, b) => b.errors - a.errors,
      name: byName,
      nothing: undefined,
    };
    const cmp = order[sort];
    if (cmp) rows.sort((a, b) => cmp(a, b) || a.sysno - b.sysno);
    const totalNs = rows.reduce((s, r) => s + r.nanoseconds, 0);
    const totalCalls = rows.reduce((s, r) => s + r.calls, 0);
    const totalErrors = rows.reduce((s, r) => s + r.errors, 0);
    const width = Math.max(15, ...rows.map((r) => syscallName(r.sysno).length)) + 1;
    const rule = `------ ----------- ----------- --------- --------- ${'-'.repeat(width)}`;
    const lines = [HEADER, rule];
    for (const r of rows) {
      const pct = totalNs > 0 ? (r.nanoseconds * 100) / totalNs : 0;
      lines.push(row(pct, r.nanoseconds, r.calls, r.errors, syscallName(r.sysno)));
    }
    lines.push(rule, row(100, totalNs, totalCalls, totalErrors, 'total'));
    return lines.join('\n') + '\n';
  }
}

/** One table line: `%6.2f %11.6f %11lu %9u %9s %s` (errors blank when 0). */
function row(pct: number, ns: number, calls: number, errors: number, name: string): string {
  const seconds = formatSeconds(ns);
  const usecsPerCall = calls > 0 ? Math.floor(ns / calls / 1000) : 0;
  const cols = [
    pct.toFixed(2).padStart(6), seconds.padStart(11), String(usecsPerCall).padStart(11), String(calls).padStart(9),
    (errors ? String(errors) : '').padStart(9), name,
  ];
  return cols.join(' ');
}

/** Nanoseconds as seconds with six decimals, rounded to the microsecond. */
function formatSeconds(ns: number): string {
  const us = Math.round(ns / 1000);
  return `${Math.floor(us / 1e6)}.${String(us % 1e6).padStart(6, '0')}`;
}
