/**
 * strace's `-X`: how named constants print while one line is formatted.
 *
 * @module
 */

/**
 * Named constants (`abbrev`, the default), numbers only (`raw`), or both (`verbose`:
 * `0x80000 /* O_CLOEXEC *\/`). Set around one line's formatting by {@link withConstStyle}; a
 * worker formats one line at a time.
 *
 * @example
 * ```ts
 * const style: ConstStyle = 'raw';
 * ```
 */
export type ConstStyle = 'abbrev' | 'raw' | 'verbose';

/** The style in force. Protected by: formatting is synchronous, one line at a time. */
let constStyle: ConstStyle = 'abbrev';

/**
 * Runs `f` (formatting) with constants printed in `style`.
 *
 * @example
 * ```ts
 * withConstStyle('raw', () => formatFlags(0x80000n, O_FLAGS)); // '0x80000'
 * ```
 */
export function withConstStyle<T>(style: ConstStyle, f: () => T): T {
  const before = constStyle;
  constStyle = style;
  try {
    return f();
  } finally {
    constStyle = before;
  }
}

/**
 * The style in force (see {@link withConstStyle}), for printers of constants outside the tables.
 *
 * @example
 * ```ts
 * if (currentConstStyle() === 'raw') return n.toString();
 * ```
 */
export function currentConstStyle(): ConstStyle {
  return constStyle;
}

/**
 * A value printed in the style in force: `named()` (abbrev), `raw`, or `raw /* named *\/`
 * (verbose; just `raw` when the name adds nothing). `named` runs in the abbrev style.
 *
 * @example
 * ```ts
 * styled('0x80000', () => 'O_RDONLY|O_CLOEXEC'); // per -X
 * ```
 */
export function styled(raw: string, named: () => string): string {
  const style = constStyle;
  if (style === 'raw') return raw;
  const name = withConstStyle('abbrev', named);
  return style === 'abbrev' || name === raw ? name : `${raw} /* ${name} */`;
}

/** `-v`: structures and arrays in full. Protected by: formatting is synchronous, one line at a time. */
let verbose = false;

/**
 * Runs `f` (formatting) with `-v` on or off: every field of the structures strace abbreviates
 * (`struct stat`), every element of argv and the environment.
 *
 * @example
 * ```ts
 * withVerbose(true, () => formatStat(mem, addr)); // '{st_dev=makedev(0xfe, 0), st_ino=..., ...}'
 * ```
 */
export function withVerbose<T>(on: boolean, f: () => T): T {
  const before = verbose;
  verbose = on;
  try {
    return f();
  } finally {
    verbose = before;
  }
}

/**
 * Whether `-v` is in force (see {@link withVerbose}).
 *
 * @example
 * ```ts
 * if (isVerbose()) fields.push(`st_ino=${ino}`);
 * ```
 */
export function isVerbose(): boolean {
  return verbose;
}
