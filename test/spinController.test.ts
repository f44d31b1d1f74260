/**
 * The spin controller (src/shm/spinController.ts): no spin when nothing can trap, the full
 * budget while waits are short, none while they are long, and back when they shorten again.
 */
import test from 'ava';
import { SpinController } from '../src/shm/spinController.js';

const MAX = 300_000; // ns, as BUDGETS.workerSpinNs on more than one CPU

test('nothing in a stub: no spin, whatever was seen before; one CPU (budget 0): never', (t) => {
  const c = new SpinController(MAX);
  t.is(c.budget(false), 0);
  t.is(c.budget(true), MAX, 'a fresh controller spins: a program starts by trapping');
  for (let i = 0; i < 50; i++) c.record(2_000);
  t.is(c.budget(false), 0);
  const one = new SpinController(0);
  one.record(1);
  t.is(one.budget(true), 0);
});

test('long waits (a program blocked in a read, traps every few ms) turn spinning off; short ones bring it back', (t) => {
  const c = new SpinController(MAX);
  const seen: number[] = [];
  for (let i = 0; i < 40; i++) {
    c.record(2_000_000); // 2 ms between traps
    seen.push(c.budget(true));
  }
  t.is(seen.at(-1), 0);
  t.true(seen.indexOf(0) <= 8, `off within 8 long waits (after ${seen.indexOf(0) + 1})`);
  t.true(c.averageNs <= 4 * MAX, 'a long wait counts at most 4 budgets: the way back stays short');
  const back: number[] = [];
  for (let i = 0; i < 40; i++) {
    c.record(40_000); // woken by a futex after 40 µs: traps are frequent again
    back.push(c.budget(true));
  }
  t.is(back.at(-1), MAX);
  t.true(back.indexOf(MAX) <= 16, `on again within 16 short waits (after ${back.indexOf(MAX) + 1})`);
});

test('waits just under the budget keep it; a few long ones among many short do not turn it off', (t) => {
  const c = new SpinController(MAX);
  for (let i = 0; i < 100; i++) c.record(250_000);
  t.is(c.budget(true), MAX);
  const d = new SpinController(MAX);
  for (let i = 0; i < 200; i++) d.record(i % 20 === 0 ? 5_000_000 : 3_000);
  t.is(d.budget(true), MAX, 'one long wait in 20 (a syscall-heavy program that sometimes blocks)');
});

test('negative or absurd durations (a clock read out of order) stay within bounds', (t) => {
  const c = new SpinController(MAX);
  c.record(-5);
  t.true(c.averageNs >= 0);
  c.record(Number.MAX_SAFE_INTEGER);
  t.true(c.averageNs <= 4 * MAX);
});
