/**
 * A fork that fails inside systrap (the stub's clone refused, a check of the child failed): the
 * program sees an errno, as a program whose fork the kernel refuses does, and
 * `NODE_DEBUG=systrap` says why, which nothing else shows.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { requireTool } from './helpers.js';

const CLI = fileURLToPath(new URL('../bin/systrap.js', import.meta.url));

// Drops root, then allows no process for that user: the kernel refuses the fork (EAGAIN).
const SCRIPT = [
  'import os, resource',
  'os.setgid(65534); os.setuid(65534)',
  'resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))',
  'try:',
  '    pid = os.fork()',
  '    if pid == 0: os._exit(0)',
  "    os.waitpid(pid, 0); print('forked')",
  'except OSError as e:',
  "    print('fork failed', e.errno)",
].join('\n');

test('a fork the kernel refuses (RLIMIT_NPROC of a user that dropped root): EAGAIN as natively; NODE_DEBUG=systrap says why, and nothing is printed without it', (t) => {
  if (process.getuid?.() !== 0) return t.fail('run the tests as root: the program drops root to meet its process limit');
  const python = requireTool('python3', 'python3');
  const native = spawnSync(python, ['-c', SCRIPT], { encoding: 'utf8' });
  t.is(native.stdout, 'fork failed 11\n', native.stderr);
  // No sandbox: a sandboxed program holds no capability (it cannot setuid at all).
  const run = (env: NodeJS.ProcessEnv) => spawnSync(process.execPath, [CLI, 'run', '--sandbox=off', '--', python, '-c', SCRIPT], { encoding: 'utf8', env });
  const quiet = run({ ...process.env, NODE_DEBUG: '' });
  t.is(quiet.stdout, native.stdout);
  t.is(quiet.status, native.status);
  t.is(quiet.stderr, '');
  const told = run({ ...process.env, NODE_DEBUG: 'systrap' });
  t.is(told.stdout, native.stdout);
  t.regex(told.stderr, /^SYSTRAP \d+: fork of process \d+ failed: .*clone.* \(the program sees EAGAIN\)$/m);
});
