/**
 * Processes under the sentry (issue 11), against native runs and `strace -f -o /dev/null`, all
 * measured in this run, in-process (`runProgram` on a platform that is up):
 * - a bash loop spawning N `/bin/true`: the marginal cost of one spawn (fork, exec, exit, wait)
 *   = (loop − a bash that spawns nothing) / N;
 * - `make -j2` of a small C project (gcc, cc1, as, ld spawned);
 * - fork + exit + wait of a process with 100 MB of touched memory (the copy-on-write copy).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createPlatform } from '../src/index.js';
import { runProgram } from '../src/sentry/run.js';

/** Rounds of fork + exit + wait per run of the fork reference (bench/ref/fork100.c). */
const FORKS = 20;

/** Wall time of a command, in ms (best of `runs`). */
function wall(cmd: string[], runs: number, cwd?: string): number {
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const t = process.hrtime.bigint();
    const r = spawnSync(cmd[0], cmd.slice(1), { cwd, stdio: ['ignore', 'ignore', 'ignore'] });
    if (r.status !== 0) throw new Error(`${cmd.join(' ')} failed (${r.status ?? r.signal})`);
    best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e6);
  }
  return best;
}

export async function runProcessBench(quick: boolean): Promise<Record<string, number>> {
  const N = quick ? 50 : 300;
  const runs = quick ? 1 : 3;
  const haveStrace = spawnSync('sh', ['-c', 'command -v strace']).status === 0;
  const dir = mkdtempSync(join(tmpdir(), 'systrap-bench-procs-'));
  const bash = '/usr/bin/bash';
  const loop = [bash, '-c', `for ((i = 0; i < ${N}; i++)); do /bin/true; done`];
  const empty = [bash, '-c', 'true'];
  const project = join(dir, 'make');
  execFileSync('mkdir', ['-p', project]);
  writeFileSync(join(project, 'a.c'), 'int f(void);\n#include <stdio.h>\nint main(void) { printf("%d\\n", f()); return 0; }\n');
  writeFileSync(join(project, 'b.c'), 'int f(void) { return 42; }\n');
  writeFileSync(join(project, 'Makefile'), 'x: a.o b.o\n\tgcc -o x a.o b.o\n%.o: %.c\n\tgcc -O2 -c -o $@ $<\nclean:\n\trm -f *.o x\n');
  const make = ['/usr/bin/make', '-s', '-j2'];
  const clean = () => spawnSync('make', ['-s', 'clean'], { cwd: project });
  const forker = join(dir, 'forker');
  execFileSync('gcc', ['-O2', '-o', forker, fileURLToPath(new URL('./ref/fork100.c', import.meta.url))]);

  const platform = await createPlatform({ pool: false });
  const devnull = openSync('/dev/null', 'w');
  const ours = async (cmd: string[], cwd?: string): Promise<number> => {
    let best = Infinity;
    for (let i = 0; i < runs; i++) {
      if (cwd) clean();
      const t = process.hrtime.bigint();
      const h = await runProgram(platform, { path: cmd[0], argv: cmd, env: [`PATH=${process.env.PATH}`], cwd, stdio: [0, devnull, devnull] });
      const end = await h.done;
      if (end.kind !== 'exited' || end.status !== 0) throw new Error(`${cmd.join(' ')}: ${JSON.stringify(end)}`);
      best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e6);
    }
    return best;
  };
  const out: Record<string, number> = {};
  try {
    await ours(empty); // warm: workers, the sentry host
    const nLoop = wall(loop, runs) - wall(empty, runs);
    const sLoop = (await ours(loop)) - (await ours(empty));
    out[`spawn /bin/true ms each: native (bash loop of ${N})`] = nLoop / N;
    out['spawn /bin/true ms each: systrap'] = sLoop / N;
    out['spawn: systrap/native (target <= 3)'] = sLoop / nLoop;
    if (haveStrace) {
      const st = wall(['strace', '-f', '-o', '/dev/null', ...loop], runs) - wall(['strace', '-f', '-o', '/dev/null', ...empty], runs);
      out['spawn /bin/true ms each: strace -f'] = st / N;
      out['spawn: strace -f / systrap'] = st / sLoop;
    }
    clean();
    const nMake = (() => {
      let best = Infinity;
      for (let i = 0; i < runs; i++) {
        clean();
        best = Math.min(best, wall(make, 1, project));
      }
      return best;
    })();
    const sMake = await ours(make, project);
    out['make -j2 ms: native'] = nMake;
    out['make -j2 ms: systrap'] = sMake;
    out['make -j2: systrap/native (target <= 1.5)'] = sMake / nMake;
    if (haveStrace) {
      clean();
      out['make -j2: strace -f/native'] = wall(['strace', '-f', '-o', '/dev/null', ...make], 1, project) / nMake;
    }
    // Both sides as the others: the best of `runs` runs, each the mean of FORKS rounds (one run
    // of a few forks moves by a factor of 2 with what else the 2 CPUs do meanwhile).
    let nFork = Infinity;
    let sFork = Infinity;
    for (let i = 0; i < runs; i++) {
      nFork = Math.min(nFork, Number(execFileSync(forker, [String(FORKS)], { encoding: 'utf8' }).trim()));
      sFork = Math.min(sFork, await forkTime(platform, forker, dir));
    }
    out['fork+exit+wait of 100 MB touched, ms: native'] = nFork;
    out['fork+exit+wait of 100 MB touched, ms: systrap'] = sFork;
    out['fork 100 MB: systrap/native (target <= 2)'] = out['fork+exit+wait of 100 MB touched, ms: systrap'] / nFork;
  } finally {
    closeSync(devnull);
    await platform.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

/** The fork reference's own timing (ms per fork+exit+wait) when it runs under systrap. */
async function forkTime(platform: Awaited<ReturnType<typeof createPlatform>>, forker: string, dir: string): Promise<number> {
  const file = join(dir, 'fork.out');
  const fd = openSync(file, 'w');
  try {
    const h = await runProgram(platform, { path: forker, argv: [forker, String(FORKS)], env: [], stdio: [0, fd, 2] });
    const end = await h.done;
    if (end.kind !== 'exited' || end.status !== 0) throw new Error(`fork100: ${JSON.stringify(end)}`);
  } finally {
    closeSync(fd);
  }
  return Number(execFileSync('cat', [file], { encoding: 'utf8' }).trim());
}
