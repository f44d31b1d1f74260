/**
 * A shared 32-bit word a waiter watches (see waitForTrap): it is "ready" once it no longer reads
 * `value` (a context's state left None, the doorbell moved past what was seen, mail arrived).
 *
 * @example
 * ```ts
 * const state: WatchedWord = { words: new Int32Array(slot), index: THREAD_CONTEXT.state / 4, value: ContextState.None };
 * ```
 */
export interface WatchedWord {
  readonly words: Int32Array;
  readonly index: number;
  value: number;
}
