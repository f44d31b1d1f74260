/**
 * Parsing `-e trace=SET`, strace's syscall selection syntax: names,
 * numbers, `%classes`, `/regexes`, `all`, `none`, negation.
 *
 * @module
 */

import { SYS, syscallName } from '../../abi/syscalls.js';
import { LEGACY_CLASS_NAMES, syscallClass } from './syscallClasses.js';

/** Every syscall number that has a name, ascending. */
const KNOWN: readonly number[] = [...new Set(Object.values(SYS) as number[])].sort((a, b) => a - b);
/** The highest syscall number with a name: bigger numbers are rejected, as strace does. */
const MAX_NR = KNOWN[KNOWN.length - 1]!;

/**
 * The syscall a name (`openat`) or a number (`257`, at most the highest
 * known one) stands for; undefined when it stands for none.
 *
 * @example
 * ```ts
 * syscallNumber('openat'); // 257
 * syscallNumber('9999');   // undefined
 * ```
 */
export function syscallNumber(token: string): number | undefined {
  if (/^\d+$/.test(token)) {
    const nr = Number(token);
    return nr <= MAX_NR ? nr : undefined;
  }
  return (SYS as Readonly<Record<string, number>>)[token];
}

/**
 * A set of syscall numbers that may be "everything except ...": `has(nr)`
 * answers for any number, including numbers this build has no name for.
 *
 * @example
 * ```ts
 * const sel = parseTraceSelection('!write');
 * sel.has(SYS.read);  // true
 * sel.has(SYS.write); // false
 * sel.has(999);       // true
 * ```
 */
export class SyscallSelection {
  readonly #numbers: ReadonlySet<number>;

  /**
   * @param numbers the syscalls listed
   * @param inverted when true the selection is every syscall except `numbers`
   */
  constructor(numbers: Iterable<number>, readonly inverted = false) {
    this.#numbers = new Set(numbers);
  }

  /** Everything. */
  static all(): SyscallSelection {
    return new SyscallSelection([], true);
  }

  /** Nothing. */
  static none(): SyscallSelection {
    return new SyscallSelection([], false);
  }

  /** Whether syscall `nr` is selected. */
  has(nr: number): boolean {
    return this.#numbers.has(nr) !== this.inverted;
  }

  /** The selected syscalls among those with a name (`SYS`), ascending. */
  toSet(): Set<number> {
    return new Set(KNOWN.filter((nr) => this.has(nr)));
  }

  /** True when nothing at all is selected. */
  get isEmpty(): boolean {
    return !this.inverted && this.#numbers.size === 0;
  }

  /** The union of this selection and another. */
  union(other: SyscallSelection): SyscallSelection {
    const a = this.#numbers;
    const b = other.#numbers;
    if (!this.inverted && !other.inverted) return new SyscallSelection([...a, ...b]);
    if (this.inverted && other.inverted) return new SyscallSelection([...a].filter((n) => b.has(n)), true);
    const [excluded, included] = this.inverted ? [a, b] : [b, a];
    return new SyscallSelection([...excluded].filter((n) => !included.has(n)), true);
  }
}

/** The syscalls one token names (a name, a number, `%class`, a legacy class, `/regex`, `all`); undefined when unknown. */
function resolveToken(token: string): readonly number[] | 'all' | undefined {
  if (token === 'all') return 'all';
  if (token === 'none') return [];
  if (token.startsWith('%')) {
    const cls = syscallClass(token.slice(1));
    return cls && [...cls];
  }
  if (LEGACY_CLASS_NAMES.has(token)) return [...syscallClass(token)!];
  if (token.startsWith('/')) {
    let re: RegExp;
    try {
      re = new RegExp(token.slice(1));
    } catch (e) {
      throw new Error(`systrap: invalid regular expression '${token.slice(1)}': ${(e as Error).message}`);
    }
    const hits = KNOWN.filter((nr) => re.test(syscallName(nr)));
    return hits.length ? hits : undefined;
  }
  const nr = syscallNumber(token);
  return nr === undefined ? undefined : [nr];
}

/**
 * Parse a `-e trace=` value in strace syntax into a {@link SyscallSelection}.
 *
 * - comma-separated entries: syscall names, numbers, `%class` (`%file`,
 *   `%process`, `%network`/`%net`, `%signal`, `%ipc`, `%desc`, `%memory`,
 *   `%creds`, `%clock`, `%pure`, `%stat`, `%%stat`, ...), the old spelling
 *   without `%` (`file`, `process`, `network`, `signal`, `ipc`, `desc`,
 *   `memory`), `/regex` (matched against names), `all`, `none`;
 * - a leading `!` negates the whole set: `!write,read` is all but write and read;
 * - `!name` later in the list removes from the set built so far (an
 *   extension; strace rejects it): `%file,!openat`;
 * - `?name` ignores the entry when it is unknown, like strace.
 *
 * @throws Error `systrap: invalid system call 'foo'` for an unknown entry.
 *
 * @example
 * ```ts
 * parseTraceSelection('%file,!openat').has(SYS.stat); // true
 * parseTraceSelection('!%memory').has(SYS.mmap);      // false
 * ```
 */
export function parseTraceSelection(value: string): SyscallSelection {
  let body = value;
  const negate = body.startsWith('!');
  if (negate) body = body.slice(1);
  if (body === '') throw new Error(`systrap: invalid system call '${value}'`);
  let everything = false;
  const listed = new Set<number>();
  for (const raw of body.split(',')) {
    if (raw === '') continue;
    let token = raw;
    const optional = token.startsWith('?');
    if (optional) token = token.slice(1);
    const remove = token.startsWith('!');
    if (remove) token = token.slice(1);
    const hit = resolveToken(token);
    if (hit === undefined) {
      if (optional) continue;
      throw new Error(`systrap: invalid system call '${raw}'`);
    }
    if (hit === 'all') {
      // "all" selects everything (remove: nothing), forgetting earlier entries.
      everything = !remove;
      listed.clear();
      continue;
    }
    // While everything is selected, `listed` holds the exceptions.
    for (const nr of hit) {
      if (remove === everything) listed.add(nr);
      else listed.delete(nr);
    }
  }
  return new SyscallSelection(listed, everything !== negate);
}

/**
 * Parse a `-e trace=` value into the set of (named) syscall numbers it
 * selects. See {@link parseTraceSelection} for the syntax; use that when
 * numbers without a name must be matched too.
 *
 * @example
 * ```ts
 * parseTraceSet('openat,close'); // Set { 257, 3 }
 * parseTraceSet('none');         // Set {}
 * ```
 */
export function parseTraceSet(value: string): Set<number> {
  return parseTraceSelection(value).toSet();
}

/**
 * Combine several `-e trace=` values. `'last'` (the default, what strace
 * does) keeps only the last one; `'union'` traces what any of them selects.
 * No values at all means every syscall (strace's default).
 *
 * @example
 * ```ts
 * combineTraceSpecs(['openat', 'close']).has(SYS.openat);          // false (last wins)
 * combineTraceSpecs(['openat', 'close'], 'union').has(SYS.openat); // true
 * ```
 */
export function combineTraceSpecs(values: readonly string[], mode: 'last' | 'union' = 'last'): SyscallSelection {
  if (values.length === 0) return SyscallSelection.all();
  const parsed = values.map(parseTraceSelection);
  if (mode === 'last') return parsed[parsed.length - 1]!;
  return parsed.reduce((a, b) => a.union(b));
}
