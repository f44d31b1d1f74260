/**
 * What code inside a bundle (scripts/bundle.mjs) asks of the loader that compiled it
 * (src/codeCache.ts). The bundle holds its own copy of this file, so the two meet through
 * global symbols of the thread, not through module state. Outside a bundle (tsc's files, tsx),
 * no loader is there: bundleWarm does nothing and dynamicImport is import().
 */

/** Global key of the loader's "the bundle is warm" callback. */
export const WARM_KEY = Symbol.for('systrap.codeCache.warm');
/** Global key of the loader's import(), for code compiled where import() is not available. */
export const IMPORT_KEY = Symbol.for('systrap.codeCache.import');

type Hooks = { [WARM_KEY]?: () => void; [IMPORT_KEY]?: (specifier: string) => Promise<unknown> };

/**
 * Tells the loader that the code the program's run needs has now been compiled, so that the
 * V8 code cache it saves (once, when it had none) holds those functions too and not only the
 * bundle's top level. Call it after the first piece of real work; later calls cost nothing.
 *
 * @example
 * ```ts
 * if (++transactions === 3) bundleWarm();
 * ```
 */
export function bundleWarm(): void {
  (globalThis as Hooks)[WARM_KEY]?.();
}

/**
 * import() of a module that is not bundled (a user's policy module, the inspector's files).
 * Why not import() itself: a bundle compiled by vm.Script with a code cache cannot run
 * import() without --experimental-vm-modules; its loader's import() can. `specifier` must be
 * absolute (a file URL or path, or a package name): a relative one would be relative to
 * whichever module did the import.
 *
 * @example
 * ```ts
 * const { startInspectorServer } = await dynamicImport<typeof import('./inspect/server.js')>(new URL('./inspect/server.js', import.meta.url).href);
 * ```
 */
export function dynamicImport<T>(specifier: string): Promise<T> {
  const viaLoader = (globalThis as Hooks)[IMPORT_KEY];
  return (viaLoader ? viaLoader(specifier) : import(specifier)) as Promise<T>;
}
