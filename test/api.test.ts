/**
 * The library API as a strict consumer uses it: what the parsers return goes straight into
 * runProgram's options, a bare program name is found on PATH, a name found nowhere is a typed
 * error before anything starts.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
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
    t.is(readFileSync(out, 'utf8'), 'mkdir=1\ncat=1\n', 'mkdir denied, openat injected');
    const lines = readFileSync(trace, 'utf8');
    t.regex(lines, /^(\[pid +\d+\] )?openat\(AT_FDCWD, "\/etc\/hostname", O_RDONLY\) += -1 EACCES \(Permission denied\) \(INJECTED\)$/m);
    // A denied call that is traced traps, and the sentry refuses it: its line shows the error
    // (refused, not injected).
    t.regex(lines, /^(\[pid +\d+\] )?mkdir\("[^"]+", 0777\) += -1 EPERM \(Operation not permitted\)$/m);
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

test('platform.unref(): Node exits once its own work is done, a platform with stubs open or not; ref() keeps it alive again', async (t) => {
  const index = JSON.stringify(new URL('../src/index.ts', import.meta.url).href);
  // Each child makes a platform and a stub, uses it, then leaves it open. 'beforeExit' fires
  // exactly when nothing keeps the event loop alive any more: with unref() right after "done"
  // (without unref() never: the child would hang until the timeout kills it); after ref() only
  // once the parent has told the child to close the platform (stdin, unref()ed: it holds nothing).
  const script = (body: string) => `
    const { createPlatform, SYS } = await import(${index});
    const platform = await createPlatform({ pool: false });
    const as = await platform.newAddressSpace({ sandbox: process.argv[1] === 'sb' });
    if (Number(await as.syscall(SYS.getpid)) <= 0) throw new Error('no pid');
    process.once('beforeExit', () => console.log('loop empty'));
    process.stdin.once('data', () => platform.close().then(() => console.log('closed')));
    process.stdin.unref();
    ${body}
    console.log('done');`;
  const child = (body: string, arg: string) =>
    spawn(process.execPath, ['--import=tsx', '--input-type=module', '-e', script(body), arg], { stdio: ['pipe', 'pipe', 'pipe'], timeout: 30_000 });
  const end = (c: ReturnType<typeof child>, onDone?: () => void) =>
    new Promise<{ out: string; err: string; code: number | null; signal: string | null }>((resolve) => {
      let [out, err] = ['', ''];
      c.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out === 'done\n') onDone?.();
      });
      c.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      c.on('exit', (code, signal) => resolve({ out, err, code, signal }));
    });
  for (const arg of ['plain', 'sb']) {
    const r = await end(child('platform.unref();', arg));
    t.is(r.signal, null, `${arg}: not killed by the timeout: ${r.err}`);
    t.is(r.code, 0, r.err);
    t.is(r.out, 'done\nloop empty\n', arg);
  }
  // ref() again: the platform holds Node until the parent, having seen "done", asks for the close.
  const held = child('platform.unref().ref();', 'plain');
  const r = await end(held, () => held.stdin!.end('close\n'));
  t.is(r.code, 0, r.err);
  t.is(r.out, 'done\nclosed\nloop empty\n');
});
