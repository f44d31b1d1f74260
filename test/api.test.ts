/**
 * The library API as a strict consumer uses it: what the parsers return goes straight into
 * runProgram's options, a bare program name is found on PATH, a name found nowhere is a typed
 * error before anything starts.
 */
import test from 'ava';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPlatform, parseDeny, parseInject, parseTraceSet, runProgram, SystrapError } from '../src/index.js';
import { requireTool } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'systrap-api-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

test('runProgram takes what parseTraceSet, parseInject and parseDeny return; a bare name is found on PATH', async (t) => {
  requireTool('busybox', 'busybox-static');
  const platform = await createPlatform({ pool: false });
  const out = join(dir, 'out');
  const trace = join(dir, 'trace');
  const [fd, tfd, nul] = [openSync(out, 'w'), openSync(trace, 'w'), openSync('/dev/null', 'w')];
  try {
    const target = join(dir, 'made');
    const p = await runProgram(platform, {
      path: 'busybox', // on PATH, as execvp finds it
      argv: ['busybox', 'sh', '-c', `mkdir ${target}; echo mkdir=$?; cat /etc/hostname; echo cat=$?`],
      env: [],
      stdio: [0, fd, nul],
      trace: { trace: parseTraceSet('openat,mkdir'), inject: [parseInject('openat:error=EACCES')], outFd: tfd, style: { follow: true } },
      deny: parseDeny('mkdir:EPERM'),
    });
    const end = await p.done;
    t.is(end.kind, 'exited');
    t.is(readFileSync(out, 'utf8'), 'mkdir=1\ncat=1\n', 'mkdir denied by the kernel, openat injected');
    const lines = readFileSync(trace, 'utf8');
    t.regex(lines, /^(\[pid +\d+\] )?openat\(AT_FDCWD, "\/etc\/hostname", O_RDONLY\) += -1 EACCES \(Permission denied\) \(INJECTED\)$/m);
    // A denied call is refused by the kernel's filter before any trap: nothing to print.
    t.notRegex(lines, /mkdir\(/);
    // The denial is a seccomp rule, the same for a Map and for a list of parseDeny results.
    const q = await runProgram(platform, { path: 'busybox', argv: ['busybox', 'mkdir', target], env: [], stdio: [0, fd, nul], deny: [parseDeny('mkdir:EACCES'), parseDeny('rmdir')] });
    const qEnd = await q.done;
    t.is(qEnd.kind === 'exited' ? qEnd.status : -1, 1);
  } finally {
    closeSync(fd);
    closeSync(tfd);
    closeSync(nul);
    await platform.close();
  }
});

test('runProgram with a bare name found nowhere: ENOENT before any stub is made', async (t) => {
  const platform = await createPlatform({ pool: false });
  try {
    const e = await t.throwsAsync(runProgram(platform, { path: 'no-such-program-anywhere', argv: ['x'], env: [] }));
    t.true(e instanceof SystrapError);
    t.is((e as SystrapError).code, 'ENOENT');
  } finally {
    await platform.close();
  }
});

test('a platform closes at the end of an `await using` scope (Symbol.asyncDispose)', async (t) => {
  let pid = 0;
  {
    await using platform = await createPlatform({ pool: false });
    const as = await platform.newAddressSpace();
    pid = as.pid;
    t.true(pid > 0);
  }
  // Closed: its stubs are gone (killed and reaped), so the pid names nothing of ours.
  t.false(existsSync(`/proc/${pid}`), `stub ${pid} is gone`);
  const platform = await createPlatform({ pool: false });
  await platform[Symbol.asyncDispose]();
  await t.throwsAsync(platform.newAddressSpace(), { instanceOf: SystrapError });
});
