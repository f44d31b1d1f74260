/**
 * Parsing `systrap run`'s strace-style options: `-e trace=SET`,
 * `-e inject=SET:error=E|retval=N[:when=W]`, `-e fault=...` and
 * `--deny SYSCALL[:ERRNO]`. Every bad input throws an Error with a one-line
 * message starting `systrap: `.
 *
 * @module
 */

import { SYS, syscallName } from '../../abi/syscalls.js';
import { errnoFromName } from './decode/errno.js';
import { LEGACY_CLASS_NAMES, syscallClass } from './syscallClasses.js';

const KNOWN: readonly number[] = [...new Set(Object.values(SYS) as number[])].sort((a, b) => a - b);
const MAX_NR = KNOWN[KNOWN.length - 1]!;

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
  if (/^\d+$/.test(token)) {
    const nr = Number(token);
    return nr <= MAX_NR ? [nr] : undefined;
  }
  const nr = (SYS as Readonly<Record<string, number>>)[token];
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

/**
 * Which calls of a syscall an injection applies to, counting from 1:
 * `first`, then every `step`-th call after it, up to `last` (inclusive;
 * no limit when undefined).
 *
 * @example
 * ```ts
 * parseInject('read:error=EIO:when=2+3').when; // { first: 2, step: 3 }: calls 2, 5, 8...
 * ```
 */
export interface InjectWhen {
  first: number;
  step: number;
  last?: number;
}

/**
 * A parsed `-e inject=` (or `-e fault=`) value.
 *
 * @example
 * ```ts
 * const spec: InjectSpec = parseInject('openat:error=EACCES:when=2'); // { syscalls: Set { 257 }, error: 13, when: { first: 2, step: 1, last: 2 } }
 * ```
 */
export interface InjectSpec {
  /** The syscalls it applies to (named ones; see {@link parseTraceSelection} for the syntax). */
  syscalls: Set<number>;
  /** Fail the call with this errno (the program sees -1 / errno). */
  error?: number;
  /** Or make the call return this value without running it. */
  retval?: bigint;
  /** Which calls; undefined means every call. */
  when?: InjectWhen;
}

const WHEN_MAX = 65535;

function injectError(value: string, why: string): Error {
  return new Error(`systrap: invalid inject argument '${value}': ${why}`);
}

/**
 * An errno given as a name (`EACCES`, `EWOULDBLOCK`) or a number 1..4095.
 *
 * @throws Error `systrap: unknown errno 'FOO'`.
 *
 * @example
 * ```ts
 * parseErrno('EACCES'); // 13
 * parseErrno('2');      // 2
 * ```
 */
export function parseErrno(text: string): number {
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    if (n >= 1 && n <= 4095) return n;
    throw new Error(`systrap: errno ${text} is out of range (1..4095)`);
  }
  const n = errnoFromName(text.toUpperCase());
  if (n === undefined) throw new Error(`systrap: unknown errno '${text}'`);
  return n;
}

function parseWhen(value: string, text: string): InjectWhen {
  const m = /^(\d+)(?:\.\.(\d+))?(?:(\+)(\d+)?)?$/.exec(text);
  if (!m) throw injectError(value, `bad when=${text} (use N, N+, N+STEP or N..M)`);
  const first = Number(m[1]);
  const last = m[2] !== undefined ? Number(m[2]) : m[3] ? undefined : first;
  const step = m[4] !== undefined ? Number(m[4]) : 1;
  if (first < 1 || first > WHEN_MAX) throw injectError(value, `when=${text}: the first call must be in 1..${WHEN_MAX}`);
  if (last !== undefined && (last < first || last > WHEN_MAX)) throw injectError(value, `when=${text}: the last call must be in ${first}..${WHEN_MAX}`);
  if (step < 1 || step > WHEN_MAX) throw injectError(value, `when=${text}: the step must be in 1..${WHEN_MAX}`);
  return last === undefined ? { first, step } : { first, step, last };
}

/**
 * Parse a `-e inject=` value: `SET:error=ERRNO` or `SET:retval=N`, with an
 * optional `:when=N`, `N+` (from the Nth call on), `N+S` (the Nth and every
 * S-th after) or `N..M`. SET is a trace set (`openat,%network`, `!read`).
 * With `defaultError` (ENOSYS for `-e fault=`) error= may be omitted.
 *
 * @throws Error for an unknown syscall, errno, option, or a missing or
 *   doubled error=/retval=.
 *
 * @example
 * ```ts
 * parseInject('openat:error=ENOENT:when=2+');
 * // { syscalls: Set { 257 }, error: 2, when: { first: 2, step: 1 } }
 * parseInject('getpid:retval=42'); // { syscalls: Set { 39 }, retval: 42n }
 * ```
 */
