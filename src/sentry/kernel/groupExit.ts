import type { SentryResult } from '../protocol.js';

/**
 * The program ended (exit_group, a fatal signal, a dead stub): thrown from wherever the sentry
 * learns it, out of every handler, to the kernel's run loop, which returns `result`.
 *
 * @example
 * ```ts
 * throw new GroupExit({ kind: 'killed', signal: SIG.SIGSEGV });
 * ```
 */
export class GroupExit {
  constructor(readonly result: SentryResult) {}
}
