/**
 * How long a waiter spins for the next trap before it sleeps, decided from what it has seen
 * rather than a fixed budget (gVisor's fast-path controller, systrap/metrics.go, in small).
 *
 * Spinning pays when the next trap comes within the budget: the waiter sees it in about a
 * microsecond instead of a futex wake-up's tens. It only burns a core when the trap comes later,
 * and is certain waste when no trap can come at all. So:
 *
 * - no context runs in a stub (every task is parked in the sentry: sleeping, waiting on a
 *   futex, stopped): nothing can trap, no spin at all; the sleep ends at the next timer;
 * - otherwise the budget is the full one while recent waits have been short (an average of the
 *   last ~8, each counted at most 4 budgets long), and none while they have been longer: a
 *   program blocked in a read, or one that traps every few milliseconds, stops costing a
 *   core, and one that traps again at once keeps the fast path.
 *
 * Waits that slept are measured too (from their start to the trap), so a program whose traps
 * become frequent again brings the average down and the spinning back, with no probing: a
 * futex wake-up (tens of µs) is far below the budget.
 *
 * @example
 * ```ts
 * const spin = new SpinController(BUDGETS.workerSpinNs);
 * const start = performance.now();
 * if (!spinFor(spin.budget(anyInStub))) sleepOnDoorbell();
 * spin.record((performance.now() - start) * 1e6);
 * ```
 */
export class SpinController {
  /** The spin budget when spinning pays (ns); 0 turns spinning off (one CPU). */
  readonly maxNs: number;
  /** Recent waits' average length, ns (exponential, weight 1/8). Protected by: its one thread. */
  #averageNs = 0;

  constructor(maxNs: number) {
    this.maxNs = maxNs;
  }

  /** The recent waits' average length in ns (what the decision is made from). */
  get averageNs(): number {
    return this.#averageNs;
  }

  /**
   * The spin budget for the next wait, in ns. `canTrap`: whether some context runs in a stub
   * (could trap) at all.
   */
  budget(canTrap: boolean): number {
    if (!canTrap || this.maxNs <= 0) return 0;
    return this.#averageNs <= this.maxNs ? this.maxNs : 0;
  }

  /**
   * A wait ended `ns` after it began, by a trap or other work (spinning or asleep). Waits that
   * could not end in a trap (no context in a stub) are not recorded: they say nothing of how
   * soon a running program traps.
   */
  record(ns: number): void {
    const capped = Math.min(Math.max(ns, 0), 4 * this.maxNs);
    this.#averageNs += (capped - this.#averageNs) / 8;
  }
}
