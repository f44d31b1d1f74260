import { AUDIT_ARCH_X86_64, BpfAssembler, SECCOMP_DATA, SECCOMP_RET, X32_SYSCALL_BIT } from './bpf.js';

/** A 64-bit condition on a syscall argument or on the instruction pointer. */
export type Condition =
  | { op: 'eq'; value: bigint }
  | { op: 'ne'; value: bigint }
  | { op: 'gt'; value: bigint }
  | { op: 'ge'; value: bigint }
  | { op: 'lt'; value: bigint }
  | { op: 'maskedEq'; mask: bigint; value: bigint }
  /**
   * The range [arg, arg + args[lenArg]) lies clear of [start, end): it is empty, or it ends at or
   * below `start` (the 64-bit sum computed in the filter, an overflowing sum never clear), or it
   * begins at or above `end`. Only on a syscall argument.
   */
  | { op: 'clearOf'; lenArg: number; start: bigint; end: bigint };

/** One rule: a syscall number, conditions that must all hold, and the action taken. */
export interface SeccompRule {
  /** The syscall number; undefined matches any. */
  sysno?: number;
  /** Conditions on args[0..5] (several on one argument must all hold); a missing entry matches anything. */
  args?: Array<Condition | Condition[] | undefined>;
  /** Condition(s) on the instruction pointer of the syscall (gVisor's 7th "argument"); all must hold. */
  ip?: Condition | Condition[];
  action: number;
}

/** A filter: rules tried in order, then the default action. */
export interface SeccompFilter {
  rules: SeccompRule[];
  defaultAction: number;
  /** Action for another architecture or an x32 syscall number. Default: KILL_PROCESS. */
  badArchAction?: number;
  /**
   * `linear` (default): rules tested one after the other. `tree`: a binary search on the
   * syscall number first, then only that number's rules (and the any-number ones, in order), so
   * a syscall with no rule costs a few comparisons however long the filter is (gVisor's
   * BuildProgram does the same).
   */
  layout?: 'linear' | 'tree';
}

const hi = (v: bigint) => Number((BigInt.asUintN(64, v) >> 32n) & 0xffffffffn);
const lo = (v: bigint) => Number(BigInt.asUintN(64, v) & 0xffffffffn);

/**
 * Compiles rules into a seccomp BPF program (the bytes of `struct sock_filter[]`).
 * Each rule is a block: a syscall number test, then each condition as 32-bit halves (high word
 * first), then its action; a failed test falls to the next block.
 *
 * @example
 * ```ts
 * const prog = compileSeccomp({
 *   rules: [{ sysno: SYS.futex, args: [undefined, { op: 'eq', value: 1n }], action: SECCOMP_RET.ALLOW }],
 *   defaultAction: SECCOMP_RET.TRAP,
 * });
 * ```
 */
export function compileSeccomp(filter: SeccompFilter): Uint8Array {
  const p = new BpfAssembler();
  const bad = filter.badArchAction ?? SECCOMP_RET.KILL_PROCESS;
  // The bad-arch returns sit up front: conditional jumps reach 255 instructions at most.
  p.ldAbs(SECCOMP_DATA.arch).jeq(AUDIT_ARCH_X86_64, 'archOk');
  p.ret(bad).label('archOk');
  p.ldAbs(SECCOMP_DATA.nr).jge(X32_SYSCALL_BIT, undefined, 'nrOk');
  p.ret(bad).label('nrOk');
  if (filter.layout === 'tree') return compileTree(p, filter);
  filter.rules.forEach((rule, i) => {
    const next = `rule${i + 1}`;
    p.label(`rule${i}`);
    if (rule.sysno !== undefined) p.ldAbs(SECCOMP_DATA.nr).jeq(rule.sysno, undefined, next);
    emitConditions(p, rule, next, `r${i}`);
    p.ret(rule.action);
  });
  p.label(`rule${filter.rules.length}`).ret(filter.defaultAction);
  return p.assemble();
}