export function parseInject(value: string, defaultError?: number): InjectSpec {
  const [set = '', ...opts] = value.split(':');
  if (set === '') throw injectError(value, 'no syscall given');
  const spec: InjectSpec = { syscalls: parseTraceSet(set) };
  const seen = new Set<string>();
  for (const opt of opts) {
    const eq = opt.indexOf('=');
    const key = eq < 0 ? opt : opt.slice(0, eq);
    const v = eq < 0 ? '' : opt.slice(eq + 1);
    if (seen.has(key)) throw injectError(value, `${key}= given twice`);
    seen.add(key);
    if (key === 'error') {
      try {
        spec.error = parseErrno(v);
      } catch (e) {
        throw injectError(value, (e as Error).message.replace(/^systrap: /, ''));
      }
    } else if (key === 'retval') {
      if (!/^-?(\d+|0x[0-9a-fA-F]+)$/.test(v)) throw injectError(value, `retval=${v} is not an integer`);
      const n = v.startsWith('-') ? -BigInt(v.slice(1)) : BigInt(v);
      if (n < -(1n << 63n) || n >= 1n << 64n) throw injectError(value, `retval=${v} does not fit in 64 bits`);
      spec.retval = BigInt.asIntN(64, n);
    } else if (key === 'when') {
      spec.when = parseWhen(value, v);
    } else if (['signal', 'syscall', 'delay_enter', 'delay_exit', 'poke_enter', 'poke_exit'].includes(key)) {
      throw injectError(value, `${key}= is not supported (error=, retval= and when= are)`);
    } else {
      throw injectError(value, `unknown option '${opt}'`);
    }
  }
  if (spec.error !== undefined && spec.retval !== undefined) throw injectError(value, 'error= and retval= exclude each other');
  if (spec.error === undefined && spec.retval === undefined) {
    if (defaultError === undefined) throw injectError(value, 'needs error= or retval=');
    spec.error = defaultError;
  }
  return spec;
}

/**
 * Whether an injection applies to the `n`th call (counting from 1) of a
 * syscall it names.
 *
 * @example
 * ```ts
 * const { when } = parseInject('read:error=EIO:when=2+2');
 * [1, 2, 3, 4].map((n) => injectApplies(when, n)); // [false, true, false, true]
 * ```
 */
export function injectApplies(when: InjectWhen | undefined, n: number): boolean {
  if (!when) return true;
  if (n < when.first) return false;
  if (when.last !== undefined && n > when.last) return false;
  return (n - when.first) % when.step === 0;
}

/**
 * Parse a `--deny SYSCALL[:ERRNO]` value: the syscall by name or number,
 * the errno by name or number (default EPERM).
 *
 * @throws Error `systrap: invalid --deny value '...': ...`.
 *
 * @example
 * ```ts
 * parseDeny('socket');        // { sysno: 41, errno: 1 }
 * parseDeny('openat:EACCES'); // { sysno: 257, errno: 13 }
 * ```
 */
export function parseDeny(value: string): { sysno: number; errno: number } {
  const parts = value.split(':');
  if (parts.length > 2 || !parts[0]) throw new Error(`systrap: invalid --deny value '${value}' (use SYSCALL[:ERRNO])`);
  const [name, err] = parts as [string, string | undefined];
  const hit = /^\d+$/.test(name) ? (Number(name) <= MAX_NR ? Number(name) : undefined) : (SYS as Readonly<Record<string, number>>)[name];
  if (hit === undefined) throw new Error(`systrap: invalid --deny value '${value}': invalid system call '${name}'`);
  if (err === undefined) return { sysno: hit, errno: 1 };
  try {
    return { sysno: hit, errno: parseErrno(err) };
  } catch (e) {
    throw new Error(`systrap: invalid --deny value '${value}': ${(e as Error).message.replace(/^systrap: /, '')}`);
  }
}

/**
 * One parsed `-e` expression.
 *
 * @example
 * ```ts
 * const q: Qualifier = parseQualifier('trace=%file');
 * if (q.kind === 'trace') q.selection.has(SYS.openat); // true
 * ```
 */
export type Qualifier =
  | { kind: 'trace'; selection: SyscallSelection }
  | { kind: 'inject'; spec: InjectSpec };

/** strace qualifiers systrap knows but does not implement. */
const UNSUPPORTED_QUALIFIERS = new Set([
  'abbrev', 'a', 'verbose', 'v', 'raw', 'x', 'signal', 'signals', 's', 'read', 'reads', 'r', 'write', 'writes', 'w',
  'status', 'quiet', 'silent', 'silence', 'q', 'decode-fds', 'decode-fd', 'decode-pids', 'decode-pid', 'kvm',
  'trace-fds', 'trace-fd', 'fd', 'fds', 'secontext',
]);

/**
 * Parse one `-e EXPR`: `trace=SET` (or `t=SET`, or a bare `SET` as in
 * `-e open`), `inject=...`, or `fault=...` (inject with error ENOSYS by
 * default).
 *
 * @throws Error for an unsupported or unknown qualifier, or a bad value.
 *
 * @example
 * ```ts
 * parseQualifier('trace=%file');           // { kind: 'trace', selection: ... }
 * parseQualifier('inject=read:error=EIO'); // { kind: 'inject', spec: { ... error: 5 } }
 * parseQualifier('openat');                // trace=openat
 * ```
 */
export function parseQualifier(expr: string): Qualifier {
  const eq = expr.indexOf('=');
  const key = eq < 0 ? 'trace' : expr.slice(0, eq);
  const value = eq < 0 ? expr : expr.slice(eq + 1);
  switch (key) {
    case 'trace': case 't':
      return { kind: 'trace', selection: parseTraceSelection(value) };
    case 'inject':
      return { kind: 'inject', spec: parseInject(value) };
    case 'fault':
      return { kind: 'inject', spec: parseInject(value, 38) };
  }
  if (UNSUPPORTED_QUALIFIERS.has(key)) throw new Error(`systrap: -e ${key}= is not supported (trace=, inject= and fault= are)`);
  throw new Error(`systrap: invalid -e qualifier '${key}'`);
}
