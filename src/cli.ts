import { createPlatform } from './platform.js';
import { run } from './cliRun.js';
import { SYS } from './abi/syscalls.js';
import { readdirSync, readFileSync } from 'node:fs';

const USAGE = `usage: systrap <command>

commands:
  run         run a program under the sentry: systrap run [options] -- PROGRAM [ARGS...]
              (systrap run --help for the options)
  inspect     serve the inspector page: systrap inspect [--port N] [TRACE.jsonl]
  probe       create a stub, run syscalls in it both ways, print what it looks like
  help        this text`;

/**
 * Entry point of the `systrap` command. Returns the exit status.
 *
 * @example
 * ```ts
 * process.exitCode = await main(['probe']);
 * ```
 */
export async function main(argv: string[]): Promise<number> {
  // Output piped into a reader that stops early (`systrap probe | head`): stop quietly, as
  // command-line tools do on SIGPIPE, instead of an unhandled 'error' event. The program run by
  // `systrap run` writes to its own fds: this concerns systrap's own lines only.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  const cmd = argv[0] ?? 'help';
  if (cmd === 'help' || cmd === '--help' || cmd === '-h') {
    console.log(USAGE);
    return 0;
  }
  if (cmd === 'probe') return probe();
  if (cmd === 'run') return run(argv.slice(1));
  if (cmd === 'inspect') return (await import('./cliInspect.js')).inspect(argv.slice(1));
  console.error(`systrap: unknown command '${cmd}'\n\n${USAGE}`);
  return 2;
}

async function probe(): Promise<number> {
  const t0 = performance.now();
  const platform = await createPlatform();
  const t1 = performance.now();
  try {
    const as = await platform.newAddressSpace();
    const t2 = performance.now();
    const viaThread = await as.syscall(SYS.getpid);
    const viaPtrace = await as.injectSyscall(SYS.getpid);
    const region = platform.stubRegion;
    console.log(`stub region     ${region.start.toString(16)}-${region.end.toString(16)} (in Node and every stub)`);
    console.log(`source stub     pid ${platform.sourcePid} (platform ready in ${(t1 - t0).toFixed(1)} ms)`);
    console.log(`address space   pid ${as.pid} (created in ${(t2 - t1).toFixed(1)} ms)`);
    console.log(`getpid          ${viaThread} via the syscall thread, ${viaPtrace.ret} via ptrace injection`);
    console.log(`stub fds        ${readdirSync(`/proc/${as.pid}/fd`).join(' ')}`);
    console.log('stub mappings');
    for (const line of readFileSync(`/proc/${as.pid}/maps`, 'utf8').trim().split('\n')) console.log(`  ${line}`);
    await as.release();
    return 0;
  } finally {
    await platform.close();
  }
}
