/**
 * Parsing the options that make calls fail or return without running:
 * `-e inject=SET:error=E|retval=N[:when=W]` (and `-e fault=`) and
 * `--deny SYSCALL[:ERRNO]`. Every bad input throws an Error with a one-line
 * message starting `systrap: `.
 *
 * @module
 */

import { MAX_ERRNO } from '../../abi/linux.js';
import { errnoFromName } from './decode/errno.js';
import { parseTraceSet, syscallNumber } from './traceSpec.js';

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
  /** The syscalls it applies to (named ones; the syntax is `-e trace=`'s, see traceSpec.ts). */
  syscalls: Set<number>;
  /** Fail the call with this errno (the program sees -1 / errno). */
  error?: number;
  /** Or make the call return this value without running it. */
  retval?: bigint;
  /** Which calls; undefined means every call. */
  when?: InjectWhen;
}

/** The highest call number when= accepts. */
const WHEN_MAX = 65535;

/** The error for a bad `-e inject=` value. */
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
    if (n >= 1 && n <= Number(MAX_ERRNO)) return n;
    throw new Error(`systrap: errno ${text} is out of range (1..${MAX_ERRNO})`);
  }
  const n = errnoFromName(text.toUpperCase());
  if (n === undefined) throw new Error(`systrap: unknown errno '${text}'`);
  return n;
}

/** A when= value: `N`, `N+`, `N+STEP` or `N..M`. */
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
  const hit = syscallNumber(name);
  if (hit === undefined) throw new Error(`systrap: invalid --deny value '${value}': invalid system call '${name}'`);
  if (err === undefined) return { sysno: hit, errno: 1 };
  try {
    return { sysno: hit, errno: parseErrno(err) };
  } catch (e) {
    throw new Error(`systrap: invalid --deny value '${value}': ${(e as Error).message.replace(/^systrap: /, '')}`);
  }
}
