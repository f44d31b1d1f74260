/**
 * The CLI's texts: usage of each subcommand and the version. Imports nothing heavy, so that
 * `systrap --help`, `--version` and usage errors answer at Node's own start-up cost.
 *
 * @module
 */

import { readFileSync } from 'node:fs';

/** `systrap --help`. */
export const USAGE = `usage: systrap <command> [options]

commands:
  run         run a program under the sentry: systrap run [options] [--] PROGRAM [ARGS...]
  inspect     serve the inspector page: systrap inspect [--port N] [TRACE.jsonl]
  probe       create a stub, run syscalls in it both ways, print what it looks like
  help        this text

systrap COMMAND --help describes a command; systrap --version prints the version.`;

/** `systrap run --help`. */
export const RUN_USAGE = `usage: systrap run [options] [--] PROGRAM [ARGS...]

Runs PROGRAM (an x86-64 Linux ELF executable, static or dynamic, or a '#!' script, found on
PATH as execvp does) in stub processes; every syscall it makes that matters goes through the
systrap sentry. Alone it prints nothing of its own; strace's options trace it as strace would
(trace=all unless -e trace= narrows it).

strace's options (same meaning and output as strace 6):
  -e trace=SET, --trace=SET     trace these syscalls (names, %file, %desc, %process, %network,
                                %signal, %ipc, %memory, %creds, %clock, %stat..., all, none,
                                !name, /regex, ?name)
  -e signal=SET, --signal=SET   print deliveries of these signals only (none: no --- lines)
  -e status=SET, --status=SET   print calls that ended so: successful, failed, unfinished
  -z, --successful-only         status=successful;   -Z, --failed-only: status=failed
  -e inject=SET:error=E|retval=N[:when=W], --inject=...
                                the call is not made and returns -E / N (when=N, N+, N+S, N..M)
  -e fault=SET[:error=E][:when=W], --fault=...   inject=, errno ENOSYS by default
  -o FILE, --output=FILE        write the trace (and the -c table) to FILE
  -f, --follow-forks            trace the program's other processes too ([pid N] / N prefixes)
  -ff, --output-separately      with -o FILE: each process's trace goes to FILE.PID
  -c, --summary-only            count calls, errors and time per syscall; print the table
  -C, --summary                 the trace and the table
  -S SORTBY                     the table's order: time, calls, errors, name, nothing
  -t, -tt, -ttt                 time of day, with microseconds, seconds since the epoch
  -r, --relative-timestamps     time since the previous line
  -T, --syscall-times           time spent in each call
  -y, -yy, --decode-fds         show what each fd names: 3</etc/passwd>
  -s N, --string-limit=N        the longest string shown (default 32)
  -a N, --columns=N             align results at column N (default 40)
  -P PATH, --trace-path=PATH    only calls naming PATH (as a path or through an fd)
  -X raw|abbrev|verbose         constants as numbers, names (default), or both
  -v, --no-abbrev               structures (struct stat) and argv/environment in full
  -q, -qq, -qqq, --quiet        suppress attach messages, then exit lines
  -V, --version                 the version;   -h, --help: this text

systrap's own:
  --deny SC[:ERRNO]             SC fails with ERRNO (default EPERM) in every process, even
                                from stub code (a seccomp rule; a traced SC traps, and the
                                sentry refuses it, so its trace line shows the error)
  --policy FILE.mjs             a module exporting handle(call) -> 'pass' | value | {errno} | 'kill'
  --max-threads N               most host threads running the program's threads (default: CPUs)
  --inspect[=PORT]              serve the live inspector (actor tree, statecharts, timeline) on
                                127.0.0.1:PORT (default 8090) while the program runs
  --inspect-wait[=PORT]         as --inspect; waits for a viewer to start, serves until Ctrl-C
  --record FILE                 write every actor's lifecycle as JSONL (the inspector replays it)
  --sandbox=MODE                auto (default): new user, pid, mount and cgroup namespaces when
                                the kernel allows them; require: fail if it does not; off: none
  --no-patch                    no syscall patching (by default a call site that traps is
                                rewritten to enter the stub with no signal from then on)
  --no-trace-ring               every traced call goes to systrap and back (by default a call
                                only watched is made by the program's stub, which records it)

Options take --opt=value or --opt value; short ones cluster (-fc, -tt) and take -s64 or -s 64.
-e inject, -e fault, --deny and --policy apply to every process (-f or not); -f decides which
processes are traced and counted.

exit status: the program's; 128+N if a signal N killed it; 127 if PROGRAM is not found, 126 if
it cannot be executed, 1 for a bad command line (as strace) or when systrap itself failed.`;

/** `systrap probe --help`. */
export const PROBE_USAGE = `usage: systrap probe

Creates the platform and one stub, runs getpid in it through the syscall thread and through
ptrace injection, and prints the stub region, the stub's pid, fds and memory map.`;

/** `systrap inspect --help`. */
export const INSPECT_USAGE = `usage: systrap inspect [--port N] [TRACE.jsonl]

Serves the offline inspector page on 127.0.0.1:N (default 8090). With a trace (written by
systrap run --record FILE), the page replays it; without, processes may send their records to
ws://127.0.0.1:N/events (connectInspector in the library) and the page shows them live.`;

/**
 * The package's version, from its package.json (next to `src/` or `dist/src/`).
 *
 * @example
 * ```ts
 * systrapVersion(); // '0.1.0'
 * ```
 */
export function systrapVersion(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'systrap' && pkg.version) return pkg.version;
    } catch {
      // not there: the other layout
    }
  }
  return 'unknown';
}

/** `systrap --version`, as strace words it. */
export function versionText(): string {
  return `systrap -- version ${systrapVersion()}`;
}
