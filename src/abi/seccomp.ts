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
  /** Action for another architecture. Default: KILL_PROCESS. */
  badArchAction?: number;
  /**
   * Action for a number no x86-64 call has: 0x40000000 and up as the kernel compares it (an x32
   * call, or one whose int is negative). Default: badArchAction.
   */
  badNrAction?: number;
  /**
   * `linear` (default): rules tested one after the other. `tree`: a binary search on the
   * syscall number first, then only that number's rules (and the any-number ones, in order), so
   * a syscall with no rule costs a few comparisons however long the filter is (gVisor's
   * BuildProgram does the same).
   */
  layout?: 'linear' | 'tree';
  /**
   * Calls made with the instruction pointer exactly at `ip` (a passthrough gadget's return
   * address) are decided by these rules and default instead of `rules` and `defaultAction`. The
   * pointer is tested once, up front, so neither side repeats the test in its rules: a filter
   * that treats the gadget apart stays short however many numbers the other side traps.
   * `alsoIp`: a second pointer judged the same way (the trace ring's `syscall`), in the same
   * 4 GiB as `ip`.
   */
  atIp?: { ip: bigint; rules: SeccompRule[]; defaultAction: number; alsoIp?: bigint };
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
  p.ret(filter.badNrAction ?? bad).label('nrOk');
  if (filter.atIp) {
    const { ip, alsoIp } = filter.atIp;
    if (alsoIp !== undefined && hi(alsoIp) !== hi(ip)) throw new RangeError('atIp.alsoIp must lie in the same 4 GiB as atIp.ip');
    p.ldAbs(SECCOMP_DATA.ipHi).jeq(hi(ip), undefined, 'notAt').ldAbs(SECCOMP_DATA.ipLo).jeq(lo(ip), 'at');
    if (alsoIp !== undefined) p.jeq(lo(alsoIp), 'at');
    p.label('notAt').ja('main');
    p.label('at').ldAbs(SECCOMP_DATA.nr);
    emitRules(p, filter.atIp.rules, filter.atIp.defaultAction, filter.layout, 'at_');
    p.label('main').ldAbs(SECCOMP_DATA.nr);
  }
  emitRules(p, filter.rules, filter.defaultAction, filter.layout, '');
  return p.assemble();
}

/** Emits `rules` then `defaultAction` in `layout`; A holds the syscall number on entry. Labels start with `id`. */
function emitRules(p: BpfAssembler, rules: SeccompRule[], defaultAction: number, layout: SeccompFilter['layout'], id: string): void {
  if (layout === 'tree') return emitTree(p, rules, defaultAction, id);
  rules.forEach((rule, i) => {
    const next = `${id}rule${i + 1}`;
    p.label(`${id}rule${i}`);
    if (rule.sysno !== undefined) p.ldAbs(SECCOMP_DATA.nr).jeq(rule.sysno, undefined, next);
    emitConditions(p, rule, next, `${id}r${i}`);
    p.ret(rule.action);
  });
  p.label(`${id}rule${rules.length}`).ret(defaultAction);
}

/** What a range of syscall numbers leads to in the tree: a plain return or a block of rules. */
type Leaf = { ret: number } | { block: string };

/**
 * The tree layout (see SeccompFilter.layout); A holds the syscall number on entry. The numbers
 * are cut into ranges that end the same way (a run of numbers all trapped is one range, a number
 * with argument rules is one of its own), and a binary search over the ranges' starts picks one:
 * a range that only returns costs one instruction, so trapping a whole trace class stays short.
 */
