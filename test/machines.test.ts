import test from 'ava';
import { taskMachine, TASK_EVENTS } from '../src/machines/task.js';
import { processMachine } from '../src/machines/process.js';
import { compileMachine, machineTable, stateString } from '../src/machines/compile.js';
import { TASK_TABLE } from '../src/machines/taskTable.js';
import { createActor, type InspectionEvent } from 'xstate';
import { createPlatform, subprocessMachine, syscallThreadMachine, poolMachine, platformContextMachine, sysmsgThreadMachine, SYS } from '../src/index.js';
import { subprocessOf } from '../src/addressSpace.js';
import { statesOf } from './helpers.js';

/** The states one actor went through, from its snapshot events. */

test('syscallThread machine: a transaction, a failed attach, death', (t) => {
  const a = createActor(syscallThreadMachine, { input: { pid: 1 } }).start();
  const seen: string[] = [String(a.getSnapshot().value)];
  a.subscribe((s) => seen.push(String(s.value)));
  for (const type of ['ATTACH', 'ATTACHED', 'INJECT', 'INJECTED', 'CLONE', 'CLONED', 'DETACH', 'DETACHED'] as const) a.send({ type });
  a.send({ type: 'ATTACH' });
  a.send({ type: 'FAILED', error: 'EPERM' });
  a.send({ type: 'EXITED', reason: 'killed' });
  t.deepEqual(seen, [
    'detached', 'attaching', 'attached', 'injecting', 'attached', 'cloning', 'attached', 'detaching', 'detached',
    'attaching', 'detached', 'dead',
  ]);
  t.is(a.getSnapshot().context.transactions, 1);
  t.is(a.getSnapshot().status, 'done');
});

test('syscallThread machine: steps out of order are ignored', (t) => {
  const a = createActor(syscallThreadMachine, { input: { pid: 1 } }).start();
  a.send({ type: 'INJECTED' }); // not attached: no transition
  a.send({ type: 'DETACHED' });
  t.is(a.getSnapshot().value, 'detached');
});

test('subprocess machine: life, pooling, reuse, unexpected death', (t) => {
  const a = createActor(subprocessMachine).start();
  a.send({ type: 'FORKED', pid: 42 });
  t.deepEqual(a.getSnapshot().value, { creating: 'initializing' });
  a.send({ type: 'CREATED' });
  a.send({ type: 'RELEASE' });
  a.send({ type: 'RELEASED', pooled: true });
  t.is(a.getSnapshot().value, 'pooled');
  a.send({ type: 'REUSE' });
  t.is(a.getSnapshot().value, 'ready');
  t.is(a.getSnapshot().context.reuses, 1);
  a.send({ type: 'EXITED', reason: 'SIGKILL' });
  t.is(a.getSnapshot().value, 'dead');
  t.true(a.getSnapshot().context.unexpected);
});

test('subprocess machine: a faulted stub is never pooled; an exit after KILL is an orderly death', (t) => {
  const a = createActor(subprocessMachine).start();
  a.send({ type: 'FORKED', pid: 42 });
  a.send({ type: 'CREATED' });
  a.send({ type: 'FAULT', reason: 'bad reply' });
  a.send({ type: 'RELEASE' }); // ignored
  t.is(a.getSnapshot().value, 'faulted');
  a.send({ type: 'KILL' });
  t.is(a.getSnapshot().value, 'faulted', 'KILL records the request; the stub lives until its exit is seen');
  a.send({ type: 'EXITED', reason: 'the stub process exited' });
  t.is(a.getSnapshot().value, 'dead');
  t.false(a.getSnapshot().context.unexpected);
});

test('subprocess machine: an exit nobody asked for is unexpected (ESTUBDEAD)', (t) => {
  const a = createActor(subprocessMachine).start();
  a.send({ type: 'FORKED', pid: 42 });
  a.send({ type: 'CREATED' });
  a.send({ type: 'EXITED', reason: 'killed from outside' });
  t.is(a.getSnapshot().value, 'dead');
  t.true(a.getSnapshot().context.unexpected);
  t.is(a.getSnapshot().context.reason, 'killed from outside');
});

test('pool machine: LIFO availability bounded by maxAvailable', (t) => {
  const a = createActor(poolMachine, { input: { maxAvailable: 2 } }).start();
  a.send({ type: 'SOURCE_READY', pid: 7 });
  for (const id of ['a', 'b', 'c']) a.send({ type: 'MARK_AVAILABLE', id });
  t.deepEqual(a.getSnapshot().context.available, ['a', 'b']);
  a.send({ type: 'FETCH', id: 'x' }); // not there: refused by the guard
  a.send({ type: 'FETCH', id: 'b' });
  t.deepEqual(a.getSnapshot().context.available, ['a']);
  a.send({ type: 'CLOSE' });
  t.deepEqual(a.getSnapshot().context.available, []);
  a.send({ type: 'CLOSED' });
  t.is(a.getSnapshot().status, 'done');
});

