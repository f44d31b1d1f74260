import { createRequire } from 'node:module';
import type { Piscina as PiscinaClass } from 'piscina';

// Loaded at the first pool's start, not with the modules that make pools: a sandboxed
// `systrap run` starts no tracer and no runner, and piscina (with node:perf_hooks, node:assert,
// node:async_hooks) is a few ms of its start-up. Not bundled either (a name esbuild does not
// follow): piscina finds its own worker file from its installed folder.
const requireFromHere = createRequire(import.meta.url);
let loaded: typeof PiscinaClass | undefined;

/**
 * piscina's Piscina class, the module loaded at the first call.
 *
 * @example
 * ```ts
 * const Piscina = piscinaClass();
 * const pool = new Piscina({ filename: '/abs/worker.js' });
 * ```
 */
export function piscinaClass(): typeof PiscinaClass {
  return (loaded ??= (requireFromHere('piscina') as { Piscina: typeof PiscinaClass }).Piscina);
}
