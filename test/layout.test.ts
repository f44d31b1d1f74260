import test from 'ava';
import { execFileSync } from 'node:child_process';
import { ATTR, CONTEXT_QUEUE, MSG, TASK_ATTRS, THREAD_CONTEXT } from '../src/abi/sysmsg.js';
import { abi } from '../src/abi/stub.js';
import { buildFixture } from './fixtures/build.js';

// Built at the first test that needs it, so that a missing compiler fails the tests (one line
// saying what to install) instead of the file's import.
let layouts: Record<string, Record<string, number>> | undefined;
const C = () => (layouts ??= JSON.parse(execFileSync(buildFixture('layout'), { encoding: 'utf8' })) as Record<string, Record<string, number>>);
const snake = (s: string) => s.replace(/[A-Z]/g, (m) => '_' + m.toLowerCase());

test('Msg offsets: TypeScript equals C', (t) => {
  for (const [k, v] of Object.entries(MSG)) t.is(v, C().msg[snake(k)], `Msg.${k}`);
});

test('ThreadContext offsets: TypeScript equals C', (t) => {
  for (const [k, v] of Object.entries(THREAD_CONTEXT)) {
    if (k === 'allocatedSize') continue;
    t.is(v, C().ctx[snake(k)], `ThreadContext.${k}`);
  }
});

test('contextQueue offsets and size: TypeScript equals C', (t) => {
  for (const [k, v] of Object.entries(CONTEXT_QUEUE)) {
    if (k === 'entries') continue;
    t.is(v, C().queue[snake(k)], `contextQueue.${k}`);
  }
});

test('task_attrs offsets, size and flags: TypeScript equals C', (t) => {
  for (const [k, v] of Object.entries(TASK_ATTRS)) t.is(v, C().attrs[snake(k)], `task_attrs.${k}`);
  const names = { creds: 'ATTR_CREDS', nice: 'ATTR_NICE', affinity: 'ATTR_AFFINITY', caps: 'ATTR_CAPS', rlimitShift: 'ATTR_RLIMIT_SHIFT', groupsMax: 'ATTR_GROUPS_MAX', rlimits: 'ATTR_RLIMITS', affinityMax: 'ATTR_AFFINITY_MAX' };
  for (const [k, v] of Object.entries(ATTR)) t.is(v, C().attrs[names[k as keyof typeof names]], `ATTR.${k}`);
});

test('syscall-thread message constants: the addon equals the C header', (t) => {
  for (const [k, v] of Object.entries(C().abi)) t.is((abi as unknown as Record<string, number>)[k], v, k);
});
