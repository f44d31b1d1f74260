/** Runs every benchmark and prints ratios measured in this run. `--quick` for a short run. */
import { runFoundation } from './foundation.js';
import { runContexts } from './contexts.js';

const quick = process.argv.includes('--quick');
const print = (r: Record<string, number>) => {
  for (const [k, v] of Object.entries(r)) console.log(`${k.padEnd(64)} ${v.toFixed(2)}`);
};
console.log('# foundation (issue 2)');
print(await runFoundation());
console.log('\n# trapped syscalls (issue 3)');
print(await runContexts(quick));
console.log('\n# systrap run (issue 4)');
const { runSentryBench } = await import('./run.js');
print(await runSentryBench(quick));
console.log('\n# processes (issue 11)');
const { runProcessBench } = await import('./processes.js');
print(await runProcessBench(quick));
