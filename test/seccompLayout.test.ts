/**
 * The tree layout and the instruction-pointer branch against what the rules mean: every syscall
 * number, both sides of the gadget, argument values at the edges of each condition. The meaning
 * is {@link decide} (first rule whose number and conditions hold, else the default); the compiled
 * program runs in {@link runBpf}, a classic-BPF interpreter of the opcodes our assembler emits.
 * bpf.test.ts checks the same compiler in real processes; this one covers what one process per
 * call could not (thousands of decisions per filter).
 */
import test from 'ava';
import { BPF, SECCOMP_DATA, SECCOMP_RET, AUDIT_ARCH_X86_64 } from '../src/abi/bpf.js';
import { compileSeccomp, type Condition, type SeccompFilter, type SeccompRule } from '../src/abi/seccomp.js';
import { SYS } from '../src/abi/syscalls.js';
import { ERRNO } from '../src/abi/linux.js';
import { abi } from '../src/abi/stub.js';
import { programFilter } from '../src/sentry/filter.js';
import { SYSCALL_CLASSES } from '../src/sentry/strace/syscallClasses.js';

interface Call {
  nr: number;
  ip: bigint;
  args: bigint[];
}

const M64 = (1n << 64n) - 1n;

/** Runs a compiled filter on one call: the action it returns. */
function runBpf(prog: Uint8Array, c: Call): number {
  const dv = new DataView(prog.buffer, prog.byteOffset, prog.byteLength);
  const data = new DataView(new ArrayBuffer(64));
  data.setUint32(SECCOMP_DATA.nr, c.nr, true);
  data.setUint32(SECCOMP_DATA.arch, AUDIT_ARCH_X86_64, true);
  data.setBigUint64(SECCOMP_DATA.ipLo, c.ip & M64, true);
  c.args.forEach((a, i) => data.setBigUint64(SECCOMP_DATA.argLo(i), a & M64, true));
  const mem = new Uint32Array(16);
  let [a, x] = [0, 0];
  for (let pc = 0; pc < prog.length / 8; pc++) {
    const [code, jt, jf, k] = [dv.getUint16(pc * 8, true), dv.getUint8(pc * 8 + 2), dv.getUint8(pc * 8 + 3), dv.getUint32(pc * 8 + 4, true)];
    const jump = (cond: boolean) => (pc += cond ? jt : jf);
    switch (code) {
      case BPF.LD_W_ABS: a = data.getUint32(k, true); break;
      case BPF.ALU_AND_K: a = (a & k) >>> 0; break;
      case BPF.ALU_ADD_K: a = (a + k) >>> 0; break;
      case BPF.ALU_ADD_X: a = (a + x) >>> 0; break;
      case BPF.LD_MEM: a = mem[k]; break;
      case BPF.ST: mem[k] = a; break;
      case BPF.MISC_TAX: x = a; break;
      case BPF.JMP_JA: pc += k; break;
      case BPF.JMP_JEQ_K: jump(a === k); break;
      case BPF.JMP_JGT_K: jump(a > k); break;
      case BPF.JMP_JGE_K: jump(a >= k); break;
      case BPF.JMP_JSET_K: jump((a & k) !== 0); break;
      case BPF.JMP_JGE_X: jump(a >= x); break;
      case BPF.JMP_JGT_X: jump(a > x); break;
      case BPF.RET_K: return k;
      default: throw new Error(`opcode 0x${code.toString(16)} at ${pc}`);
    }
  }
  throw new Error('ran off the end');
}

/** What a condition means on a 64-bit value (args for clearOf's length). */
function holds(c: Condition, v: bigint, args: bigint[]): boolean {
  switch (c.op) {
    case 'eq': return v === (c.value & M64);
    case 'ne': return v !== (c.value & M64);
    case 'gt': return v > c.value;
    case 'ge': return v >= c.value;
    case 'lt': return v < c.value;
    case 'maskedEq': return (v & c.mask) === (c.value & c.mask);
    case 'clearOf': {
      const len = args[c.lenArg];
      return len === 0n || v >= c.end || (v + len <= M64 && v + len <= c.start);
    }
  }
}

const list = <T>(c: T | T[] | undefined): T[] => (c === undefined ? [] : Array.isArray(c) ? c : [c]);

/** What a rule list means: the first rule that matches decides. */
function decideRules(rules: SeccompRule[], def: number, c: Call): number {
  for (const r of rules) {
    if (r.sysno !== undefined && r.sysno !== c.nr) continue;
    const argsHold = (r.args ?? []).every((cs, i) => list(cs).every((one) => holds(one, c.args[i], c.args)));
    if (argsHold && list(r.ip).every((one) => holds(one, c.ip, c.args))) return r.action;
  }
  return def;
}