test('one inspection observer sees every actor of the real runtime, in order', async (t) => {
  const events: InspectionEvent[] = [];
  const platform = await createPlatform({ inspect: (e) => events.push(e) });
  const as = await platform.newAddressSpace();
  const id = subprocessOf(as).id;
  const threadId = subprocessOf(as).threadId;
  await as.syscall(SYS.getpid);
  await as.injectSyscall(SYS.getpid);
  await as.release();
  const again = await platform.newAddressSpace();
  t.is(again.pid, as.pid);
  await platform.close();

  t.deepEqual(statesOf(events, 'pool'), ['starting', 'running', 'closing', 'closed']);
  t.deepEqual(statesOf(events, 'subprocess:source'), ['{"creating":"forking"}', '{"creating":"initializing"}', 'ready', 'dead']);
  t.deepEqual(statesOf(events, id), [
    '{"creating":"forking"}', '{"creating":"initializing"}', 'ready', 'releasing', 'pooled', 'ready', 'dead',
  ]);
  t.deepEqual(statesOf(events, threadId), [
    'detached',
    // initStub: mmaps of the two message pages and of the rules, then into the loop
    'attaching', 'attached', 'injecting', 'attached', 'injecting', 'attached', 'injecting', 'attached', 'detaching', 'detached',
    // injectSyscall(getpid)
    'attaching', 'attached', 'injecting', 'attached', 'detaching', 'detached',
    'dead',
  ]);
  // The source's syscall thread cloned the new stub.
  t.deepEqual(statesOf(events, 'syscallThread:source').slice(0, 8), [
    'detached', 'attaching', 'attached', 'cloning', 'attached', 'detaching', 'detached', 'dead',
  ]);
  // Actors are registered in the system under their names.
  t.true(events.some((e) => e.type === '@xstate.actor' && e.actorRef.id === id));
});

test('platformContext machine: switches, traps, interrupt, release', (t) => {
  const a = createActor(platformContextMachine).start();
  const seen: string[] = [String(a.getSnapshot().value)];
  a.subscribe((s) => seen.push(String(s.value)));
  a.send({ type: 'SWITCH' });
  a.send({ type: 'RUNNING' });
  a.send({ type: 'TRAPPED_SYSCALL', sysno: 39 });
  a.send({ type: 'SWITCH' });
  a.send({ type: 'RUNNING' });
  a.send({ type: 'INTERRUPTED' });
  a.send({ type: 'SWITCH' });
  a.send({ type: 'RUNNING' });
  a.send({ type: 'TRAPPED_FAULT', signo: 11 });
  a.send({ type: 'RELEASE' });
  t.deepEqual(seen, ['idle', 'queued', 'running', 'syscall', 'queued', 'running', 'interrupted', 'queued', 'running', 'fault', 'released']);
  t.is(a.getSnapshot().context.switches, 3);
});

test('sysmsgThread machine: creation steps, start, death', (t) => {
  const a = createActor(sysmsgThreadMachine, { input: { slot: 1 } }).start();
  a.send({ type: 'CLONED', tid: 9 });
  for (const type of ['ATTACHED', 'STACK_MAPPED', 'SECCOMP_INSTALLED', 'START'] as const) a.send({ type });
  t.is(a.getSnapshot().value, 'running');
  t.is(a.getSnapshot().context.tid, 9);
  a.send({ type: 'EXITED', reason: 'SIGKILL' });
  t.is(a.getSnapshot().value, 'dead');
});

test('task machine: a thread through the stub, the sentry, a futex wait and back', (t) => {
  const a = createActor(taskMachine).start();
  const seen: string[] = [stateString(a.getSnapshot().value)];
  a.subscribe((s) => seen.at(-1) !== stateString(s.value) && seen.push(stateString(s.value)));
  for (const type of ['SWITCH', 'KICK', 'KICK', 'TRAP', 'WAIT_FUTEX', 'SWITCH', 'WAKE', 'SWITCH_PASS', 'TRAP', 'RETURN', 'EXIT'] as const) a.send({ type });
  t.deepEqual(seen, ['ready', 'inStub.running', 'inStub.runningKicked', 'trapped', 'blocked.futex', 'ready', 'inStub.passthrough', 'trapped', 'ready', 'exited']);
  t.is(a.getSnapshot().status, 'done');
});

test('task machine compiled to a table: the same state as the interpreter after every event of 2,000 random sequences', (t) => {
  const table = compileMachine(taskMachine, TASK_EVENTS);
  t.is(table.initial, 'ready');
  t.is(table.states.length, 12);
  let seed = 12345;
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
  let compared = 0;
  for (let i = 0; i < 2000; i++) {
    const a = createActor(taskMachine).start();
    let s = table.initial;
    for (let j = 0; j < 30; j++) {
      const type = TASK_EVENTS[rand(TASK_EVENTS.length)];
      a.send({ type });
      s = table.next(s, type);
      if (stateString(a.getSnapshot().value) !== s) return t.fail(`after ${type}: interpreter ${stateString(a.getSnapshot().value)}, table ${s}`);
      compared++;
    }
  }
  t.is(compared, 60_000);
});

test('task machine: the table written ahead of time (taskTable.ts) is the one the machine gives', (t) => {
  const fresh = machineTable(taskMachine, TASK_EVENTS);
  t.deepEqual(TASK_TABLE, fresh, `the task machine changed: write this table into src/machines/taskTable.ts:\n${JSON.stringify(fresh, null, 2)}`);
});

test('process machine: stop and continue, then a zombie until reaped; a stopped process can end', (t) => {
  const a = createActor(processMachine, { input: { pid: 7, parent: 'process:1/2' } }).start();
  const seen: string[] = [String(a.getSnapshot().value)];
  a.subscribe((s) => {
    if (seen.at(-1) !== String(s.value)) seen.push(String(s.value));
  });
  for (const type of ['STOP', 'STOP', 'CONTINUE', 'REAP', 'STOP', 'EXIT', 'CONTINUE', 'REAP'] as const) a.send({ type });
  // A second STOP while stopped and a REAP before the end change nothing.
  t.deepEqual(seen, ['running', 'stopped', 'running', 'stopped', 'zombie', 'reaped']);
  t.deepEqual(a.getSnapshot().context, { pid: 7, parent: 'process:1/2' });
  t.is(a.getSnapshot().status, 'done');
});
