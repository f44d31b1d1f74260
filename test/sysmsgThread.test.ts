import test from 'ava';
import { readFileSync } from 'node:fs';
import type { InspectionEvent } from 'xstate';
import { createPlatform, SYS, type Platform } from '../src/index.js';
import { PER_THREAD, threadSlotAddr } from '../src/abi/stub.js';
import { maps, procState, until } from './helpers.js';
import { subprocessOf } from '../src/addressSpace.js';

let platform: Platform;
const events: InspectionEvent[] = [];
test.before(async () => {
  platform = await createPlatform({ maxSysmsgThreads: 2, inspect: (e) => events.push(e) });
});
test.after.always(async () => {
  await platform?.close();
});

function status(tid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(`/proc/${tid}/status`, 'utf8').split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

test('createSysmsgThread: cloned by the syscall thread, stacks mapped, seccomp installed, parked', async (t) => {
  const as = await platform.newAddressSpace();
  const smt = await subprocessOf(as).sysmsgThreads.create();
  const tid = smt.tid;
  t.true(tid > 0);
  t.is(smt.state, 'parked');
  const states = events
    .filter((e) => e.type === '@xstate.snapshot' && e.actorRef === smt.ref)
    .map((e) => String((e as { snapshot: { value: unknown } }).snapshot.value))
    .filter((v, i, a) => a[i - 1] !== v);
  t.deepEqual(states, ['cloning', 'attached', 'stackMapped', 'seccompInstalled', 'parked']);

  const st = status(tid);
  t.is(st.Tgid, String(tid), 'its own thread group (CLONE_VM without CLONE_THREAD)');
  t.is(st.PPid, String(as.pid), 'a child of the stub');
  t.is(st.Seccomp, '2', 'a seccomp filter is installed');
  t.is(st.NoNewPrivs, '1');
  t.is(st.TracerPid, '0', 'detached');
  // The detach's SIGSTOP takes effect as the thread next runs: a moment after the detach.
  t.true(await until(() => procState(tid) === 'T', 5000), `parked in group-stop (state ${procState(tid)})`);

  // Same address space as the stub; its slot holds a private stack and the shared stack + Msg.
  const slot = threadSlotAddr(platform.stubRegion, smt.slot);
  const priv = (slot + BigInt(PER_THREAD.privateStackOffset)).toString(16);
  const shared = (slot + BigInt(PER_THREAD.sharedOffset)).toString(16);
  const m = maps(tid);
  t.deepEqual(m, maps(as.pid));
  t.true(m.some((l) => l.startsWith(`${priv}-`) && l.includes(' rw-p ')), 'private stack');
  t.true(m.some((l) => l.startsWith(`${shared}-`) && l.includes(' rw-s ') && l.includes('systrap-memory')), 'shared stack');

  // The stub's syscall thread went back to its loop.
  t.is(await as.syscall(SYS.getpid), BigInt(as.pid));
  await as.release();
});

test('no more than maxSysmsgThreads threads per stub', async (t) => {
  const as = await platform.newAddressSpace();
  const sp = subprocessOf(as);
  const before = sp.sysmsgThreads.size;
  while (sp.sysmsgThreads.size < 2) await sp.sysmsgThreads.create();
  await t.throwsAsync(sp.sysmsgThreads.create(), { code: 'EINVALIDARG' });
  t.true(sp.sysmsgThreads.size === 2 && before <= 2);
  await as.release();
});

test('a sysmsg thread killed with SIGKILL takes its stub down: ESTUBDEAD', async (t) => {
  const as = await platform.newAddressSpace();
  // A pooled stub keeps its sysmsg threads (as gVisor's pool does); take one, or make one.
  const sp = subprocessOf(as);
  const smt = sp.sysmsgThreads.bySlot.values().next().value ?? (await sp.sysmsgThreads.create());
  t.is(smt.state, 'parked');
  process.kill(smt.tid, 'SIGKILL');
  // Its exit signal is SIGKILL: the stub dies with it (gVisor's fate sharing).
  t.true(await until(() => as.state === 'dead'), `state ${as.state}`);
  t.is(smt.state, 'dead');
  t.is(procState(as.pid), undefined);
  await t.throwsAsync(as.syscall(SYS.getpid), { code: 'ESTUBDEAD' });
});
