import test from 'ava';
import { execFileSync } from 'node:child_process';
import { ATTR, CONTEXT_QUEUE, MSG, TASK_ATTRS, THREAD_CONTEXT } from '../src/abi/sysmsg.js';
import { abi } from '../src/abi/stub.js';
import { TRACE_CAPTURE, TRACE_RECORD, TRACE_RING, TRACE_SPEC, TraceCapture, TraceRecordKind, TraceWhen } from '../src/abi/traceRing.js';
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

test('trace ring layouts and constants: TypeScript equals C', (t) => {
  const c = C() as unknown as Record<string, Record<string, number> & number[]>;
  for (const k of ['head', 'tail', 'waiters', 'fullWaits', 'records', 'faults', 'lost'] as const) t.is(TRACE_RING[k], c.ring[snake(k)], `trace_ring.${k}`);
  for (const [k, v] of Object.entries(TRACE_RECORD)) t.is(v, c.record[snake(k)], `trace_record.${k}`);
  for (const [k, v] of Object.entries(TRACE_CAPTURE)) t.is(v, c.capture[snake(k)], `trace_capture.${k}`);
  for (const [k, v] of Object.entries(TRACE_SPEC)) t.is(v, c.spec[k === 'dataSize' ? 'data_size' : k], `trace_spec.${k}`);
  t.deepEqual(Object.values(TraceCapture), c.captures, 'TRACE_CAPTURE_*');
  t.deepEqual(Object.values(TraceWhen), c.whens, 'TRACE_WHEN_*');
  t.deepEqual([TraceRecordKind.Call, TraceRecordKind.Pad], c.kinds, 'TRACE_RECORD_*');
});
