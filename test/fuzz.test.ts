/**
 * A seeded syscall fuzzer (test/fixtures/fuzz.c) against the sentry: for seeds 1..SEEDS the
 * fixture makes CALLS random calls among those the sentry emulates or checks (futex, sleeps,
 * signals, memory calls near the stub region, clone, execve, ...) with hostile arguments, all in
 * one platform. Every seed must end as a program can end (exit 0, or killed by a signal a program
 * can die of), never in an internal error, a hang, Node dying or a process left behind. The
 * fixture must be sane: the first seeds run natively and exit 0.
 *
 * A failing seed, by hand (every call and its result on stderr; FUZZ_KEEP=N,M,A-B makes only
 * those calls, to cut a seed down to the calls that matter):
 *   gcc -O2 -static -o /tmp/fuzz test/fixtures/fuzz.c
 *   FUZZ_VERBOSE=1 node bin/systrap.js run -- /tmp/fuzz SEED CALLS
 * FUZZ_SEEDS, FUZZ_FIRST_SEED and FUZZ_CALLS change what this test runs.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPlatform } from '../src/index.js';
import { runProgram } from '../src/sentry/run.js';
import type { SentryResult } from '../src/sentry/protocol.js';
import { buildFixture } from './fixtures/build.js';
import { childPids, leakedChildren, until } from './helpers.js';

/**
 * Seeds and calls per seed: about 30 s in all on a 2-CPU machine, measured with the hangs found
 * so far left out (0.7 s a seed, most of it sleeps that wake 20 ms late). Long runs find more
 * than many short ones: state piles up (sysmsg threads, mappings, pending signals).
 */
const SEEDS = Number(process.env.FUZZ_SEEDS ?? 40);
const FIRST_SEED = Number(process.env.FUZZ_FIRST_SEED ?? 1);
const CALLS = Number(process.env.FUZZ_CALLS ?? 1500);
/** Seeds also run natively (the fixture itself must end with 0). */
const NATIVE_SEEDS = Math.min(10, SEEDS);
/** A seed that has not ended by then is a hang. */
const HANG_MS = 10_000;
/** After the watchdog's SIGKILL, how long the end may take. */
const KILL_MS = 5_000;

/** Signals a program can legitimately die of. */
const PROGRAM_DEATHS: Record<number, string> = { 4: 'SIGILL', 5: 'SIGTRAP', 6: 'SIGABRT', 7: 'SIGBUS', 8: 'SIGFPE', 11: 'SIGSEGV', 31: 'SIGSYS' };

