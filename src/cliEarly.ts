/**
 * What `systrap run` loads first: the tracer pool, whose worker then starts while the rest of
 * the run module loads. Built, this file is the loader of a bundle of its own
 * (scripts/bundle.mjs), whose modules (the pool, piscina, errors, the addon's binding) the run
 * module's bundle shares rather than holding copies: one SystrapError class, one early pool.
 */
export { startTracersEarly } from './actors/tracerPool.js';
export { startHostEarly } from './actors/hostPool.js';
export { resolveWorker } from './workerFile.js';
// The option parser too: `run`'s command line is read from the code cache, and the run
// module's bundle shares its modules (the syscall tables, the trace-spec parser).
export { parseRunArgs } from './cliRunArgs.js';
export { UsageError } from './cliOptions.js';
