/**
 * How trace lines look and which are printed: strace's output options (`-t`, `-T`, `-y`, `-s`,
 * `-a`, `-q`, `-z`/`-Z`, `-e status=`, `-e signal=`, `-P`, `-f`), as data the sentry worker's
 * printer follows. Parsing of their values lives here too, so the CLI and embedders say the same.
 *
 * @module
 */

import type { ConstStyle } from './decode/constStyle.js';
import { signalFromName } from './decode/signals.js';

/** What `-e status=` selects (strace 6): calls that returned, failed, never returned... */
export type CallStatus = 'successful' | 'failed' | 'unfinished' | 'unavailable' | 'detached';

const STATUSES: readonly CallStatus[] = ['successful', 'failed', 'unfinished', 'unavailable', 'detached'];

/**
 * strace's output options. Every field has strace's default (see {@link DEFAULT_STYLE}).
 *
 * @example
 * ```ts
 * const style: TraceStyle = { ...DEFAULT_STYLE, timestamps: 2, syscallTimes: true }; // -tt -T
 * ```
 */
export interface TraceStyle {
  /** `-a N`: the column `= result` is aligned to (strace: 40), the line's prefix counted. */
  align: number;
  /** `-t` 1 (`HH:MM:SS`), `-tt` 2 (with microseconds), `-ttt` 3 (seconds since the epoch); 0 none. */
  timestamps: 0 | 1 | 2 | 3;
  /** `-r`: the time since the previous line's, before each line. */
  relative: boolean;
  /** `-T`: the time spent in each call, ` <0.000012>` after its result. */
  syscallTimes: boolean;
  /** `-s N`: the longest string shown (paths are whole). */
  stringLimit: number;
  /** `-y` 1: the path of each fd argument and fd result (`3</etc/passwd>`); `-yy` 2: the same (sockets as `socket:[INODE]`). */
  decodeFds: 0 | 1 | 2;
  /** `-q` 1 (attach messages), `-qq` 2 (also `+++ exited` lines), `-qqq` 3 (everything suppressible). */
  quiet: number;
  /** `-e status=`, `-z`, `-Z`: the calls printed by how they ended; undefined: all. */
  status?: CallStatus[];
  /** `-e signal=`: signals whose delivery (`--- SIG... ---`) is printed; undefined: all. */
  signals?: number[];
  /** `-P PATH`: only calls whose path arguments or fds name one of these. */
  paths?: string[];
  /** `-f`: the program's other processes are traced and counted too (else only the first one). */
  follow: boolean;
  /** `-X`: named constants (`abbrev`), numbers (`raw`), or both (`verbose`). */
  constStyle: ConstStyle;
  /** `-v`: structures (`struct stat`) and argv/environment arrays in full. */
  verbose: boolean;
  /**
   * strace's output is on even when no call is traced (`-e trace=none` still prints signals and
   * exits); otherwise it is on when some call is traced.
   */
  on: boolean;
}

/**
 * strace's defaults.
 *
 * @example
 * ```ts
 * const style = { ...DEFAULT_STYLE, ...opts.style };
 * ```
 */
export const DEFAULT_STYLE: Readonly<TraceStyle> = {
  align: 40,
  timestamps: 0,
  relative: false,
  syscallTimes: false,
  stringLimit: 32,
  decodeFds: 0,
  quiet: 0,
  follow: false,
  constStyle: 'abbrev',
  verbose: false,
  on: false,
};

/**
 * Parses a `-e status=` value: a comma list of `successful`, `failed`, `unfinished`,
 * `unavailable`, `detached`, or `all`, or `none`; a leading `!` negates it.
 *
 * @throws Error `systrap: invalid status 'x'` for anything else.
 * @example
 * ```ts
 * parseStatusSet('!failed'); // ['successful', 'unfinished', 'unavailable', 'detached']
 * ```
 */
export function parseStatusSet(value: string): CallStatus[] {
  const negate = value.startsWith('!');
  const body = negate ? value.slice(1) : value;
  const chosen = new Set<CallStatus>();
  for (const s of body.split(',')) {
    if (s === 'all') STATUSES.forEach((x) => chosen.add(x));
    else if (s === 'none') continue;
    else if ((STATUSES as readonly string[]).includes(s)) chosen.add(s as CallStatus);
    else throw new Error(`systrap: invalid status '${s}'`);
  }
  return STATUSES.filter((s) => chosen.has(s) !== negate);
}

/**
 * Parses a `-e signal=` value: signal names (with or without `SIG`) or numbers, `all`, `none`,
 * a leading `!` negating the set.
 *
 * @throws Error `systrap: invalid signal 'x'`.
 * @example
 * ```ts
 * parseSignalSet('SIGCHLD,usr1'); // [17, 10]
 * parseSignalSet('!all');         // []
 * ```
 */
export function parseSignalSet(value: string): number[] {
  const negate = value.startsWith('!');
  const body = negate ? value.slice(1) : value;
  const all = Array.from({ length: 64 }, (_, i) => i + 1);
  const chosen = new Set<number>();
  for (const s of body.split(',')) {
    if (s === 'all') all.forEach((n) => chosen.add(n));
    else if (s === 'none') continue;
    else {
      const n = signalFromName(s.toUpperCase());
      if (n === undefined) throw new Error(`systrap: invalid signal '${s}'`);
      chosen.add(n);
    }
  }
  return all.filter((n) => chosen.has(n) !== negate);
}
