/**
 * Every `npx systrap` example in the README's shell blocks runs as written (with this checkout's
 * bin in place of npx's), in order, in a fresh folder: a `run` example exits and prints as the
 * program does natively (the `--deny` one fails as its comment says), its files are written; an
 * `inspect` example serves until SIGINT.
 */
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inspectorUrl, requireTool } from './helpers.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'bin/systrap.js');

/** The README's `npx systrap ...` lines, comments cut, in order. */
function examples(): string[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const lines: string[] = [];
  for (const m of readme.matchAll(/```(?:sh|bash)\n([\s\S]*?)```/g)) {
    for (const line of m[1].split('\n')) if (line.startsWith('npx systrap ')) lines.push(line.replace(/\s+#.*$/, '').trim());
  }
  return lines;
}

/** The line with this checkout's CLI for `npx systrap`, as a bash command. */
const ours = (line: string) => line.replace(/^npx systrap /, `'${process.execPath}' '${CLI}' `);

test('the README has its examples (the test below runs them)', (t) => {
  const ex = examples();
  t.true(ex.length >= 8, ex.join('\n'));
  t.true(ex.some((l) => l.includes('-e trace=%file')));
});

test('every README example runs as written', async (t) => {
  requireTool('busybox', 'busybox-static');
  const cwd = mkdtempSync(join(tmpdir(), 'systrap-readme-'));
  rmSync('/tmp/denied', { recursive: true, force: true });
  try {
    for (const line of examples()) {
      if (/^npx systrap inspect/.test(line)) {
        // Serves until Ctrl-C: it must come up, then end on SIGINT with status 0.
        const child = spawn('bash', ['-c', `exec ${ours(line)}`], { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
        const url = await inspectorUrl(child);
        t.regex(url, /^http:\/\/127\.0\.0\.1:\d+\//, line);
        const end = await new Promise<{ code: number | null; signal: string | null }>((resolve) => {
          child.on('exit', (code, signal) => resolve({ code, signal }));
          child.kill('SIGINT');
        });
        // Ctrl-C ends it: a clean exit, or death by SIGINT as a server at a terminal.
        t.true(end.code === 0 || end.signal === 'SIGINT', `${line}: ${JSON.stringify(end)}`);
        continue;
      }
      const r = spawnSync('bash', ['-c', ours(line)], { cwd, encoding: 'utf8', timeout: 120_000, maxBuffer: 256 << 20 });
      const program = line.slice(line.indexOf(' -- ') + 4);
      if (line.includes('--deny mkdir:EACCES')) {
        t.is(r.status, 1, line);
        t.regex(r.stderr, /mkdir: cannot create directory .*: Permission denied/, line);
        continue;
      }
      const native = spawnSync('bash', ['-c', program], { cwd, encoding: 'utf8', timeout: 120_000, maxBuffer: 256 << 20 });
      t.is(r.status, native.status, `${line}\n${r.stderr}`);
      // The sandbox mounts a /proc of its own (its pid namespace's): `ls -l /` shows its date;
      // /tmp's link count and date move with whatever else runs on the machine.
      const same = (out: string) => out.replace(/^.* (proc|tmp)$/gm, '$1');
      t.is(same(r.stdout), same(native.stdout), line);
      t.notRegex(r.stderr, /^systrap: (?!inspector at|Process \d+ attached)/m, line);
      for (const file of [/-o (\S+)/.exec(line)?.[1], /--record (\S+)/.exec(line)?.[1]]) {
        if (file === undefined) continue;
        const path = file.startsWith('/') ? file : join(cwd, file);
        t.true(existsSync(path) && statSync(path).size > 0, `${line}: ${file} written`);
      }
    }
  } finally {
    rmSync(cwd, { recursive: true, force: true });
    rmSync('/tmp/denied', { recursive: true, force: true });
  }
});