function decide(f: SeccompFilter, c: Call): number {
  if (f.atIp && c.ip === f.atIp.ip) return decideRules(f.atIp.rules, f.atIp.defaultAction, c);
  return decideRules(f.rules, f.defaultAction, c);
}

/** A small deterministic PRNG (mulberry32), so a failure names a seed that reproduces it. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const EDGES = [0n, 1n, 7n, 0xffff_ffffn, 1n << 32n, 0x1_0000_0007n, 0x7e00_0000_0000n, 0x7f00_0000_0000n, M64];

function randomFilter(r: () => number): SeccompFilter {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  const cond = (): Condition => {
    const value = pick(EDGES);
    const op = pick(['eq', 'ne', 'gt', 'ge', 'lt', 'maskedEq', 'clearOf'] as const);
    if (op === 'maskedEq') return { op, mask: pick([0xffn, 0xffff_ffffn, M64, 0x10n]), value };
    if (op === 'clearOf') return { op, lenArg: 1, start: 0x7e00_0000_0000n, end: 0x7f00_0000_0000n };
    return { op, value };
  };
  const rule = (): SeccompRule => {
    const sysno = r() < 0.1 ? undefined : Math.floor(r() * 40) * (r() < 0.5 ? 1 : 11);
    const args: Array<Condition | Condition[] | undefined> = [];
    if (r() < 0.5) args[Math.floor(r() * 3)] = r() < 0.3 ? [cond(), cond()] : cond();
    const action = pick([SECCOMP_RET.ALLOW, SECCOMP_RET.TRAP, SECCOMP_RET.ERRNO(Math.floor(r() * 5) + 1)]);
    const ip = r() < 0.1 ? cond() : undefined;
    return { sysno, args, ip: ip?.op === 'clearOf' ? undefined : ip, action };
  };
  const rules = (n: number) => Array.from({ length: n }, rule);
  const f: SeccompFilter = { rules: rules(Math.floor(r() * 60)), defaultAction: pick([SECCOMP_RET.ALLOW, SECCOMP_RET.TRAP]), layout: 'tree' };
  if (r() < 0.5) f.atIp = { ip: pick(EDGES), rules: rules(Math.floor(r() * 20)), defaultAction: pick([SECCOMP_RET.ALLOW, SECCOMP_RET.TRAP]) };
  return f;
}

/** Calls to try: every number up to `maxNr`, each at the given IPs, args from the edge values. */
function* calls(maxNr: number, ips: bigint[], r: () => number): Generator<Call> {
  for (let nr = 0; nr <= maxNr; nr++) {
    for (const ip of ips) {
      for (let k = 0; k < 2; k++) yield { nr, ip, args: Array.from({ length: 6 }, () => EDGES[Math.floor(r() * EDGES.length)]) };
    }
  }
}

function mismatches(f: SeccompFilter, maxNr: number, ips: bigint[], seed: number): string[] {
  const prog = compileSeccomp(f);
  const r = rng(seed);
  const bad: string[] = [];
  for (const c of calls(maxNr, ips, r)) {
    const [want, got] = [decide(f, c), runBpf(prog, c)];
    if (want !== got && bad.length < 5) bad.push(`nr ${c.nr} ip 0x${c.ip.toString(16)} args ${c.args.map((a) => '0x' + a.toString(16)).join(',')}: want 0x${want.toString(16)}, got 0x${got.toString(16)}`);
  }
  return bad;
}

test('tree layout with an instruction-pointer branch decides every call as its rules say (random filters)', (t) => {
  for (let seed = 1; seed <= 50; seed++) {
    const f = randomFilter(rng(seed));
    const ips = [...EDGES.slice(0, 4), ...(f.atIp ? [f.atIp.ip] : [])];
    t.deepEqual(mismatches(f, 460, ips, seed), [], `seed ${seed}`);
    // The linear layout means the same (when it fits).
    const linear = { ...f, layout: 'linear' as const };
    t.deepEqual(mismatches(linear, 460, ips, seed), [], `seed ${seed} linear`);
  }
});

const region = { start: 0x7e00_0000_0000n, end: 0x7e00_0100_0000n, gadgetAddr: 0x7e00_0000_1000n };
const ALL = [...new Set(Object.values(SYS))].sort((a, b) => a - b);

