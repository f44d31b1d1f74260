import { native } from '../native.js';
import type { KeepAlivePool } from './keepAlive.js';

/**
 * Platforms that keep Node alive (not unref()ed, not closed). Exit watches are the addon's,
 * one set for the process: they keep the event loop alive while any platform does. Protected
 * by: the main thread (platforms live there).
 */
let keeping = 0;

/**
 * A platform starts (+1), is unref()ed (-1), ref()ed again (+1) or closes while keeping Node
 * alive (-1): the exit watches follow whether any platform keeps it alive.
 *
 * @example
 * ```ts
 * platformKeepsAlive(-1); // platform.unref()
 * ```
 */
export function platformKeepsAlive(delta: 1 | -1): void {
  const before = keeping > 0;
  keeping += delta;
  const after = keeping > 0;
  if (before !== after) native.setExitWatchesKeepAlive(after);
}

/**
 * Whether one platform keeps Node alive: its pools' idle workers and, with every other
 * platform's, the exit watches. Starts on; `set(false)` is platform.unref(), `end()` its close.
 *
 * @example
 * ```ts
 * const keep = new KeepAlive(() => [tracers]);
 * keep.set(false); // platform.unref()
 * ```
 */
export class KeepAlive {
  /** Protected by: the event loop. */
  #on = true;
  #ended = false;

  constructor(private readonly pools: () => KeepAlivePool[]) {
    platformKeepsAlive(1);
  }

  get on(): boolean {
    return this.#on;
  }

  set(on: boolean): void {
    if (this.#ended || on === this.#on) return;
    this.#on = on;
    platformKeepsAlive(on ? 1 : -1);
    for (const p of this.pools()) p.keepAlive = on;
  }

  /** The platform closes: it keeps nothing alive any more (its watches end with its stubs). */
  end(): void {
    if (this.#ended) return;
    if (this.#on) platformKeepsAlive(-1);
    this.#ended = true;
  }
}

