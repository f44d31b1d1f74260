import { LoaderError, LoaderErrors } from './loaderErrors.js';

/**
 * '#!' scripts, as Linux's fs/binfmt_script.c runs them: the first line names an interpreter and
 * at most one argument; execve then runs the interpreter with the script's path in its argv, and
 * the interpreter may itself be a script, up to the depth fs/exec.c's exec_binprm allows.
 *
 * The parsing works on the same 256-byte, NUL-padded buffer the kernel has, byte for byte, so
 * that its odd corners come out the same (a NUL ends the line, a line without newline keeps a
 * trailing blank in its argument, the 256th byte is never part of it).
 */

/**
 * How many bytes of the file execve looks at (Linux's BINPRM_BUF_SIZE): the '#!' line counts
 * only within them.
 *
 * @example
 * ```ts
 * const head = await read(0n, BINPRM_BUF_SIZE);
 * ```
 */
export const BINPRM_BUF_SIZE = 256;

/**
 * The deepest format handler execve runs: the file itself is depth 0 and each '#!' interpreter
 * one deeper; exec_binprm fails with ELOOP when it would go past 5. So five nested scripts run,
 * a sixth is ELOOP.
 *
 * @example
 * ```ts
 * if (depth > MAX_EXEC_DEPTH) throw LoaderErrors.TooDeep(path, depth);
 * ```
 */
export const MAX_EXEC_DEPTH = 5;

const SPACE = 0x20;
const TAB = 0x09;
const NEWLINE = 0x0a;
const NUL = 0x00;

/**
 * The interpreter line of a script.
 *
 * @example
 * ```ts
 * const line: ShebangLine = { interpreter: '/usr/bin/env', arg: 'python3 -u' };
 * ```
 */
export interface ShebangLine {
  /** The interpreter's path as written (may be relative, may hold a '\r'); '' after "#!" and a NUL. */
  interpreter: string;
  /** The one optional argument: everything after the name, blanks inside kept. */
  arg?: string;
}

/**
 * Whether a file's first bytes make it a script for execve (they start with "#!").
 *
 * @example
 * ```ts
 * isScript(Buffer.from('#!/bin/sh\n')); // true
 * isScript(readFileSync('/bin/ls'));     // false
 * ```
 */
export function isScript(head: Uint8Array): boolean {
  return head.length >= 2 && head[0] === 0x23 && head[1] === 0x21;
}

const blank = (c: number): boolean => c === SPACE || c === TAB;

/** First index in [from, to] (both included, as in the kernel) that is not a blank; -1 if none. */
function nextNonBlank(b: Uint8Array, from: number, to: number): number {
  for (let i = from; i <= to; i++) if (!blank(b[i])) return i;
  return -1;
}

/** First index in [from, to] that ends a word: a blank or a NUL; -1 if none. */
function nextTerminator(b: Uint8Array, from: number, to: number): number {
  for (let i = from; i <= to; i++) if (blank(b[i]) || b[i] === NUL) return i;
  return -1;
}

/** The newline among the buffer's bytes, looking no further than the first NUL (strnchr). */
function newlineBeforeNul(b: Uint8Array): number {
  for (let i = 0; i < b.length; i++) {
    if (b[i] === NEWLINE) return i;
    if (b[i] === NUL) return -1;
  }
  return -1;
}

/** The string starting at `at`, up to the first NUL. */
function cString(b: Uint8Array, at: number): string {
  const end = b.indexOf(NUL, at);
  return Buffer.from(b.subarray(at, end < 0 ? b.length : end)).toString('utf8');
}

/**
 * Parses the '#!' line of a script as Linux (5.1 and later) does. Only the first
 * {@link BINPRM_BUF_SIZE} bytes count. The line ends at the first newline in them, or, without
 * one (or with a NUL before it), at byte 255 (excluded); blanks (space, tab) after "#!" are
 * skipped, the name ends at a blank or NUL, and the rest of the line, without its leading and
 * (for a line ended by a newline) trailing blanks, is one argument. A name that might have been
 * cut by the 256-byte limit (no blank or NUL after it within them) is refused rather than run.
 *
 * Preconditions: `isScript(head)`; `head` holds the file's first bytes (all of them if shorter
 * than the buffer: the rest reads as NUL, as the kernel's zeroed buffer does).
 *
 * @throws LoaderError `ENOEXEC` when no interpreter is named or its name may be cut.
 *
 * @example
 * ```ts
 * parseShebang(Buffer.from('#! /usr/bin/env  python3 -u \nprint(1)\n'));
 * // { interpreter: '/usr/bin/env', arg: 'python3 -u' }
 * ```
 */
export function parseShebang(head: Uint8Array, path = '<buffer>'): ShebangLine {
  const b = new Uint8Array(BINPRM_BUF_SIZE);
  b.set(head.subarray(0, BINPRM_BUF_SIZE));
  const last = BINPRM_BUF_SIZE - 1;
  let end = newlineBeforeNul(b);
  if (end < 0) {
    const start = nextNonBlank(b, 2, last);
    if (start < 0) throw LoaderErrors.BadScript(path, 'nothing but blanks follows "#!"');
    if (nextTerminator(b, start, last) < 0)
      throw LoaderErrors.BadScript(path, `the interpreter's name does not end within the first ${BINPRM_BUF_SIZE} bytes`);
    end = last;
  }
  while (blank(b[end - 1])) end--;
  const name = nextNonBlank(b, 2, end);
  if (name < 0 || name === end) throw LoaderErrors.BadScript(path, 'no interpreter is named after "#!"');
  const sep = nextTerminator(b, name, end);
  const argAt = sep >= 0 && b[sep] !== NUL ? nextNonBlank(b, sep, end) : -1;
  // The kernel ends the strings in place: a NUL at the line's end, and after the name when an
  // argument follows. Each string then runs to its first NUL, whatever came before.
  b[end] = NUL;
  if (argAt >= 0) b[sep] = NUL;
  const line: ShebangLine = { interpreter: cString(b, name) };
  if (argAt >= 0) line.arg = cString(b, argAt);
  return line;
}

