import { PROBE_USAGE, RUN_USAGE, USAGE, versionText } from './cliUsage.js';
import { inheritedFds } from './inheritedFds.js';

/**
 * Entry point of the `systrap` command. Returns the exit status. Help, version and usage errors
 * load nothing but this file's texts and the option parser: the platform (xstate, piscina, the
 * addon) is imported only by the command that needs it.
 *
 * @example
 * ```ts
 * process.exitCode = await main(['probe']);
 * ```
 */
export async function main(argv: string[]): Promise<number> {
  // What Node inherited, taken first: before process.stdout exists (a pipe's stream has libuv
  // reserve an fd), before the run's workers and files add fds of Node's own.
  const inherit = argv[0] === 'run' ? inheritedFds() : [];
  // Output piped into a reader that stops early (`systrap probe | head`): stop quietly, as
  // command-line tools do on SIGPIPE, instead of an unhandled 'error' event. The program run by
  // `systrap run` writes to its own fds: this concerns systrap's own lines only.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  const cmd = argv[0];
  if (cmd === undefined) {
    // As strace without a program: the usage on stderr, status 1.
    console.error(USAGE);
    return 1;
  }
  if (cmd === 'help' || cmd === '--help' || cmd === '-h') {
    console.log(USAGE);
    return 0;
  }
  if (cmd === '--version' || cmd === '-V' || cmd === 'version') {
    console.log(versionText());
    return 0;
  }
  const rest = argv.slice(1);
  if (cmd === 'run') return runCommand(rest, inherit);
  if (cmd === 'probe') {
    if (rest.includes('-h') || rest.includes('--help')) {
      console.log(PROBE_USAGE);
      return 0;
    }
    if (rest.length > 0) return usageError(`unexpected argument '${rest[0]}'`, 'probe');
    return (await import('./cliProbe.js')).probe();
  }
  if (cmd === 'inspect') return (await import('./cliInspect.js')).inspect(rest);
  console.error(`systrap: unknown command '${cmd}'\n\n${USAGE}`);
  return 1;
}

/** `systrap run`: options first (help, version and mistakes answered without the platform). */
async function runCommand(argv: string[], inherit: number[]): Promise<number> {
  const early = await import('./cliEarly.js');
  const { parseRunArgs, UsageError } = early;
  let args;
  try {
    args = parseRunArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) return usageError(e.message, 'run');
    throw e;
  }
  if (args.help) {
    console.log(RUN_USAGE);
    return 0;
  }
  if (args.version) {
    console.log(versionText());
    return 0;
  }
  // The workers start while the rest of `run` loads (see startTracersEarly, startHostEarly).
  // Only where its stub needs one: a sandboxed one prepares itself (see createSandbox).
  if (args.sandbox === 'off') early.startTracersEarly(1);
  early.startHostEarly(early.resolveWorker('sentry'));
  const end = await (await import('./cliRun.js')).run(args, inherit);
  return typeof end === 'number' ? end : dieBy(end.signal);
}

/**
 * Signals systrap dies by itself when they killed the program, so whoever waits for systrap
 * sees what it would see of the program (WIFSIGNALED, a shell's "Terminated"), as strace does.
 * Not the ones that dump core (a core of Node is no one's), nor SIGUSR1 (Node's inspector
 * trigger) or SIGPIPE (ignored by Node): for those, 128+N, what a shell reports for them.
 */
const RAISED: Readonly<Record<number, NodeJS.Signals>> = { 1: 'SIGHUP', 2: 'SIGINT', 9: 'SIGKILL', 12: 'SIGUSR2', 14: 'SIGALRM', 15: 'SIGTERM', 26: 'SIGVTALRM', 27: 'SIGPROF', 29: 'SIGIO', 30: 'SIGPWR' };

/** Dies by `signo` (see RAISED); returns 128+N when it cannot. */
function dieBy(signo: number): number {
  const name = RAISED[signo];
  if (name) {
    process.removeAllListeners(name);
    process.kill(process.pid, name);
  }
  return 128 + signo;
}

/** A bad command line: one line and a hint, status 1 (strace's convention). */
function usageError(message: string, cmd: string): number {
  console.error(`systrap: ${message}\nTry 'systrap ${cmd} --help' for more information.`);
  return 1;
}
