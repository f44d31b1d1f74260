/** Runs every benchmark and prints ratios measured in this run. `--quick` for a short run. */
import { runFoundation } from './foundation.js';

const r = await runFoundation();
console.log('# foundation (issue 2)');
for (const [k, v] of Object.entries(r)) console.log(`${k.padEnd(56)} ${v.toFixed(2)}`);
