/**
 * Job control at a terminal: `bash -i` in a pseudo-terminal, driven as a person would type
 * (test/fixtures/ptydrive.py: Ctrl-Z, jobs, bg, kill %1, Ctrl-C on a foreground job), natively
 * and under `systrap run` (sandboxed, and with --sandbox=off): the same transcript. Under
 * systrap the terminal's foreground group is the sentry's (tcsetpgrp, see sys_tty.ts), Ctrl-Z
 * and Ctrl-C reach Node, which forwards them to that group, and the stop is the sentry's own
 * (job control, see jobControl.ts), reported to bash's waitpid(WUNTRACED).
 */
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildFixture } from './fixtures/build.js';
import { procState, requireTool, until } from './helpers.js';

const CLI = fileURLToPath(new URL('../bin/systrap.js', import.meta.url));
const DRIVER = fileURLToPath(new URL('./fixtures/ptydrive.py', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'systrap-jobs-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

/** What the person types, and what they wait for before the next key (see ptydrive.py). */
const SCRIPT = [
  'see #',
  'send PS1="$ "\\n',
  'prompt',
  'send sleep 100\\n',
  'running sleep',
  'send \\x1a', // Ctrl-Z
  'see Stopped',
  'prompt',
  'send jobs\\n',
  'prompt',
  'send bg\\n',
  'prompt',
  'send kill %1; wait %1; echo status $?\\n',
  'see status',
  'prompt',
  'send sleep 100\\n',
  'running sleep',
  'send \\x03', // Ctrl-C
  'prompt',
  'send exit\\n',
].join('\n');

/**
 * A background job that reads the terminal: SIGTTIN stops it (`wait` says 128+21), jobs shows
 * it; one that ignores SIGTTIN reads EIO instead; one that changes the terminal (stty's
 * tcsetattr) gets SIGTTOU (128+22).
 */
const TTIN_SCRIPTS = [
  ['see #', 'send PS1="$ "\\n', 'prompt', 'send cat & wait %1; echo status $?\\n', 'see status', 'prompt', 'send jobs\\n', 'prompt', 'send exit\\n'],
  ['see #', 'send PS1="$ "\\n', 'prompt', 'send (trap "" TTIN; exec cat) & wait %1; echo status $?\\n', 'see status', 'prompt', 'send exit\\n'],
  ['see #', 'send PS1="$ "\\n', 'prompt', 'send stty -echo & wait %1; echo status $?\\n', 'see status', 'prompt', 'send jobs\\n', 'prompt', 'send exit\\n'],
].map((steps) => steps.join('\n'));

function transcript(cmd: string[], steps = SCRIPT): string {
  const python3 = requireTool('python3', 'python3');
  const script = join(dir, 'script');
  const inputrc = join(dir, 'inputrc');
  writeFileSync(script, steps);
  // No bracketed-paste escapes around the prompt (readline's default since bash 5.1).
  writeFileSync(inputrc, 'set enable-bracketed-paste off\n');
  const r = spawnSync(python3, [DRIVER, script, '--', ...cmd], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, INPUTRC: inputrc, TERM: 'dumb' } });
  if (r.status !== 0) throw new Error(`ptydrive ${cmd.join(' ')}: exit ${r.status ?? r.signal}: ${r.stderr}\n${r.stdout}`);
  // A background job's pid (`[1] 1234`) differs; and whether the job stopped before bash's
  // `wait` began is a race (natively too), which bash reports with a warning. So is the order of
  // bash's `[1] PID` and the job's own first line (its EIO): two processes writing at once
  // (natively the parent nearly always first; under systrap the fork's return to the parent
  // takes longer, and one CI run had the job first).
  return r.stdout
    .replace(/^\[(\d+)\] \d+$/gm, '[$1] PID')
    .replace(/^bash: warning: wait_for_job: job \d+ is stopped\n/gm, '')
    .replace(/^(.*: Input\/output error\n)(\[\d+\] PID\n)/gm, '$2$1');
}

test('bash -i in a terminal: a background job that reads the terminal is stopped by SIGTTIN (cat &: Stopped, wait says 149), or reads EIO when it ignores SIGTTIN, or EINTR after its own handler; one that changes the terminal is stopped by SIGTTOU, as natively', (t) => {
  const bash = requireTool('bash', 'bash');
  const shell = [bash, '--norc', '--noprofile', '-i'];
  // And a job with its own SIGTTIN handler, without SA_RESTART: the handler runs, the read is EINTR.
  const handler = buildFixture('ttin');
  const scripts = [...TTIN_SCRIPTS, ['see #', 'send PS1="$ "\\n', 'prompt', `send ${handler} & wait %1; echo status $?\\n`, 'see status', 'prompt', 'send exit\\n'].join('\n')];
  const native = scripts.map((s) => transcript(shell, s));
  t.regex(native[0], /\[1\]\+ +Stopped +cat\nstatus 149\n/, 'the native run is the one the test means');
  t.regex(native[1], /Input\/output error/);
  t.regex(native[2], /Stopped +stty -echo\nstatus 150\n/);
  t.regex(native[3], /read: Interrupted system call, handler ran 1\n/);
  for (const mode of ['auto', 'off']) {
    scripts.forEach((s, i) => t.is(transcript([process.execPath, CLI, 'run', `--sandbox=${mode}`, '--', ...shell], s), native[i], `sandbox ${mode}`));
  }
});

test('bash -i in a terminal: sleep 100, Ctrl-Z, jobs, bg, kill %1, Ctrl-C on a foreground job: the transcript as natively', (t) => {
  const bash = requireTool('bash', 'bash');
  const shell = [bash, '--norc', '--noprofile', '-i'];
  const native = transcript(shell);
  t.regex(native, /Stopped\s+sleep 100/, 'the native run is the one the test means');
  for (const mode of ['auto', 'off']) {
    t.is(transcript([process.execPath, CLI, 'run', `--sandbox=${mode}`, '--', ...shell]), native, `sandbox ${mode}`);
  }
});


/** Runs `argv`, waits for it to stop, continues it (SIGCONT, as a shell's fg does): its output and status. */
async function stopAndContinue(argv: string[]): Promise<{ stdout: string; status: number | null }> {
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.on('data', (d) => (stdout += d));
  // 'close', not 'exit': the exit can come before the last output is read.
  const ended = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const stopped = await until(() => procState(child.pid!) === 'T', 20_000);
  if (!stopped) child.kill('SIGKILL');
  else child.kill('SIGCONT');
  const status = await ended;
  return { stdout: stopped ? stdout : `never stopped: ${stdout}`, status };
}

test('the program stops itself (kill -STOP $$): systrap stops as the program does natively, and SIGCONT continues both', async (t) => {
  const sh = requireTool('sh', 'dash');
  const cmd = [sh, '-c', 'echo before; kill -STOP $$; echo resumed'];
  const native = await stopAndContinue(cmd);
  t.deepEqual(native, { stdout: 'before\nresumed\n', status: 0 });
  for (const mode of ['auto', 'off']) t.deepEqual(await stopAndContinue([process.execPath, CLI, 'run', `--sandbox=${mode}`, '--', ...cmd]), native, `sandbox ${mode}`);
});