const dir = mkdtempSync(join(tmpdir(), 'systrap-fuzz-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

const seeds = Array.from({ length: SEEDS }, (_, i) => FIRST_SEED + i);
const fixture = () => buildFixture('fuzz', ['-static']);

/** Per-kind counts from the fixture's last line (`fuzz seed=.. calls=.. name=N ...`). */
function parseCounts(out: string): Map<string, number> | undefined {
  const line = out.split('\n').find((l) => l.startsWith('fuzz seed='));
  if (!line) return undefined;
  const m = new Map<string, number>();
  for (const [, k, v] of line.matchAll(/(\w+)=(\d+)/g)) m.set(k, Number(v));
  return m;
}

test('the fuzzer is sane: its first seeds exit 0 natively', (t) => {
  const exe = fixture();
  for (const seed of seeds.slice(0, NATIVE_SEEDS)) {
    const r = spawnSync(exe, [String(seed), String(CALLS)], { encoding: 'utf8', timeout: 60_000 });
    t.is(r.error, undefined, `seed ${seed} natively: ${r.error?.message}`);
    t.is(r.signal, null, `seed ${seed} natively: killed by ${r.signal}`);
    t.is(r.status, 0, `seed ${seed} natively: exit ${r.status}: ${r.stderr}`);
    t.regex(r.stdout, new RegExp(`^fuzz seed=${seed} calls=${CALLS} .* stub=no\\n$`), `seed ${seed} natively`);
  }
});

test(`fuzz: seeds ${FIRST_SEED}..${FIRST_SEED + SEEDS - 1} × ${CALLS} calls end as programs end, never in an internal error, a hang or a leak`, async (t) => {
  t.timeout(SEEDS * (HANG_MS + KILL_MS) + 120_000);
  const exe = fixture();
  const platform = await createPlatform({ pool: false });
  const failures: string[] = [];
  const killed = new Map<string, number[]>();
  /** Seeds run natively (the first test): a kill under the sentry is then a divergence to look at. */
  const native = new Set(seeds.slice(0, NATIVE_SEEDS));
  const totals = new Map<string, number>();
  let exited = 0;
  const start = Date.now();
  try {
    for (const seed of seeds) {
      const outFile = join(dir, `out-${seed}.txt`);
      const fd = openSync(outFile, 'w');
      let result: SentryResult | 'hang' | 'unkillable';
      try {
        const h = await runProgram(platform, { path: exe, argv: [exe, String(seed), String(CALLS)], env: [], stdio: [0, fd, 2] });
        let timer: NodeJS.Timeout | undefined;
        const watchdog = new Promise<'hang'>((resolve) => (timer = setTimeout(() => resolve('hang'), HANG_MS)));
        result = await Promise.race([h.done, watchdog]);
        clearTimeout(timer);
        if (result === 'hang') {
          h.kill(9);
          const late = await Promise.race([h.done, new Promise<'unkillable'>((resolve) => setTimeout(() => resolve('unkillable'), KILL_MS))]);
          if (late === 'unkillable') result = 'unkillable';
        }
      } catch (e) {
        result = { kind: 'error', code: 'ETHROWN', message: (e as Error).message };
      } finally {
        closeSync(fd);
      }
      const repro = `(FUZZ_VERBOSE=1 node bin/systrap.js run -- FUZZ ${seed} ${CALLS})`;
      if (result === 'hang') failures.push(`seed ${seed}: hang: not ended after ${HANG_MS} ms, ended by SIGKILL ${repro}`);
      else if (result === 'unkillable') failures.push(`seed ${seed}: hang: not ended after ${HANG_MS} ms, nor ${KILL_MS} ms after SIGKILL ${repro}`);
      else if (result.kind === 'error') failures.push(`seed ${seed}: internal error ${result.code}: ${result.message} ${repro}`);
      else if (result.kind === 'exited') {
        if (result.status !== 0) failures.push(`seed ${seed}: exited with ${result.status} ${repro}`);
        else {
          exited++;
          const out = readFileSync(outFile, 'utf8');
          const counts = parseCounts(out);
          if (!counts) failures.push(`seed ${seed}: exited 0 without its counts ${repro}`);
          else for (const [k, v] of counts) if (k !== 'seed' && k !== 'calls') totals.set(k, (totals.get(k) ?? 0) + v);
          // The fixture found the stub region (what it aims at), as the anonymous executable mapping.
          if (!/ stub=yes\n$/.test(out)) failures.push(`seed ${seed}: the fixture did not find the stub region: ${out}`);
        }
      } else if (result.kind === 'killed') {
        const name = PROGRAM_DEATHS[result.signal];
        if (!name) failures.push(`seed ${seed}: killed by signal ${result.signal}, which the program cannot have died of ${repro}`);
        const key = name ?? `signal ${result.signal}`;
        killed.set(key, [...(killed.get(key) ?? []), seed]);
      } else failures.push(`seed ${seed}: unexpected result ${JSON.stringify(result)}`);
      // Node is alive and its event loop turns.
      await new Promise((r) => setImmediate(r));
    }
  } finally {
    await platform.close();
  }
  const secs = ((Date.now() - start) / 1000).toFixed(1);
  t.log(`${seeds.length} seeds × ${CALLS} calls in ${secs} s: ${exited} exited 0, ${[...killed.values()].flat().length} killed, ${failures.length} failed`);
  for (const [sig, which] of killed) t.log(`killed by ${sig}: seeds ${which.map((s) => (native.has(s) ? `${s} (exits 0 natively)` : String(s))).join(' ')}`);
  if (totals.size) t.log(`calls made (seeds that exited 0): ${[...totals].map(([k, v]) => `${k} ${v}`).join(', ')}`);
  t.true(process.kill(process.pid, 0), 'Node is alive');
  t.true(await until(() => childPids().length === 0, 10_000), `processes left behind: ${childPids().join(' ')}`);
  t.deepEqual(leakedChildren(), [], 'zombies or stopped children of ours');
  t.deepEqual(failures, [], `${failures.join('\n')}\n(FUZZ: gcc -O2 -static -o /tmp/fuzz test/fixtures/fuzz.c)`);
});
