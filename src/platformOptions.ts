import type { InspectionEvent, Observer } from 'xstate';
import type { MemoryFileOptions } from './memoryFile.js';

/**
 * Options of {@link Platform.newAddressSpace}.
 *
 * @example
 * ```ts
 * const as = await platform.newAddressSpace({ sandbox: true, seccomp: (sandboxed) => programFilter(sandboxed) });
 * ```
 */
export interface NewAddressSpaceOptions {
  /**
   * The seccomp program (compiled, e.g. by `compileSeccomp`) that this stub's sysmsg threads
   * install instead of the platform's: what traps, what passes, what the kernel refuses. The
   * stub is fresh and is never pooled. A function gets whether the stub came out sandboxed (its
   * filter may then leave out rules that only a plain stub needs).
   */
  seccomp?: Uint8Array | ((sandboxed: boolean) => Uint8Array);
  /**
   * Make the stub in a sandbox of its own (user, pid, mount and cgroup namespaces, no
   * capability: Node and other programs do not exist there; see README "Safety"), for a program
   * that must not reach Node. With the platform's `sandbox: 'auto'` (the default) a machine that
   * cannot make the namespaces gives a plain stub instead (see `platform.sandbox`). Fresh, never
   * pooled.
   */
  sandbox?: boolean;
}

/**
 * Options of {@link createPlatform}.
 *
 * @example
 * ```ts
 * const platform = await createPlatform({ pool: false, tracerThreads: 1, lazySource: true });
 * ```
 */
export interface PlatformOptions {
  /**
   * An xstate inspection observer (or function): receives the inspection events of every actor
   * of the platform (pool, subprocesses, syscall threads).
   */
  inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
  /** Most sysmsg threads per stub (used by contexts). Default: available parallelism. */
  maxSysmsgThreads?: number;
  /** Pooling of released stubs; `false` kills them on release. Default `{ maxAvailable: 16 }`. */
  pool?: false | { maxAvailable?: number };
  /** Tracer worker threads. Default: available parallelism (at least 2). */
  tracerThreads?: number;
  /** Memory file sizing. */
  memoryFile?: MemoryFileOptions;
  /** Start a sentry worker now, for a program to run soon (`systrap run` does). Default false. */
  warmSentry?: boolean;
  /**
   * Sandboxes for address spaces that ask for one (programs run by `runProgram`): `'auto'`
   * (default) uses them where the machine can make them and plain stubs elsewhere (see
   * `platform.sandbox` for which and why); `'require'` fails where it cannot; `'off'` never
   * makes them.
   */
  sandbox?: 'auto' | 'require' | 'off';
  /**
   * Make the source stub when a stub is first cloned from it (an address space without a
   * sandbox), not in createPlatform: a process that runs sandboxed programs only (`systrap run`)
   * never needs it, and making it holds up the platform's start by a tracer worker's start.
   * `sourcePid` is 0 until then. Default false.
   */
  lazySource?: boolean;
  /**
   * Syscall patching for contexts run on runner workers (`ctx.run`): a call site
   * (`mov $N, %eax; syscall`) that traps is rewritten to enter the stub's syshandler with no
   * signal from then on (see the README, "Syscall patching"); the address space gets a table
   * of trampolines at its first such run. Default false here (an embedder's program code is
   * its own: patching writes into it); `systrap run` patches unless `--no-patch`.
   */
  syscallPatching?: boolean;
}