test("program filters stay under the kernel's 4096 instructions for every trace class, any union, and the worst lists", (t) => {
  const classes = [...SYSCALL_CLASSES.values()];
  const union = new Set(classes.flatMap((s) => [...s]));
  const cases: Array<[string, Set<number>]> = [
    ['none', new Set()],
    ...[...SYSCALL_CLASSES].map(([name, set]): [string, Set<number>] => [`%${name}`, new Set(set)]),
    ['every class', union],
    // Every other number: no two trapped numbers share a range, the most ranges a list can make.
    ['every other number', new Set(ALL.filter((_, i) => i % 2 === 0))],
    ['every other, 200 of them', new Set(ALL.filter((_, i) => i % 2 === 1).slice(0, 200))],
    ['all', new Set(ALL)],
  ];
  let largest = 0;
  for (const [name, trap] of cases) {
    for (const nodePid of [undefined, 4242]) {
      // A deny of every third number, each with its own errno: more ranges still.
      for (const deny of [new Map<number, number>(), new Map(ALL.filter((_, i) => i % 3 === 0).map((nr, i) => [nr, 1 + (i % 100)]))]) {
        const n = programFilter({ region, trap, deny, nodePid }).length / 8;
        largest = Math.max(largest, n);
        t.true(n <= 4096, `${name}: ${n} instructions`);
        t.true(16 + n * 8 <= abi.STUB_RULES_SIZE, `${name}: ${n} instructions fit the stub's rules area`);
      }
    }
  }
  t.log(`largest program filter: ${largest} instructions`);
});

test('a program filter decides every call as its rules say: gadget, stub code and program code', (t) => {
  // programFilter's rules are not exported; decide what they must mean from the spec instead.
  const trap = new Set(SYSCALL_CLASSES.get('file'));
  const prog = programFilter({ region, trap, deny: new Map([[SYS.unlink, 13], [SYS.socket, 97]]), nodePid: 4242 });
  const at = (nr: number, ip: bigint, ...args: bigint[]) => runBpf(prog, { nr, ip, args: [...args, 0n, 0n, 0n, 0n, 0n, 0n].slice(0, 6) });
  const gadget = region.gadgetAddr + 2n;
  const program = 0x40_1000n;
  const stub = region.start + 0x10n;
  // Traced calls trap from the program and pass at the gadget (the sentry's passthrough).
  t.is(at(SYS.openat, program), SECCOMP_RET.TRAP);
  t.is(at(SYS.openat, gadget), SECCOMP_RET.ALLOW);
  // Untraced calls pass; the sentry's own calls trap on both sides.
  t.is(at(SYS.read, program), SECCOMP_RET.ALLOW);
  t.is(at(SYS.getpid, program), SECCOMP_RET.TRAP);
  t.is(at(SYS.clone, gadget), SECCOMP_RET.TRAP);
  // --deny: refused everywhere, stub code included; a traced one (unlink is a file call) traps
  // from program code instead (the sentry refuses it, and the trace shows it).
  for (const ip of [program, gadget, stub]) t.is(at(SYS.socket, ip), SECCOMP_RET.ERRNO(97));
  t.is(at(SYS.unlink, program), SECCOMP_RET.TRAP);
  t.is(at(SYS.unlink, region.end + 0x1000n), SECCOMP_RET.TRAP, 'a library mapped above the stub region is program code');
  for (const ip of [gadget, stub]) t.is(at(SYS.unlink, ip), SECCOMP_RET.ERRNO(13));
  // Node's pid: out of reach from both sides.
  for (const ip of [program, gadget]) t.is(at(SYS.kill, ip, 4242n, 9n), SECCOMP_RET.ERRNO(1));
  // The stub's fds cannot be closed; other fds can.
  t.is(at(SYS.close, gadget, 1000n), SECCOMP_RET.ERRNO(9));
  t.is(at(SYS.close, program, 3n), SECCOMP_RET.ALLOW);
  // Memory calls: clear of the stub region pass, touching it trap, on both sides.
  for (const ip of [program, gadget]) {
    t.is(at(SYS.munmap, ip, 0x1000n, 0x1000n), SECCOMP_RET.ALLOW);
    t.is(at(SYS.munmap, ip, region.start - 0x1000n, 0x2000n), SECCOMP_RET.TRAP);
    t.is(at(SYS.mprotect, ip, region.start, 0x1000n, 1n), SECCOMP_RET.TRAP);
    t.is(at(SYS.mmap, ip, 0n, 0x1000n, 3n, 0x22n), SECCOMP_RET.ALLOW);
    t.is(at(SYS.mmap, ip, region.start, 0x1000n, 3n, 0x32n), SECCOMP_RET.TRAP);
  }
  // The stub's futex on its own memory passes from stub code only.
  t.is(at(SYS.futex, stub, region.start + 0x100n, 1n, 1n), SECCOMP_RET.ALLOW);
  t.is(at(SYS.futex, program, region.start + 0x100n, 1n, 1n), SECCOMP_RET.TRAP);
  // A number no x86-64 call has (x32's, a negative int): ENOSYS, as Linux without x32 answers it.
  t.is(at(SYS.getpid + 0x40000000, program), SECCOMP_RET.ERRNO(ERRNO.ENOSYS));
  t.is(at(SYS.getpid + 0x80000000, program), SECCOMP_RET.ERRNO(ERRNO.ENOSYS));
});