/** The tree layout (see SeccompFilter.layout). A holds the syscall number on entry. */
function compileTree(p: BpfAssembler, filter: SeccompFilter): Uint8Array {
  const numbers = [...new Set(filter.rules.flatMap((r) => (r.sysno === undefined ? [] : [r.sysno])))].sort((a, b) => a - b);
  // Search: each inner node is `jge k` over [lo, hi); long jumps go through `ja` (32-bit).
  const node = (lo: number, hi: number, id: string): void => {
    if (hi - lo === 1) {
      p.jeq(numbers[lo], undefined, `${id}miss`).ja(`nr${numbers[lo]}`);
      p.label(`${id}miss`).ja('anyNr');
      return;
    }
    const mid = (lo + hi) >> 1;
    p.jge(numbers[mid], undefined, `${id}L`).ja(`${id}R`);
    p.label(`${id}L`);
    node(lo, mid, `${id}l`);
    p.label(`${id}R`);
    node(mid, hi, `${id}r`);
  };
  if (numbers.length > 0) node(0, numbers.length, 't');
  else p.ja('anyNr');
  const block = (rules: SeccompRule[], id: string): void => {
    rules.forEach((rule, i) => {
      const next = `${id}_${i + 1}`;
      p.label(`${id}_${i}`);
      emitConditions(p, rule, next, `${id}_${i}`);
      p.ret(rule.action);
    });
    p.label(`${id}_${rules.length}`).ret(filter.defaultAction);
  };
  for (const nr of numbers) {
    p.label(`nr${nr}`);
    block(filter.rules.filter((r) => r.sysno === undefined || r.sysno === nr), `g${nr}`);
  }
  p.label('anyNr');
  block(filter.rules.filter((r) => r.sysno === undefined), 'gany');
  return p.assemble();
}

/** A rule's argument and instruction-pointer tests; jumps to `fail` when one does not hold. */
function emitConditions(p: BpfAssembler, rule: SeccompRule, fail: string, id: string): void {
  rule.args?.forEach((c, a) => {
    const cs = c === undefined ? [] : Array.isArray(c) ? c : [c];
    cs.forEach((one, k) => {
      if (one.op === 'clearOf') rangeClear(p, a, one, fail, `${id}a${a}c${k}`);
      else condition(p, one, SECCOMP_DATA.argHi(a), SECCOMP_DATA.argLo(a), fail, `${id}a${a}c${k}`);
    });
  });
  const ips = rule.ip === undefined ? [] : Array.isArray(rule.ip) ? rule.ip : [rule.ip];
  ips.forEach((c, k) => {
    if (c.op === 'clearOf') throw new RangeError('clearOf applies to syscall arguments only');
    condition(p, c, SECCOMP_DATA.ipHi, SECCOMP_DATA.ipLo, fail, `${id}ip${k}`);
  });
}

/** Scratch words of {@link rangeClear}: the sum's low and high words. */
const SUM_LO = 0;
const SUM_HI = 1;

/**
 * Emits `clearOf` for argument `a`: falls through when [a, a + len) is clear of [start, end),
 * jumps to `fail` otherwise. Classic BPF has 32-bit arithmetic only: the 64-bit sum is built
 * from the halves with the carry, and an overflow of the high word fails the test.
 */
