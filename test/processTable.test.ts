/**
 * ProcessTable.live(): the kernel asks for the live processes several times per trap, so the
 * table hands out one snapshot array until a process comes or one in it ends. A pure data
 * structure: the processes here are plain records with the fields the table reads.
 */
import test from 'ava';
import { ProcessTable } from '../src/sentry/kernel/processTable.js';
import type { Proc } from '../src/sentry/kernel/process.js';

function proc(tgid: number): Proc & { live: boolean } {
  return { tgid, hostPid: 1000 + tgid, live: true, children: new Set(), parent: undefined } as unknown as Proc & { live: boolean };
}

test('live(): the same array while nothing changes; a new one when a process comes or ends; a handed-out array never changes', (t) => {
  const table = new ProcessTable();
  t.deepEqual([...table.live()], []);
  const a = proc(2);
  const b = proc(3);
  table.add(a);
  table.add(b);
  const first = table.live();
  t.deepEqual(first.map((p) => p.tgid), [2, 3]);
  t.is(table.live(), first, 'asked again: the same snapshot, nothing made');
  a.live = false; // it ended (a zombie until reaped)
  const second = table.live();
  t.not(second, first);
  t.deepEqual(second.map((p) => p.tgid), [3]);
  t.deepEqual(first.map((p) => p.tgid), [2, 3], 'the first snapshot is as it was handed out');
  const c = proc(4);
  table.add(c);
  t.deepEqual(table.live().map((p) => p.tgid), [3, 4], 'a process that came is in the next one');
  t.true(table.anyLive());
  b.live = false;
  c.live = false;
  t.deepEqual([...table.live()], []);
  t.false(table.anyLive());
});
