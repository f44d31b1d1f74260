import { accessSync, constants as fsc, statSync } from 'node:fs';
import { delimiter } from 'node:path';

/** Where execvp looks when PATH is not set (glibc's default). */
const DEFAULT_PATH = '/usr/local/bin:/usr/bin:/bin';

/**
 * What {@link findProgram} found: the path to execute, or why not (a shell's status: 127 not
 * found, 126 found but not executable).
 *
 * @example
 * ```ts
 * const found: FoundProgram = { path: '/usr/bin/ls' };
 * ```
 */
export interface FoundProgram {
  path?: string;
  error?: { status: 126 | 127; message: string };
}

/**
 * Finds PROGRAM as execvp does: a name with a slash is a path (checked: it exists, is no
 * directory, is executable); a bare name is the first executable regular file on PATH, named
 * DIR/PROGRAM as execvp names it (that name is what a script's interpreter gets as the script's
 * path, and AT_EXECFN).
 *
 * @example
 * ```ts
 * findProgram('ls').path;             // '/usr/bin/ls'
 * findProgram('nope').error?.status;  // 127
 * ```
 */
export function findProgram(program: string, path = process.env.PATH ?? DEFAULT_PATH): FoundProgram {
  if (program.includes('/')) return check(program);
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const p = `${dir}/${program}`;
    try {
      accessSync(p, fsc.X_OK);
      if (statSync(p).isFile()) return { path: p };
    } catch {
      // next
    }
  }
  return { error: { status: 127, message: `${program}: command not found` } };
}

function check(p: string): FoundProgram {
  let st;
  try {
    st = statSync(p);
  } catch {
    return { error: { status: 127, message: `${p}: No such file or directory` } };
  }
  if (st.isDirectory()) return { error: { status: 126, message: `${p}: Is a directory` } };
  try {
    accessSync(p, fsc.X_OK);
  } catch {
    return { error: { status: 126, message: `${p}: Permission denied` } };
  }
  return { path: p };
}
