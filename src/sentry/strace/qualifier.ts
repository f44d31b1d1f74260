/**
 * Parsing one `-e EXPR` of strace's syntax into what it asks for: a trace
 * selection or an injection.
 *
 * @module
 */

import type { InjectSpec } from './inject.js';
import { parseInject } from './inject.js';
import type { SyscallSelection } from './traceSpec.js';
import { parseTraceSelection } from './traceSpec.js';

/** The errno `-e fault=` injects when it names none. */
const ENOSYS = 38;

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
      return { kind: 'inject', spec: parseInject(value, ENOSYS) };
  }
  if (UNSUPPORTED_QUALIFIERS.has(key)) throw new Error(`systrap: -e ${key}= is not supported (trace=, inject= and fault= are)`);
  throw new Error(`systrap: invalid -e qualifier '${key}'`);
}
