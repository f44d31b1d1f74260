import test from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createPlatform, SYS } from '../src/index.js';
import { childPids, procState, until } from './helpers.js';

test('platform.close() leaves no stub process', async (t) => {
  const platform = await createPlatform();
  const ready = await platform.newAddressSpace();
  const pooled = await platform.newAddressSpace();
  await pooled.release();
  const busy = await platform.newAddressSpace();
  const blocked = busy.syscall(SYS.pause); // a call in flight when close() comes
  const pids = [platform.sourcePid, ready.pid, pooled.pid, busy.pid];
  for (const pid of pids) t.truthy(procState(pid));
  await platform.close();
  await t.throwsAsync(blocked, { code: 'ESTUBDEAD' });
  for (const pid of pids) t.is(procState(pid), undefined, `stub ${pid} is gone`);
  t.deepEqual(childPids(), []);
  await t.throwsAsync(platform.newAddressSpace(), { code: 'ECLOSED' });
  await platform.close(); // twice is fine
});

test('a Node process killed with SIGKILL leaves no stub alive (PDEATHSIG)', async (t) => {
  const fixture = fileURLToPath(new URL('./fixtures/orphan.mts', import.meta.url));
  const child = spawn(process.execPath, ['--import=tsx', fixture], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  const pids = JSON.parse(line) as number[];
  t.is(pids.length, 3);
  for (const pid of pids) t.truthy(procState(pid), `stub ${pid} runs`);
  child.kill('SIGKILL');
  await once(child, 'exit');
  // PDEATHSIG kills them as soon as the kernel has the parent gone; the deadline only bounds a
  // failure. Reaping is up to whoever inherited them (init here, which may take its time), so a
  // zombie counts as dead: what must not be is a stub still running or stopped.
  const dead = (pid: number) => {
    const state = procState(pid);
    return state === undefined || state === 'Z';
  };
  await until(() => pids.every(dead), 5000);
  for (const pid of pids) t.true(dead(pid), `stub ${pid} is ${procState(pid)}`);
});
