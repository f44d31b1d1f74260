import { AUDIT_ARCH_X86_64, BpfAssembler, SECCOMP_DATA, SECCOMP_RET, X32_SYSCALL_BIT } from './bpf.js';

/** A 64-bit condition on a syscall argument or on the instruction pointer. */
export type Condition =
  | { op: 'eq'; value: bigint }
  | { op: 'ne'; value: bigint }
  | { op: 'gt'; value: bigint }
  | { op: 'ge'; value: bigint }
  | { op: 'lt'; value: bigint }
  | { op: 'maskedEq'; mask: bigint; value: bigint };

/** One rule: a syscall number, conditions that must all hold, and the action taken. */
export interface SeccompRule {
  sysno: number;
  /** Conditions on args[0..5]; a missing entry matches anything. */
  args?: Array<Condition | undefined>;
  /** Condition on the instruction pointer of the syscall (gVisor's 7th "argument"). */
  ip?: Condition;
  action: number;
}

/** A filter: rules tried in order, then the default action. */
export interface SeccompFilter {
  rules: SeccompRule[];
  defaultAction: number;
  /** Action for another architecture or an x32 syscall number. Default: KILL_PROCESS. */
  badArchAction?: number;
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
  p.ldAbs(SECCOMP_DATA.arch).jeq(AUDIT_ARCH_X86_64, undefined, 'badArch');
  p.ldAbs(SECCOMP_DATA.nr).jge(X32_SYSCALL_BIT, 'badArch');
  filter.rules.forEach((rule, i) => {
    const next = `rule${i + 1}`;
    p.label(`rule${i}`);
    p.ldAbs(SECCOMP_DATA.nr).jeq(rule.sysno, undefined, next);
    rule.args?.forEach((c, a) => {
      if (c) condition(p, c, SECCOMP_DATA.argHi(a), SECCOMP_DATA.argLo(a), next, `r${i}a${a}`);
    });
    if (rule.ip) condition(p, rule.ip, SECCOMP_DATA.ipHi, SECCOMP_DATA.ipLo, next, `r${i}ip`);
    p.ret(rule.action);
  });
  p.label(`rule${filter.rules.length}`).ret(filter.defaultAction);
  p.label('badArch').ret(bad);
  return p.assemble();
}

/** Emits a 64-bit test; falls through when it holds, jumps to `fail` when not. */
function condition(p: BpfAssembler, c: Condition, hiOff: number, loOff: number, fail: string, id: string): void {
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
export function sysmsgThreadFilter(stubStart: bigint, nr: { futex: number; rt_sigreturn: number; sched_yield: number; arch_prctl: number }): SeccompFilter {
  const ip: Condition = { op: 'ge', value: stubStart };
  const inStub: Condition = { op: 'ge', value: stubStart };
  const zero: Condition = { op: 'eq', value: 0n };
  const allow = SECCOMP_RET.ALLOW;
  return {
    rules: [
      { sysno: nr.futex, args: [inStub, { op: 'eq', value: FUTEX_WAKE }, { op: 'eq', value: 1n }, zero, zero, zero], ip, action: allow },
      { sysno: nr.futex, args: [inStub, { op: 'eq', value: FUTEX_WAIT }, undefined, zero, zero, zero], ip, action: allow },
      { sysno: nr.rt_sigreturn, ip, action: allow },
      { sysno: nr.sched_yield, ip, action: allow },
      { sysno: nr.arch_prctl, args: [{ op: 'eq', value: ARCH_SET_FS }], ip, action: allow },
      { sysno: nr.arch_prctl, args: [{ op: 'eq', value: ARCH_GET_FS }], ip, action: allow },
    ],
    defaultAction: SECCOMP_RET.TRAP,
    badArchAction: SECCOMP_RET.TRAP,
  };
}
