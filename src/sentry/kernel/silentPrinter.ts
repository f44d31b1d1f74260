import type { StracePrinter } from '../strace/printer.js';

/**
 * The printer of a run that prints and counts nothing: what StracePrinter does when no call is
 * traced, `-c` is off and no output is asked for (every method returns at its first check).
 */
const SILENT: Pick<StracePrinter, keyof StracePrinter> = {
  enter() {},
  exit() {},
  exitCall() {},
  recorded() {},
  holdLines: () => () => undefined,
  execCall: () => undefined,
  exec() {},
  start() {},
  signal() {},
  killed() {},
  exited() {},
  attached() {},
  flush() {},
  close() {},
  summaryText: () => undefined,
};

/**
 * The silent printer (see SILENT): what a kernel holds until {@link tracePrinter} gives its own.
 *
 * @example
 * ```ts
 * strace: StracePrinter = silentPrinter();
 * ```
 */
export function silentPrinter(): StracePrinter {
  return SILENT as StracePrinter;
}

/**
 * Whether `p` is the silent printer: a call's entry time is then never shown nor counted (a
 * clock read and a BigInt saved per trap).
 *
 * @example
 * ```ts
 * const start = isSilent(k.strace) ? 0n : process.hrtime.bigint();
 * ```
 */
export function isSilent(p: StracePrinter): boolean {
  return p === (SILENT as StracePrinter);
}
