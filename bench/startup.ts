/**
 * Start-up of the `systrap` command, against references run in this same script: `node -e 0`
 * (what any Node CLI pays before its first line runs) and `strace -f /bin/true` (a tracer
 * without Node). Every command runs in turn within each round (interleaved, so that a noisy
 * moment hurts all of them alike), after warm-up rounds; medians are compared.
 *
 * Targets: `systrap run -- /bin/true` within 2× `node -e 0`; `systrap --help`, `systrap run --help` and
 * `systrap --version` within `node -e 0` + 30 ms. Printed beside them, to tell where the time
 * goes: the same run with the code cache off (src/codeCache.ts), and Node starting the two
 * worker a sandboxed run needs (the sentry's: its stub prepares itself, no tracer) and nothing
 * else: the floor of this design.
 *
 * Run alone with `node --import=tsx bench/startup.ts [--quick]`.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';

const CLI = fileURLToPath(new URL('../bin/systrap.js', import.meta.url));

/** The result of the start-up bench: the numbers, and one verdict line per target. */
export interface StartupBench {
  numbers: Record<string, number>;
  verdicts: string[];
}

/** Median of `xs` (the upper one of an even count). */
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** A command to time: its argv, and variables added to the environment. */
type Cmd = string[] | { argv: string[]; env: Record<string, string> };

/** Wall times (ms) of each command, `rounds` interleaved rounds after `warm` unmeasured ones. */
function interleaved(cmds: Record<string, Cmd>, rounds: number, warm: number): Record<string, number[]> {
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(cmds).map((k) => [k, []]));
  for (let i = 0; i < warm + rounds; i++) {
    for (const [name, c] of Object.entries(cmds)) {
      const cmd = Array.isArray(c) ? c : c.argv;
      const env = Array.isArray(c) ? process.env : { ...process.env, ...c.env };
      const t = process.hrtime.bigint();
      const r = spawnSync(cmd[0], cmd.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env });
      const ms = Number(process.hrtime.bigint() - t) / 1e6;
      if (r.status !== 0) throw new Error(`${cmd.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr}`);
      if (i >= warm) times[name].push(ms);
    }
  }
  return times;
}

/**
 * Measures the start-up of `systrap run -- /bin/true`, `systrap --help` and `systrap --version`
 * against `node -e 0` (and `strace -f /bin/true` where strace is installed).
 *
 * @example
 * ```ts
 * const { numbers, verdicts } = runStartupBench(true);
 * console.log(numbers['systrap run -- /bin/true / node -e 0 (target <= 2)'], verdicts.join('\n'));
 * ```
 */
export function runStartupBench(quick: boolean): StartupBench {
  const node = process.execPath;
  // Where the time goes: the same run without the code cache (what compiling costs), and the
  // floor of any design with a worker: Node, plus a worker started and answering.
  const oneWorker = "const { Worker } = require('node:worker_threads'); new Worker('require(\"node:worker_threads\").parentPort.postMessage(0)', { eval: true }).on('message', () => process.exit(0));";
  const cmds: Record<string, Cmd> = {
    'node -e 0': [node, '-e', '0'],
    'systrap run -- /bin/true': [node, CLI, 'run', '--', '/bin/true'],
    'systrap run -- /bin/true, no code cache': { argv: [node, CLI, 'run', '--', '/bin/true'], env: { SYSTRAP_NO_CODE_CACHE: '1' } },
    'node starting a worker': [node, '-e', oneWorker],
    'systrap --help': [node, CLI, '--help'],
    'systrap --version': [node, CLI, '--version'],
    'systrap run --help': [node, CLI, 'run', '--help'],
  };
  const haveStrace = spawnSync('sh', ['-c', 'command -v strace']).status === 0;
  if (haveStrace) cmds['strace -f /bin/true'] = ['strace', '-f', '-o', '/dev/null', '/bin/true'];
  const times = interleaved(cmds, quick ? 7 : 25, 2);
  const med = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
  const ref = med['node -e 0'];
  const numbers: Record<string, number> = {};
  for (const [k, v] of Object.entries(med)) numbers[`${k} ms (median)`] = v;
  const runRatio = med['systrap run -- /bin/true'] / ref;
  numbers['systrap run -- /bin/true / node -e 0 (target <= 2)'] = runRatio;
  if (haveStrace) numbers['systrap run -- /bin/true / strace -f /bin/true'] = med['systrap run -- /bin/true'] / med['strace -f /bin/true'];
  const verdicts: string[] = [];
  verdicts.push(
    runRatio <= 2
      ? `met: systrap run -- /bin/true is ${runRatio.toFixed(2)}x node -e 0 (target <= 2x)`
      : `MISSED: systrap run -- /bin/true is ${runRatio.toFixed(2)}x node -e 0, target <= 2x (${(med['systrap run -- /bin/true'] - 2 * ref).toFixed(0)} ms over)`,
  );
  for (const cmd of ['systrap --help', 'systrap --version', 'systrap run --help']) {
    const extra = med[cmd] - ref;
    numbers[`${cmd} - node -e 0 ms (target <= 30)`] = extra;
    verdicts.push(extra <= 30 ? `met: ${cmd} takes node -e 0 + ${extra.toFixed(0)} ms (target <= +30 ms)` : `MISSED: ${cmd} takes node -e 0 + ${extra.toFixed(0)} ms, target <= +30 ms`);
  }
  return { numbers, verdicts };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { numbers, verdicts } = runStartupBench(process.argv.includes('--quick'));
  for (const [k, v] of Object.entries(numbers)) console.log(`${k.padEnd(64)} ${v.toFixed(2)}`);
  for (const v of verdicts) console.log(v);
}