function rangeClear(p: BpfAssembler, a: number, c: Extract<Condition, { op: 'clearOf' }>, fail: string, id: string): void {
  const [aHi, aLo, lHi, lLo] = [SECCOMP_DATA.argHi(a), SECCOMP_DATA.argLo(a), SECCOMP_DATA.argHi(c.lenArg), SECCOMP_DATA.argLo(c.lenArg)];
  const ok = `${id}ok`;
  // Empty: clear wherever it is.
  p.ldAbs(lHi).jeq(0, undefined, `${id}from`).ldAbs(lLo).jeq(0, ok);
  // At or above `end`: clear whatever the length.
  p.label(`${id}from`).ldAbs(aHi).jgt(hi(c.end), ok).jeq(hi(c.end), undefined, `${id}sum`);
  p.ldAbs(aLo).jge(lo(c.end), ok);
  // sum_lo = a_lo + len_lo; a carry when it wrapped (sum_lo < a_lo).
  p.label(`${id}sum`).ldAbs(lLo).tax().ldAbs(aLo).addX().st(SUM_LO);
  p.ldAbs(aLo).tax().ldMem(SUM_LO).jgeX(`${id}nocarry`);
  // With a carry: sum_hi = a_hi + len_hi + 1; overflow when a_hi + len_hi wrapped or is ~0.
  p.ldAbs(lHi).tax().ldAbs(aHi).addX().st(SUM_HI);
  p.ldAbs(aHi).tax().ldMem(SUM_HI).jgeX(undefined, fail);
  p.jeq(0xffffffff, fail).add(1).st(SUM_HI).ja(`${id}cmp`);
  // Without: sum_hi = a_hi + len_hi; overflow when it wrapped.
  p.label(`${id}nocarry`).ldAbs(lHi).tax().ldAbs(aHi).addX().st(SUM_HI);
  p.ldAbs(aHi).tax().ldMem(SUM_HI).jgeX(undefined, fail);
  // The end of the range at or below `start`.
  p.label(`${id}cmp`).ldMem(SUM_HI).jgt(hi(c.start), fail).jeq(hi(c.start), undefined, ok);
  p.ldMem(SUM_LO).jgt(lo(c.start), fail);
  p.label(ok);
}

/** Emits a 64-bit test; falls through when it holds, jumps to `fail` when not. */
function condition(p: BpfAssembler, c: Exclude<Condition, { op: 'clearOf' }>, hiOff: number, loOff: number, fail: string, id: string): void {
  const ok = `${id}ok`;
  switch (c.op) {
    case 'eq':
      p.ldAbs(hiOff).jeq(hi(c.value), undefined, fail);
      p.ldAbs(loOff).jeq(lo(c.value), undefined, fail);
      break;
    case 'ne':
      p.ldAbs(hiOff).jeq(hi(c.value), undefined, ok);
      p.ldAbs(loOff).jeq(lo(c.value), fail);
      break;
    case 'maskedEq':
      p.ldAbs(hiOff).and(hi(c.mask)).jeq(hi(c.value & c.mask), undefined, fail);
      p.ldAbs(loOff).and(lo(c.mask)).jeq(lo(c.value & c.mask), undefined, fail);
      break;
    case 'gt':
    case 'ge': {
      // hi > v.hi: holds; hi == v.hi: decided by lo; else fails.
      p.ldAbs(hiOff).jgt(hi(c.value), ok).jeq(hi(c.value), undefined, fail);
      p.ldAbs(loOff);
      if (c.op === 'gt') p.jgt(lo(c.value), undefined, fail);
      else p.jge(lo(c.value), undefined, fail);
      break;
    }
    case 'lt':
      // v > x  <=>  not (x >= v)
      p.ldAbs(hiOff).jgt(hi(c.value), fail).jeq(hi(c.value), undefined, ok);
      p.ldAbs(loOff).jge(lo(c.value), fail);
      break;
  }
  p.label(ok);
}

const FUTEX_WAIT = 0n;
const FUTEX_WAKE = 1n;
const ARCH_SET_FS = 0x1002n;
const ARCH_GET_FS = 0x1003n;

/**
 * The filter of a sysmsg thread (gVisor's sysmsgThreadRules, filter #2): every syscall traps
 * (SIGSYS to the thread's own handler) except the few the stub code itself makes, recognised by
 * an instruction pointer inside the stub region (application code all lies below it), with
 * argument checks: futex wake/wait on stub memory only, rt_sigreturn, sched_yield, and
 * arch_prctl to switch FS base.
 *
 * @example
 * ```ts
 * const bytes = compileSeccomp(sysmsgThreadFilter(platform.stubRegion.start, SYS));
 * ```
 */
