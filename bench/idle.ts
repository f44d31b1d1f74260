/**
 * What a program that mostly waits costs: the CPU the whole machine spends (every process:
 * Node's threads, the stubs, the program) while a program sleeps 1 ms at a time, in cores (1.0
 * is one core busy all the time), natively and under `systrap run`. Read from /proc/stat (busy
 * time of every CPU), as the difference between a run of 4,000 sleeps and one of 2,000 over the
 * difference of their wall times: start-up, exit and V8's compiling of the sentry's code for
 * this load (its first second or two) cancel out; the same over 2,000 and 200 sleeps, that
 * compiling included, is printed beside it. Run it on an otherwise idle machine.
 * Beside it, the emulated getppid loop, to show that the fast path stays (its ratio to native).
 *
 * Target: systrap run ≤ 0.10 cores while the program sleeps.
 *
 * Run alone with `node --import=tsx bench/idle.ts [--quick]`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const CLI = fileURLToPath(new URL('../bin/systrap.js', import.meta.url));

/**
 * Busy jiffies of all CPUs together (the first line of /proc/stat): user, nice, system, irq and
 * softirq; not idle, iowait, steal (another guest of the hypervisor ran) nor guest (counted in
 * user already).
 */
function cpuTimes(): { busy: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return { busy: f[0] + f[1] + f[2] + (f[5] ?? 0) + (f[6] ?? 0) };
}

/** CPU seconds (all CPUs, every process) and wall seconds of one run of `cmd`, and its report. */
function measure(cmd: string[]): { cpuS: number; wallS: number; report: number } {
  const clkTck = 100; // USER_HZ: /proc/stat counts in 1/100 s on Linux
  const a = cpuTimes();
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd[0], cmd.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const wallS = Number(process.hrtime.bigint() - t) / 1e9;
  const b = cpuTimes();
  if (r.status !== 0) throw new Error(`${cmd.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr}`);
  return { cpuS: (b.busy - a.busy) / clkTck, wallS, report: Number(r.stdout.trim()) };
}

/**
 * Cores kept busy while `prog` sleeps, start-up and exit left out: the difference between a
 * run of `long` sleeps and one of `short`, in CPU over wall time (median of `runs` pairs).
 */
function coresWhileSleeping(prefix: string[], prog: string, long: number, short: number, runs: number): number {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const l = measure([...prefix, prog, String(long)]);
    const s = measure([...prefix, prog, String(short)]);
    samples.push(Math.max(0, l.cpuS - s.cpuS) / (l.wallS - s.wallS));
  }
  samples.sort((x, y) => x - y);
  return samples[Math.floor(samples.length / 2)];
}

/**
 * Measures the CPU a sleeping program costs natively and under `systrap run`, and the emulated
 * getppid loop's cost beside it.
 *
 * @example
 * ```ts
 * const r = runIdleBench(true); // { 'naps: cores used, systrap run (target <= 0.10)': 0.04, ... }
 * ```
 */
export function runIdleBench(quick: boolean): Record<string, number> {
  const dir = mkdtempSync(join(tmpdir(), 'systrap-bench-idle-'));
  try {
    const naps = join(dir, 'naps');
    const loop = join(dir, 'getppid');
    execFileSync('gcc', ['-O2', '-static', '-o', naps, fileURLToPath(new URL('./ref/naps.c', import.meta.url))]);
    execFileSync('gcc', ['-O2', '-static', '-o', loop, fileURLToPath(new URL('./ref/getppid.c', import.meta.url))]);
    const runs = quick ? 3 : 5;
    const out: Record<string, number> = {};
    const ours = [process.execPath, CLI, 'run', '--'];
    out['naps (1 ms sleeps): cores used, native'] = coresWhileSleeping([], naps, 4000, 2000, runs);
    // The runs' first 2 s left out: by then V8 has compiled the sentry's code for this load
    // (its compiler threads work in the first second or two of a program that calls ~1000
    // times a second), a cost of the start like Node's own, which the next line shows.
    out['naps (1 ms sleeps): cores used, systrap run (target <= 0.10)'] = coresWhileSleeping(ours, naps, 4000, 2000, runs);
    out['naps: cores used over the first 2 s, JIT warm-up included (2000 sleeps - 200)'] = coresWhileSleeping(ours, naps, 2000, 200, runs);
    out['naps: ms per 1000 sleeps, native'] = measure([naps, '1000']).report;
    out['naps: ms per 1000 sleeps, systrap run'] = measure([process.execPath, CLI, 'run', '--', naps, '1000']).report;
    // Per-call cost of an emulated syscall: the loop times itself (long enough to leave the
    // start of the run out of it).
    const g = measure([loop, '1000000']).report;
    const gs = [0, 1, 2].map(() => measure([process.execPath, CLI, 'run', '--', loop, '200000']).report).sort((x, y) => x - y)[1];
    out['getppid ns/call: native'] = g;
    out['getppid ns/call: systrap run (emulated)'] = gs;
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const [k, v] of Object.entries(runIdleBench(process.argv.includes('--quick')))) console.log(`${k.padEnd(64)} ${v.toFixed(2)}`);
}
