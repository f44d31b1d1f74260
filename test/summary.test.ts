import test from 'ava';
import { SYS } from '../src/abi/syscalls.js';
import { SyscallSummary } from '../src/sentry/strace/summary.js';

test('the table strace 6 prints for the same counts', (t) => {
  // strace -c -e trace=openat,getpid on a program that made these calls printed exactly this.
  const s = new SyscallSummary();
  for (const ns of [3000, 3000, 2000, 2000, 3000]) s.record(SYS.openat, false, ns);
  s.record(SYS.openat, true, 0);
  for (const ns of [4000, 3000, 3000]) s.record(SYS.getpid, false, ns);
  const rows = s.rows();
  t.deepEqual(rows.map((r) => [r.sysno, r.calls, r.errors, r.nanoseconds]), [[SYS.getpid, 3, 0, 10000], [SYS.openat, 6, 1, 13000]]);
  t.is(s.format(), [
    '% time     seconds  usecs/call     calls    errors syscall',
    '------ ----------- ----------- --------- --------- ----------------',
    ' 56.52    0.000013           2         6         1 openat',
    ' 43.48    0.000010           3         3           getpid',
    '------ ----------- ----------- --------- --------- ----------------',
    '100.00    0.000023           2         9         1 total',
    '',
  ].join('\n'));
});

test('nothing recorded: nothing printed, like strace', (t) => {
  t.is(new SyscallSummary().format(), '');
});

test('zero time: 0.00 rows, ties in syscall-number order, total still 100.00', (t) => {
  const s = new SyscallSummary();
  s.record(SYS.mmap, false, 0);
  s.record(SYS.read, false, 0);
  s.record(SYS.access, true, 0);
  s.record(SYS.close, false, 0);
  s.record(SYS.close, false, 0);
  t.is(s.format(), [
    '% time     seconds  usecs/call     calls    errors syscall',
    '------ ----------- ----------- --------- --------- ----------------',
    '  0.00    0.000000           0         1           read',
    '  0.00    0.000000           0         2           close',
    '  0.00    0.000000           0         1           mmap',
    '  0.00    0.000000           0         1         1 access',
    '------ ----------- ----------- --------- --------- ----------------',
    '100.00    0.000000           0         5         1 total',
    '',
  ].join('\n'));
});

test('the name column widens for long names; rows sort by time', (t) => {
  const s = new SyscallSummary();
  s.record(SYS.getpid, false, 47_000);
  s.record(SYS.sched_get_priority_max, false, 21_000);
  s.record(SYS.process_vm_readv, false, 90_000);
  const lines = s.format().split('\n');
  t.is(lines[1], `------ ----------- ----------- --------- --------- ${'-'.repeat(23)}`);
  t.deepEqual(lines.slice(2, 5).map((l) => l.split(/\s+/).pop()), ['process_vm_readv', 'getpid', 'sched_get_priority_max']);
  t.is(lines[2], ' 56.96    0.000090          90         1           process_vm_readv');
});

test('seconds and usecs/call: microseconds, calls floored; big numbers keep the columns', (t) => {
  const s = new SyscallSummary();
  for (let i = 0; i < 11; i++) s.record(SYS.mmap, false, 1_727);
  s.record(SYS.wait4, false, 2_500_000_000);
  const lines = s.format().split('\n');
  t.is(lines[2], '100.00    2.500000     2500000         1           wait4');
  t.is(lines[3], '  0.00    0.000019           1        11           mmap');
  t.is(lines[5], '100.00    2.500019      208334        12           total');
});

test('other sort orders, bigint times, merge', (t) => {
  const a = new SyscallSummary();
  a.record(SYS.write, false, 10n);
  a.record(SYS.read, true, 5_000n);
  const b = new SyscallSummary();
  b.record(SYS.write, false, 20);
  b.record(SYS.close, false, 1);
  a.merge(b);
  t.deepEqual(a.rows().map((r) => [r.sysno, r.calls, r.errors, r.nanoseconds]), [[SYS.read, 1, 1, 5000], [SYS.write, 2, 0, 30], [SYS.close, 1, 0, 1]]);
  const names = (sort: Parameters<SyscallSummary['format']>[0]): string[] => a.format(sort).split('\n').slice(2, 5).map((l) => l.split(/\s+/).pop()!);
  t.deepEqual(names('calls'), ['write', 'read', 'close']);
  t.deepEqual(names('name'), ['close', 'read', 'write']);
  t.deepEqual(names('errors'), ['read', 'write', 'close']);
  t.deepEqual(names('nothing'), ['read', 'write', 'close']);
});
