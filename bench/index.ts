/**
 * Runs every benchmark and prints what it measured in this run, each targeted result with PASS
 * or FAIL (targets are stated in the result names: see verdict.ts), and a summary line.
 * `--quick`: fewer rounds of the same measurements. `--check`: exit 1 when a target is missed.
 */
import { runFoundation } from './foundation.js';
import { runContexts } from './contexts.js';
import { formatSection } from './verdict.js';

const quick = process.argv.includes('--quick');
const check = process.argv.includes('--check');
let failed = 0;
let judged = 0;
const section = (title: string, results: Record<string, number>) => {
  console.log(`# ${title}`);
  const { lines, failed: f } = formatSection(results);
  for (const l of lines) console.log(l);
  failed += f;
  judged += lines.filter((l) => / (PASS|FAIL)$/.test(l)).length;
  console.log('');
};
// First, while nothing else of the bench has warmed or loaded the machine.
const { runStartupBench } = await import('./startup.js');
section('start-up of the systrap command', runStartupBench(quick).numbers);
section('platform: address spaces and syscalls through the stub', await runFoundation());
section('trapped syscalls: contexts and the fast path', await runContexts(quick));
const { runSentryBench } = await import('./run.js');
section('systrap run: programs under the sentry', await runSentryBench(quick));
const { runProcessBench } = await import('./processes.js');
section('processes: fork, exec, make', await runProcessBench(quick));
const { runIdleBench } = await import('./idle.js');
section('a program that mostly waits: CPU used while it sleeps', runIdleBench(quick));
console.log(`${judged - failed} targets met, ${failed} missed${quick ? ' (quick run: fewer rounds, same measurements)' : ''}`);
if (check && failed > 0) process.exitCode = 1;
