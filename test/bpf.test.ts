import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BpfAssembler, SECCOMP_RET, SECCOMP_DATA } from '../src/abi/bpf.js';
import { compileSeccomp, sysmsgThreadFilter, type SeccompFilter } from '../src/abi/seccomp.js';
import { SYS } from '../src/abi/syscalls.js';
import { buildFixture } from './fixtures/build.js';

const dir = mkdtempSync(join(tmpdir(), 'systrap-bpf-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

/**
 * The fixture reports a trap by write() and exit_group() from its SIGSYS handler: a filter whose
 * default is TRAP must let those two through, or the report itself would trap.
 */
function withHarness(f: SeccompFilter): SeccompFilter {
  const harness = [SYS.write, SYS.exit_group].map((sysno) => ({ sysno, action: SECCOMP_RET.ALLOW }));
  return { ...f, rules: [...harness, ...f.rules] };
}

/** Loads the filter into a real child process, makes one syscall there, returns what happened. */
function tryFilter(filter: SeccompFilter | Uint8Array, sysno: number, ...args: bigint[]): string {
  // Static: its code (libc included) sits low, like an application's, far below the stub region.
  const exe = buildFixture('seccomp-try', ['-static']);
  const file = join(dir, `f${n++}.bpf`);
  writeFileSync(file, filter instanceof Uint8Array ? filter : compileSeccomp(filter));
  const r = spawnSync(exe, [file, String(sysno), ...args.map((a) => '0x' + BigInt.asUintN(64, a).toString(16))], { encoding: 'utf8' });
  if (r.signal) return `killed ${r.signal}`;
  return r.stdout.trim();
}

test('the assembler encodes sock_filter and resolves forward labels', (t) => {
  const p = new BpfAssembler();
  p.ldAbs(SECCOMP_DATA.nr).jeq(39, 'allow').ret(SECCOMP_RET.TRAP).label('allow').ret(SECCOMP_RET.ALLOW);
  const b = Buffer.from(p.assemble());
  t.is(b.length, 32);
  t.deepEqual([b.readUInt16LE(8), b[10], b[11], b.readUInt32LE(12)], [0x15, 1, 0, 39]);
  t.throws(() => new BpfAssembler().ja('nowhere').assemble(), { message: /undefined label/ });
  t.throws(() => new BpfAssembler().label('a').label('a'), { message: /twice/ });
  t.throws(() => new BpfAssembler().ldAbs(0).assemble(), { message: /end with ret/ });
});

test('allow / errno / trap / kill actions, in real processes', (t) => {
  const f = (action: number): SeccompFilter => ({ rules: [{ sysno: SYS.getppid, action }], defaultAction: SECCOMP_RET.ALLOW });
  t.regex(tryFilter(f(SECCOMP_RET.ALLOW), SYS.getppid), /^ret=\d+ errno=0$/);
  t.is(tryFilter(f(SECCOMP_RET.ERRNO(13)), SYS.getppid), 'ret=-1 errno=13');
  t.is(tryFilter(f(SECCOMP_RET.TRAP), SYS.getppid), `sigsys nr=${SYS.getppid}`);
  t.is(tryFilter(f(SECCOMP_RET.KILL_PROCESS), SYS.getppid), 'killed SIGSYS');
  // Other syscalls take the default.
  t.regex(tryFilter(f(SECCOMP_RET.TRAP), SYS.getpid), /^ret=\d+ errno=0$/);
});

test('64-bit argument conditions: eq, ne, gt, ge, lt, maskedEq', (t) => {
  const big = 0x1_0000_0005n;
  const cases: Array<[SeccompFilter['rules'][0]['args'], bigint, boolean]> = [
    [[{ op: 'eq', value: big }], big, true],
    [[{ op: 'eq', value: big }], 5n, false], // same low word, different high word
    [[{ op: 'ne', value: big }], 5n, true],
    [[{ op: 'ne', value: big }], big, false],
    [[{ op: 'gt', value: big }], big + 1n, true],
    [[{ op: 'gt', value: big }], big, false],
    [[{ op: 'gt', value: big }], 0x2_0000_0000n, true],
    [[{ op: 'ge', value: big }], big, true],
    [[{ op: 'ge', value: big }], big - 1n, false],
    [[{ op: 'lt', value: big }], big - 1n, true],
    [[{ op: 'lt', value: big }], big, false],
    [[{ op: 'lt', value: big }], 0x5_0000_0000n, false],
    [[{ op: 'maskedEq', mask: 0xffn, value: 0x81n }], 0x7781n, true],
    [[{ op: 'maskedEq', mask: 0xffn, value: 0x81n }], 0x7782n, false],
    [[undefined, undefined, { op: 'eq', value: 3n }], 0n, false], // third arg is 0 here
  ];
  for (const [args, value, trapped] of cases) {
    const out = tryFilter({ rules: [{ sysno: SYS.getppid, args, action: SECCOMP_RET.TRAP }], defaultAction: SECCOMP_RET.ALLOW }, SYS.getppid, value);
    t.is(out.startsWith('sigsys'), trapped, `${JSON.stringify(args, (_, v) => (typeof v === 'bigint' ? v.toString(16) : v))} on ${value.toString(16)}: ${out}`);
  }
});

test('instruction-pointer condition (how stub code is told from application code)', (t) => {
  const rule = (value: bigint): SeccompFilter =>
    withHarness({
      rules: [{ sysno: SYS.getppid, ip: { op: 'ge', value }, action: SECCOMP_RET.ALLOW }],
      defaultAction: SECCOMP_RET.TRAP,
    });
  t.regex(tryFilter(rule(0n), SYS.getppid), /^ret=\d+/); // every ip is >= 0
  t.is(tryFilter(rule(0x7f0000000000n * 2n), SYS.getppid), `sigsys nr=${SYS.getppid}`); // no code up there
});

test('the sysmsg-thread filter traps application syscalls and the stub calls it does not allow', (t) => {
  // The fixture is application code (below the stub region): everything traps, even the calls
  // the stub may make, because its instruction pointer is not in the stub.
  const filter = withHarness(sysmsgThreadFilter(0x7f0000000000n, SYS));
  t.is(tryFilter(filter, SYS.getpid), `sigsys nr=${SYS.getpid}`);
  t.is(tryFilter(filter, SYS.sched_yield), `sigsys nr=${SYS.sched_yield}`);
  t.is(tryFilter(filter, SYS.futex, 0n, 1n, 1n), `sigsys nr=${SYS.futex}`);
  // With the stub region moved below this code (ip check passes), the argument checks decide.
  const low = withHarness(sysmsgThreadFilter(0n, SYS));
  t.regex(tryFilter(low, SYS.sched_yield), /^ret=0/);
  t.regex(tryFilter(low, SYS.futex, 0x1000n, 1n, 1n), /^ret=-1 errno=14$/); // allowed: EFAULT from the kernel
  t.is(tryFilter(low, SYS.futex, 0x1000n, 1n, 2n), `sigsys nr=${SYS.futex}`); // wake 2: refused
  t.is(tryFilter(low, SYS.futex, 0x1000n, 9n, 1n), `sigsys nr=${SYS.futex}`); // another op
  t.is(tryFilter(low, SYS.getpid), `sigsys nr=${SYS.getpid}`);
});

test('another architecture or an x32 syscall number takes the bad-arch action, unless the filter has a bad-number action', (t) => {
  const x32 = 0x40000000 + SYS.getpid;
  t.is(tryFilter({ rules: [], defaultAction: SECCOMP_RET.ALLOW, badArchAction: SECCOMP_RET.TRAP }, x32), `sigsys nr=${x32}`);
  t.is(tryFilter({ rules: [], defaultAction: SECCOMP_RET.ALLOW }, x32), 'killed SIGSYS');
  // A negative int (0x80000027 as the kernel takes it) is a bad number too; the default action's own numbers are not.
  const badNr = { rules: [], defaultAction: SECCOMP_RET.ALLOW, badNrAction: SECCOMP_RET.ERRNO(38) };
  t.is(tryFilter(badNr, x32), 'ret=-1 errno=38');
  t.is(tryFilter(badNr, 0x80000000 + SYS.getpid), 'ret=-1 errno=38');
  t.regex(tryFilter(badNr, SYS.getpid), /^ret=\d+ errno=0$/);
});

test('tree layout: same decisions as the linear one, in real processes, for a filter too long to scan', (t) => {
  // 150 syscall numbers with rules, some with argument conditions and several per number, and
  // any-number rules in between: order within a number must be kept.
  const rules: SeccompFilter['rules'] = [];
  for (let nr = 200; nr < 350; nr++) rules.push({ sysno: nr, action: SECCOMP_RET.ERRNO(nr % 100) });
  rules.unshift({ sysno: SYS.getppid, args: [{ op: 'eq', value: 7n }], action: SECCOMP_RET.ERRNO(7) });
  rules.push({ sysno: SYS.getppid, action: SECCOMP_RET.ERRNO(9) });
  rules.push({ sysno: SYS.getuid, args: [{ op: 'gt', value: 0x1_0000_0000n }], action: SECCOMP_RET.TRAP });
  const linear = withHarness({ rules, defaultAction: SECCOMP_RET.ALLOW });
  const tree = { ...linear, layout: 'tree' as const };
  t.true(compileSeccomp(tree).length / 8 < 4096);
  const cases: Array<[number, bigint]> = [
    [SYS.getppid, 7n],
    [SYS.getppid, 8n],
    [SYS.getuid, 0x2_0000_0000n],
    [SYS.getuid, 5n],
    [SYS.getgid, 0n],
    [201, 0n],
    [349, 0n],
  ];
  for (const [nr, a] of cases) t.is(tryFilter(tree, nr, a), tryFilter(linear, nr, a), `syscall ${nr}(${a})`);
  t.is(tryFilter(tree, SYS.getppid, 7n), 'ret=-1 errno=7');
  t.is(tryFilter(tree, SYS.getppid, 8n), 'ret=-1 errno=9');
  t.is(tryFilter(tree, SYS.getuid, 0x2_0000_0000n), `sigsys nr=${SYS.getuid}`);
});

test('clearOf: [a, a+len) clear of a range, with the 64-bit sum built in the filter, agrees with the kernel over edge values', (t) => {
  const exe = buildFixture('seccomp-batch', ['-static']);
  const start = 0x7f2a_c000_0000n;
  const end = start + (32n << 20n);
  const rule = { sysno: SYS.getppid, args: [{ op: 'clearOf' as const, lenArg: 1, start, end }], action: SECCOMP_RET.ERRNO(7) };
  const file = join(dir, `f${n++}.bpf`);
  writeFileSync(file, compileSeccomp(withHarness({ rules: [rule, { sysno: SYS.getppid, action: SECCOMP_RET.ERRNO(9) }], defaultAction: SECCOMP_RET.ALLOW })));
  const M = 1n << 64n;
  const near = (v: bigint) => [v - 4097n, v - 4096n, v - 1n, v, v + 1n, v + 4096n].map((x) => ((x % M) + M) % M);
  const addrs = [0n, 1n, 0xffff_ffffn, 1n << 32n, ...near(start), ...near(end), ...near(start - (1n << 32n)), ...near(M), ...near(1n << 63n)];
  const lens = [0n, 1n, 4096n, 0xffff_ffffn, 1n << 32n, (1n << 32n) + 1n, 32n << 20n, 1n << 63n, M - 1n, M - 4096n];
  for (const a of [...addrs]) lens.push(((start - a) % M + M) % M, ((start - a + 1n) % M + M) % M); // ends exactly at or just past start
  const cases = addrs.flatMap((a) => lens.map((l) => [a, l] as const));
  const r = spawnSync(exe, [file, String(SYS.getppid)], { input: cases.map(([a, l]) => `0x${a.toString(16)} 0x${l.toString(16)}`).join('\n') + '\n', encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  const got = r.stdout.trim().split('\n').map(Number);
  t.is(got.length, cases.length);
  const wrong = cases.filter(([a, l], i) => {
    const clear = l === 0n || a >= end || (a + l < M && a + l <= start);
    return got[i] !== (clear ? 7 : 9);
  });
  t.deepEqual(wrong.map(([a, l]) => `0x${a.toString(16)}+0x${l.toString(16)}`), [], `${cases.length} cases`);
});
