import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';

/** execArgv without the options that load tsx (`--import tsx`, `--import=tsx`, `--require …`). */
function withoutTsx(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (/^--(import|loader|require|experimental-loader)$/.test(a) && /tsx/.test(argv[i + 1] ?? '')) {
      i++;
      continue;
    }
    if (/^--(import|loader|require|experimental-loader)=.*tsx/.test(a)) continue;
    out.push(a);
  }
  return out;
}

/**
 * The file and execArgv of a worker entry point (`workers/NAME`). The worker runs compiled
 * JavaScript (dist/workers/NAME.js) even when the caller runs from TypeScript sources: a
 * TypeScript loader in a worker opens cache files and spawns a compiler service that a worker's
 * exit leaks (fds, zombies). The .ts file is the fallback for a tree that was never built.
 *
 * @example
 * ```ts
 * const w = resolveWorker('runner');
 * new Piscina({ filename: w.file, execArgv: w.execArgv });
 * ```
 */
export function resolveWorker(name: 'tracer' | 'runner' | 'sentry'): { file: string; execArgv: string[] } {
  const fromSource = import.meta.url.endsWith('.ts');
  const built = fileURLToPath(new URL(fromSource ? `../dist/workers/${name}.js` : `../workers/${name}.js`, import.meta.url));
  if (existsSync(built)) return { file: built, execArgv: withoutTsx(process.execArgv) };
  return { file: fileURLToPath(new URL(`../workers/${name}.ts`, import.meta.url)), execArgv: process.execArgv };
}