function emitTree(p: BpfAssembler, rules: SeccompRule[], defaultAction: number, id: string): void {
  const anyRules = rules.filter((r) => r.sysno === undefined);
  // Numbers whose rules read the same share one block (munmap, mprotect, madvise: one range test).
  const blocks = new Map<string, { label: string; list: SeccompRule[] }>();
  const leafOf = (list: SeccompRule[], label: string): Leaf => {
    if (list.length === 0) return { ret: defaultAction };
    if (unconditional(list[0])) return { ret: list[0].action };
    const key = JSON.stringify(list.map(({ sysno: _, ...r }) => r), (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));
    let block = blocks.get(key);
    if (!block) blocks.set(key, (block = { label, list }));
    return { block: block.label };
  };
  const numbers = [...new Set(rules.flatMap((r) => (r.sysno === undefined ? [] : [r.sysno])))].sort((a, b) => a - b);
  const own = new Map(numbers.map((nr) => [nr, rules.filter((r) => r.sysno === undefined || r.sysno === nr)]));
  const anyLeaf = leafOf(anyRules, `${id}any`);
  // Ranges [starts[i], starts[i + 1]) and their leaves; the last one runs to the top.
  const starts: number[] = [0];
  const leaves: Leaf[] = [anyLeaf];
  const push = (from: number, leaf: Leaf): void => {
    const last = leaves[leaves.length - 1];
    if (sameLeaf(last, leaf)) return;
    if (starts[starts.length - 1] === from) {
      // The previous range was empty: drop it, and join the one before when it ends the same way.
      if (leaves.length > 1 && sameLeaf(leaves[leaves.length - 2], leaf)) {
        starts.pop();
        leaves.pop();
      } else leaves[leaves.length - 1] = leaf;
    } else {
      starts.push(from);
      leaves.push(leaf);
    }
  };
  for (const nr of numbers) {
    push(nr, leafOf(own.get(nr) ?? [], `${id}nr${nr}`));
    push(nr + 1, anyLeaf);
  }
  emitSearch(p, starts, leaves, 0, starts.length, `${id}t`);
  for (const { label, list } of blocks.values()) emitBlock(p, list, defaultAction, label);
}

const unconditional = (r: SeccompRule): boolean =>
  (r.args ?? []).every((c) => c === undefined || (Array.isArray(c) && c.length === 0)) && (r.ip === undefined || (Array.isArray(r.ip) && r.ip.length === 0));

const sameLeaf = (a: Leaf, b: Leaf): boolean => ('ret' in a && 'ret' in b ? a.ret === b.ret : 'block' in a && 'block' in b && a.block === b.block);

/** Instructions {@link emitSearch} emits for ranges [i, j). */
function searchSize(i: number, j: number): number {
  if (j - i === 1) return 1;
  const mid = (i + j) >> 1;
  const left = searchSize(i, mid);
  return (left <= 255 ? 1 : 2) + left + searchSize(mid, j);
}

/** A binary search over ranges [i, j) (A is the number): each leaf a `ret` or a `ja` to its block. */
function emitSearch(p: BpfAssembler, starts: number[], leaves: Leaf[], i: number, j: number, at: string): void {
  if (j - i === 1) {
    const leaf = leaves[i];
    if ('ret' in leaf) p.ret(leaf.ret);
    else p.ja(leaf.block);
    return;
  }
  const mid = (i + j) >> 1;
  // Short: the right half begins within a conditional jump's reach; else through a `ja`.
  if (searchSize(i, mid) <= 255) p.jge(starts[mid], `${at}R`);
  else p.jge(starts[mid], undefined, `${at}L`).ja(`${at}R`).label(`${at}L`);
  emitSearch(p, starts, leaves, i, mid, `${at}l`);
  p.label(`${at}R`);
  emitSearch(p, starts, leaves, mid, j, `${at}r`);
}

/** One number's rules in order, then the default. */
function emitBlock(p: BpfAssembler, list: SeccompRule[], defaultAction: number, label: string): void {
  p.label(label);
  list.forEach((rule, i) => {
    const next = `${label}_${i + 1}`;
    p.label(`${label}_${i}`);
    emitConditions(p, rule, next, `${label}_${i}`);
    p.ret(rule.action);
  });
  p.label(`${label}_${list.length}`).ret(defaultAction);
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
