/**
 * Targets in the bench's result names, judged: a name that ends in `(target <= X)` or
 * `(target >= X)` (X a number, optionally followed by a unit or `x`) carries its own target,
 * so every section states its targets where it measures them and the printer says PASS or FAIL.
 *
 * @module
 */

/** One measured value and its verdict (undefined: the value has no target). */
export interface Judged {
  name: string;
  value: number;
  verdict?: 'PASS' | 'FAIL';
}

const TARGET = /\(target (<=|>=) ([\d.]+)[^)]*\)\s*$/;

/**
 * Judges one result: PASS when the value meets the target its name states, FAIL when not (NaN
 * fails: a measurement that did not happen does not pass).
 *
 * @example
 * ```ts
 * judge('spawn: systrap/native (target <= 3)', 15.2); // { ..., verdict: 'FAIL' }
 * judge('native getppid, ns', 168);                  // { ..., verdict: undefined }
 * ```
 */
export function judge(name: string, value: number): Judged {
  const m = TARGET.exec(name);
  if (!m) return { name, value };
  const limit = Number(m[2]);
  const ok = m[1] === '<=' ? value <= limit : value >= limit;
  return { name, value, verdict: ok ? 'PASS' : 'FAIL' };
}

/**
 * The lines of a section: name, value, and PASS/FAIL for the targeted ones.
 *
 * @example
 * ```ts
 * for (const line of formatSection({ 'ratio (target <= 2)': 1.4 })) console.log(line);
 * ```
 */
export function formatSection(results: Record<string, number>): { lines: string[]; failed: number } {
  const lines: string[] = [];
  let failed = 0;
  for (const [name, value] of Object.entries(results)) {
    const j = judge(name, value);
    if (j.verdict === 'FAIL') failed++;
    lines.push(`${name.padEnd(72)} ${value.toFixed(2).padStart(10)}${j.verdict ? `  ${j.verdict}` : ''}`);
  }
  return { lines, failed };
}
