/**
 * A getopt_long-style reader for the CLI, as strace's users expect it: short options cluster
 * (`-fc`, `-tt`, `-qq`), a short option's value may be attached (`-s64`, `-etrace=open`) or
 * the next word, long options take `--opt=value` or `--opt value`, `--` ends the options, and
 * the first word that is no option is the program.
 *
 * @module
 */

/**
 * One option: its letter and/or long name, whether it takes a value, and what it does.
 *
 * @example
 * ```ts
 * const o: OptionSpec = { short: 's', long: 'string-limit', value: 'required', apply: (v) => (limit = Number(v)) };
 * ```
 */
export interface OptionSpec {
  short?: string;
  long?: string | string[];
  /** `required`: a value always (attached or the next word); `optional`: only as `--opt=v` (the short form is a flag). */
  value?: 'required' | 'optional';
  apply(value: string | undefined, name: string): void;
}

/** A bad command line: its one-line message (exit status 1, as strace's usage errors). */
export class UsageError extends Error {}

/**
 * Reads options from `argv` until the program: returns the index of its first word (argv.length
 * when there is none).
 *
 * @throws UsageError for an unknown option, a missing value, or a value given to a flag.
 * @example
 * ```ts
 * let f = false;
 * const i = parseOptions(['-f', '--', 'ls'], [{ short: 'f', apply: () => (f = true) }]); // 2
 * ```
 */
export function parseOptions(argv: readonly string[], specs: readonly OptionSpec[]): number {
  const byShort = new Map<string, OptionSpec>();
  const byLong = new Map<string, OptionSpec>();
  for (const s of specs) {
    if (s.short) byShort.set(s.short, s);
    for (const l of typeof s.long === 'string' ? [s.long] : (s.long ?? [])) byLong.set(l, s);
  }
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') return i + 1;
    if (!a.startsWith('-') || a === '-') return i;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      const spec = byLong.get(name);
      if (!spec) throw new UsageError(`unrecognized option '--${name}'`);
      let value = eq < 0 ? undefined : a.slice(eq + 1);
      if (value !== undefined && spec.value === undefined) throw new UsageError(`option '--${name}' doesn't allow an argument`);
      if (value === undefined && spec.value === 'required') {
        if (i + 1 >= argv.length) throw new UsageError(`option '--${name}' requires an argument`);
        value = argv[++i];
      }
      spec.apply(value, `--${name}`);
      continue;
    }
    for (let k = 1; k < a.length; k++) {
      const spec = byShort.get(a[k]);
      if (!spec) throw new UsageError(`invalid option -- '${a[k]}'`);
      // An optional value is for the long form only (`--quiet=...`): `-qq` is two flags.
      if (spec.value !== 'required') {
        spec.apply(undefined, `-${a[k]}`);
        continue;
      }
      let value: string | undefined = a.slice(k + 1);
      if (value === '') {
        if (i + 1 >= argv.length) throw new UsageError(`option requires an argument -- '${a[k]}'`);
        value = argv[++i];
      }
      spec.apply(value, `-${a[k]}`);
      break;
    }
  }
  return i;
}