/**
 * The argv the interpreter gets: its path, the line's argument if any, the script's path (the
 * name execve was given, or the previous interpreter's: not argv[0]), then the original
 * arguments after argv[0], which is dropped.
 *
 * @example
 * ```ts
 * scriptArgv({ interpreter: '/bin/sh', arg: '-e' }, './x.sh', ['x', 'a']); // ['/bin/sh', '-e', './x.sh', 'a']
 * ```
 */
export function scriptArgv(line: ShebangLine, script: string, argv: readonly string[]): string[] {
  return [line.interpreter, ...(line.arg !== undefined ? [line.arg] : []), script, ...argv.slice(1)];
}

/**
 * How {@link followScripts} reaches files: in the stub (the loader) or with Node's fs (the check
 * before an execve's point of no return).
 *
 * @example
 * ```ts
 * const access: ExecFileAccess<bigint> = { open: (p) => openExec(io, p), head: (fd) => io.pread(fd, 0n, PAGE_SIZE), close: (fd) => io.close(fd) };
 * ```
 */
export interface ExecFileAccess<F> {
  /** Opens a file the way execve does: a regular file with execute permission, else a LoaderError. */
  open(path: string): Promise<F>;
  /** The file's first bytes: at least {@link BINPRM_BUF_SIZE}, fewer only at its end. */
  head(file: F): Promise<Uint8Array>;
  /** Closes it; never throws. */
  close(file: F): Promise<void>;
}

/**
 * The file execve ends up loading, still open, with the argv it is to get.
 *
 * @example
 * ```ts
 * const { file, path, head, argv, scripts }: ExecTarget<bigint> = await followScripts(access, '/x.sh', ['x.sh']);
 * ```
 */
export interface ExecTarget<F> {
  file: F;
  /** Its path: the one given, or the last '#!' interpreter's as written. */
  path: string;
  /** Its first bytes (what {@link ExecFileAccess.head} read): not a script. */
  head: Uint8Array;
  argv: string[];
  /** The scripts passed through, outermost first (empty for a program run directly). */
  scripts: string[];
}

/**
 * Opens `path` as execve does and, while it is a '#!' script, its interpreter instead, with the
 * argv rewritten at each step ({@link scriptArgv}); stops at the first file that is not a
 * script (the caller decides whether it is a program it can load). `name` is the path as execve
 * was given it (the loader may open a resolved form): scripts are named so in argv and errors.
 *
 * Preconditions: `access.open` throws LoaderErrors for file problems. Only the returned file is
 * left open; every other one is closed, also on failure.
 *
 * @throws LoaderError `ENOENT`/`EACCES` (the file or an interpreter cannot be opened or
 * executed; an interpreter's errors name the script), `ENOEXEC` (a bad '#!' line), `ELOOP`
 * (more than {@link MAX_EXEC_DEPTH} scripts in a row).
 *
 * @example
 * ```ts
 * const target = await followScripts(access, './x.sh', ['x', 'a']);
 * // target.path '/bin/sh', target.argv ['/bin/sh', './x.sh', 'a'] for "#!/bin/sh"
 * ```
 */
export async function followScripts<F>(access: ExecFileAccess<F>, path: string, argv: readonly string[], name = path): Promise<ExecTarget<F>> {
  const scripts: string[] = [];
  let args = [...argv];
  let current = path;
  for (let depth = 0; ; depth++) {
    const file = await openLevel(access, current, scripts.at(-1));
    // The script's name in the interpreter's argv is the name execve was given, then each
    // interpreter's as written in the line above it.
    const shown = depth === 0 ? name : current;
    try {
      // Linux opens the interpreter in the script's handler and refuses to go one level deeper
      // only after: a missing interpreter is ENOENT even where it would be one too many.
      if (depth > MAX_EXEC_DEPTH) throw LoaderErrors.TooDeep(path, scripts.length);
      const head = await access.head(file);
      if (!isScript(head)) return { file, path: current, head, argv: args, scripts };
      const line = parseShebang(head, shown);
      args = scriptArgv(line, shown, args);
      scripts.push(shown);
      current = line.interpreter;
    } catch (e) {
      await access.close(file);
      throw e;
    }
    await access.close(file);
  }
}

/** Opens one level: the program itself, or the interpreter of `script`, naming it in errors. */
async function openLevel<F>(access: ExecFileAccess<F>, path: string, script: string | undefined): Promise<F> {
  // An empty name (a NUL right after "#!") is not refused by the kernel: the walk of an empty
  // path ends at the working directory, a directory, so execve fails with EACCES.
  const target = script !== undefined && path === '' ? '.' : path;
  try {
    return await access.open(target);
  } catch (e) {
    if (script !== undefined && e instanceof LoaderError) throw LoaderErrors.ScriptInterp(path, script, e);
    throw e;
  }
}