export function sysmsgThreadFilter(
  stubStart: bigint,
  nr: { futex: number; rt_sigreturn: number; sched_yield: number; arch_prctl: number },
  stubEnd?: bigint,
): SeccompFilter {
  return { rules: stubRules(stubStart, nr, stubEnd), defaultAction: SECCOMP_RET.TRAP, badArchAction: SECCOMP_RET.TRAP };
}

/**
 * The rules that let the stub code make its own syscalls (part of {@link sysmsgThreadFilter},
 * reused by the sentry's program filters). With `stubEnd`, "in the stub" is the range
 * [stubStart, stubEnd): a program's libraries may be mapped above the stub region.
 *
 * @example
 * ```ts
 * const rules = stubRules(region.start, SYS, region.end);
 * ```
 */
export function stubRules(
  stubStart: bigint,
  nr: { futex: number; rt_sigreturn: number; sched_yield: number; arch_prctl: number },
  stubEnd?: bigint,
): SeccompRule[] {
  const ip: Condition[] = [{ op: 'ge', value: stubStart }];
  if (stubEnd !== undefined) ip.push({ op: 'lt', value: stubEnd });
  const zero: Condition = { op: 'eq', value: 0n };
  const allow = SECCOMP_RET.ALLOW;
  // futex on stub memory only (the range, when known: program memory may lie above the region).
  const inStub: Condition[] = [{ op: 'ge', value: stubStart }];
  if (stubEnd !== undefined) inStub.push({ op: 'lt', value: stubEnd });
  const futexRules = (op: bigint, val?: Condition): SeccompRule[] => [
    { sysno: nr.futex, args: [inStub, { op: 'eq', value: op }, val, zero, zero, zero], ip, action: allow },
  ];
  return [
    ...futexRules(FUTEX_WAKE, { op: 'eq', value: 1n }),
    ...futexRules(FUTEX_WAIT),
    { sysno: nr.rt_sigreturn, ip, action: allow },
    { sysno: nr.sched_yield, ip, action: allow },
    { sysno: nr.arch_prctl, args: [{ op: 'eq', value: ARCH_SET_FS }], ip, action: allow },
    { sysno: nr.arch_prctl, args: [{ op: 'eq', value: ARCH_GET_FS }], ip, action: allow },
  ];
}

/** Bytes of a `struct sock_fprog` (u16 len, padding, u64 filter pointer). */
export const SOCK_FPROG_SIZE = 16;

/**
 * Writes a rules area (gVisor's stubSysmsgRules): a `struct sock_fprog` whose filter pointer is
 * `areaAddr + 16` (where the stub sees the area), then the compiled program. Returns the bytes
 * used. Stubs map the area read-only, so a thread installs a filter the program cannot change.
 *
 * @example
 * ```ts
 * writeSockFprog(memoryFile.view(range), compileSeccomp(filter), rulesAddr(region));
 * ```
 */
export function writeSockFprog(area: Uint8Array, prog: Uint8Array, areaAddr: bigint): number {
  if (prog.length === 0 || prog.length % 8 !== 0) throw new RangeError('a seccomp program is a non-empty array of 8-byte instructions');
  if (SOCK_FPROG_SIZE + prog.length > area.length) throw new RangeError(`the seccomp filter is too long (${prog.length / 8} instructions)`);
  const dv = new DataView(area.buffer, area.byteOffset, area.byteLength);
  dv.setUint16(0, prog.length / 8, true);
  dv.setBigUint64(8, areaAddr + BigInt(SOCK_FPROG_SIZE), true);
  area.set(prog, SOCK_FPROG_SIZE);
  return SOCK_FPROG_SIZE + prog.length;
}
