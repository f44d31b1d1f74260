import { SECCOMP_RET } from '../abi/bpf.js';
import { ERRNO } from '../abi/linux.js';
import { compileSeccomp, stubRules, type Condition, type SeccompRule } from '../abi/seccomp.js';
import { SYS } from '../abi/syscalls.js';
import { abi } from '../abi/stub.js';
import { PRCTL_SENTRY } from './syscalls/sys_process.js';
import { PID_ARG_CALLS } from './syscalls/sys_pidargs.js';
import { ATTR_CALLS, ATTR_REPLAY, PR_SET_KEEPCAPS } from './syscalls/sys_attrs.js';
import { CPU_CLOCKS } from './syscalls/sys_time.js';
import { MASKED_WAITS } from './syscalls/sys_poll.js';
import { TIOCSCTTY, TTY_CHECKED, TTY_SENTRY } from './syscalls/sys_tty.js';

/**
 * Syscalls the sentry always handles itself (gVisor's sentry would handle all; we pass through
 * everything else). They trap wherever they come from, and the passthrough gadget refuses them:
 * run by the stub on the program's behalf they would change the stub thread, not the program's
 * thread (sysmsg threads are multiplexed over the program's threads).
 */
export const SENTRY_ONLY: ReadonlySet<number> = new Set([
  SYS.exit, SYS.exit_group, SYS.clone, SYS.clone3, SYS.fork, SYS.vfork, SYS.execve, SYS.execveat,
  SYS.arch_prctl, SYS.rt_sigaction, SYS.rt_sigprocmask, SYS.rt_sigreturn, SYS.sigaltstack,
  SYS.rt_sigsuspend, SYS.rt_sigpending, SYS.rt_sigtimedwait, SYS.rt_sigqueueinfo, SYS.rt_tgsigqueueinfo,
  SYS.pause, SYS.tkill, SYS.signalfd, SYS.signalfd4, SYS.brk, SYS.rseq, SYS.set_tid_address, SYS.set_robust_list, SYS.get_robust_list,
  SYS.getpid, SYS.gettid, SYS.getppid, SYS.wait4, SYS.waitid, SYS.seccomp, SYS.ptrace,
  SYS.getpgid, SYS.getpgrp, SYS.setpgid, SYS.getsid, SYS.setsid,
  // Process timers: the kernel's would belong to the sysmsg thread making the call (see ProcessTimers).
  SYS.alarm, SYS.getitimer, SYS.setitimer, SYS.timer_create, SYS.timer_settime, SYS.timer_gettime,
  SYS.timer_getoverrun, SYS.timer_delete,
]);

/**
 * Syscalls that trap to the sentry, which checks them, then either emulates them or passes them
 * through the gadget: thread-group-wide ones (futex, kill), those that could reach the stub
 * or Node (close_range over the stub's fds, mremap), readlink of /proc/self/exe (the stub's
 * own executable is Node's), sleeps (a sleeping thread must not hold a stub thread), getrusage
 * and times (the kernel would answer for the sysmsg thread, see sys_usage.ts), and calls
 * naming a pid or tid of the program (see sys_pidargs.ts).
 */
export const SENTRY_CHECKED: ReadonlySet<number> = new Set([
  SYS.futex, SYS.kill, SYS.tgkill, SYS.close_range, SYS.mremap, SYS.readlink, SYS.readlinkat, SYS.nanosleep, SYS.clock_nanosleep,
  SYS.getrusage, SYS.times,
  ...Object.keys(PID_ARG_CALLS).map(Number),
  ...Object.keys(ATTR_CALLS).map(Number),
]);

/** Memory calls that pass without a trap when their range is clear of the stub region. */
const RANGE_CHECKED = [SYS.munmap, SYS.mprotect, SYS.madvise, SYS.pkey_mprotect];

/** What a program's filter does (see {@link programFilter}). */
export interface ProgramFilterSpec {
  /** The stub region [start, end) and its passthrough gadget (`platform.stubRegion`). */
  region: { start: bigint; end: bigint; gadgetAddr: bigint; ringSyscallAddr?: bigint };
  /**
   * The program's stdin is a terminal: its reads of fd 0 trap, so that a background job that
   * reads the terminal gets SIGTTIN (see sys_tty.ts readTerminal).
   */
  terminalStdin?: boolean;
  /** Syscalls the sentry must see besides its own (traced, injected). */
  trap: ReadonlySet<number>;
  /** Every syscall traps (a policy module sees them all). */
  trapAll?: boolean;
  /**
   * Syscalls refused with an errno wherever they come from (`--deny`): by the kernel, except
   * those also trapped (traced, counted) when the program makes them: those trap, and the
   * sentry refuses them (see Policy.denied), so that a trace shows them as strace would.
   */
  deny: ReadonlyMap<number, number>;
  /**
   * Node's pid: signals and tracing aimed at it never pass. Left out for a sandboxed stub, where
   * Node does not exist (the kernel refuses such calls) and the number may be a program's.
   */
  nodePid?: number;
}

const EBADF = 9;
const EPERM = 1;
const MAP_FIXED = 0x10n;

/**
 * Builds a program's seccomp filter: denied calls refused by the kernel (even from stub code;
 * from program code a traced one traps, and the sentry refuses it);
 * the stub's own calls allowed from stub code; calls at the passthrough gadget allowed unless
 * only the sentry may make them; the sentry's calls, traced and injected ones trapped (memory
 * calls only when they could touch the stub); everything else allowed without a trap.
 *
 * @example
 * ```ts
 * const prog = programFilter({ region: platform.stubRegion, trap: new Set([SYS.openat]), deny: new Map(), nodePid: process.pid });
 * const as = await platform.newAddressSpace({ seccomp: prog });
 * ```
 */
export function programFilter(spec: ProgramFilterSpec): Uint8Array {
  // Compiling takes a millisecond or more; runs with the same options reuse the program.
  const key = JSON.stringify([String(spec.region.start), String(spec.region.end), String(spec.region.gadgetAddr), String(spec.region.ringSyscallAddr), [...spec.trap].sort((a, b) => a - b), spec.trapAll === true, [...spec.deny].sort(), spec.nodePid, spec.terminalStdin === true]);
  let prog = compiled.get(key);
  if (!prog) {
    prog = compileProgramFilter(spec);
    if (compiled.size > 32) compiled.clear();
    compiled.set(key, prog);
  }
  return prog;
}

/**
 * A sysmsg thread taking on the process's credentials and limits (sysmsg.c sync_attrs): the
 * calls a program may make itself anyway, allowed from stub code without a trap.
 */
function replayRules(start: bigint, end: bigint): SeccompRule[] {
  const inStub: Condition[] = [{ op: 'ge', value: start }, { op: 'lt', value: end }];
  const rules: SeccompRule[] = ATTR_REPLAY.map((sysno) => ({ sysno, ip: inStub, action: SECCOMP_RET.ALLOW }));
  rules.push({ sysno: SYS.prctl, args: [{ op: 'eq', value: PR_SET_KEEPCAPS }], ip: inStub, action: SECCOMP_RET.ALLOW });
  return rules;
}

/**
 * Calls trapped by an argument, from program code, for state that is the process's and not the
 * sysmsg thread's: keepcaps (TaskAttrs; then passed at the gadget), the CPU clocks
 * (ProcessCpuClock; the wall clocks pass), the waits with a signal mask (sys_poll.ts).
 */
function processStateRules(): SeccompRule[] {
  const trap = SECCOMP_RET.TRAP;
  const rules: SeccompRule[] = [{ sysno: SYS.prctl, args: [{ op: 'eq', value: PR_SET_KEEPCAPS }], action: trap }];
  for (const clock of CPU_CLOCKS) rules.push({ sysno: SYS.clock_gettime, args: [{ op: 'maskedEq', mask: 0xffffffffn, value: clock }], action: trap });
  // Waits with a signal mask of their own: the mask is the program's (sys_poll.ts); without one they pass.
  for (const [sysno, { mask }] of Object.entries(MASKED_WAITS)) {
    const args: Condition[] = [];
    args[mask] = { op: 'ne', value: 0n };
    rules.push({ sysno: Number(sysno), args, action: trap });
  }
  return rules;
}

/**
 * The calls a program's filter traps from program code whatever their arguments (see
 * programFilter): the sentry's own and checked ones, and the traced ones, but not those denied
 * untraced (the kernel refuses them with no trap). Only their call sites may be patched
 * (src/shm/usertrap.ts): a patched site always enters the sentry, and a call that
 * passes without a trap for some arguments (a read of fd 0, mmap clear of the stub) must go on
 * passing.
 *
 * @example
 * ```ts
 * patchableCalls({ trap: new Set([SYS.openat]), deny: new Map() }); // [... SYS.openat ...]
 * ```
 */
export function patchableCalls(spec: Pick<ProgramFilterSpec, 'trap' | 'trapAll' | 'deny'>): number[] {
  const traced = (nr: number) => spec.trapAll === true || spec.trap.has(nr);
  const calls = new Set<number>([...SENTRY_ONLY, ...SENTRY_CHECKED, ...(spec.trapAll ? Object.values(SYS) : spec.trap)]);
  return [...calls].filter((nr) => traced(nr) || !spec.deny.has(nr)).sort((a, b) => a - b);
}

/** Compiled program filters by their spec (see programFilter). */
const compiled = new Map<string, Uint8Array>();

function compileProgramFilter(spec: ProgramFilterSpec): Uint8Array {
  const { start, end, gadgetAddr, ringSyscallAddr } = spec.region;
  const allow = SECCOMP_RET.ALLOW;
  const trap = SECCOMP_RET.TRAP;
  // Rules for every call, from the gadget or not: they come first on both sides.
  const common: SeccompRule[] = [];
  for (const [sysno, errno] of spec.deny) common.push({ sysno, action: SECCOMP_RET.ERRNO(errno) });
  // The stub's fds are not the program's: closing or replacing them fails as if they were not open.
  for (const fd of [abi.STUB_MEMFD, abi.STUB_FDCHAN]) {
    common.push({ sysno: SYS.close, args: [{ op: 'eq', value: BigInt(fd) }], action: SECCOMP_RET.ERRNO(EBADF) });
    common.push({ sysno: SYS.dup2, args: [undefined, { op: 'eq', value: BigInt(fd) }], action: SECCOMP_RET.ERRNO(EBADF) });
    common.push({ sysno: SYS.dup3, args: [undefined, { op: 'eq', value: BigInt(fd) }], action: SECCOMP_RET.ERRNO(EBADF) });
  }
  // Node is out of reach: no signal, no trace, no memory access aimed at its pid. Signal 0
  // only asks whether it exists (`kill -0 $PPID`, which a program's parent-watch loop makes):
  // that one the kernel answers, as it would natively.
  if (spec.nodePid !== undefined) {
    const node = BigInt(spec.nodePid);
    for (const sysno of [SYS.kill, SYS.tgkill, SYS.pidfd_open, SYS.process_vm_writev, SYS.process_vm_readv, SYS.ptrace]) {
      const arg = sysno === SYS.ptrace ? 1 : 0;
      const args: Condition[] = [];
      args[arg] = { op: 'maskedEq', mask: 0xffffffffn, value: node };
      if (sysno === SYS.kill) args[1] = { op: 'ne', value: 0n };
      if (sysno === SYS.tgkill) args[2] = { op: 'ne', value: 0n };
      common.push({ sysno, args, action: SECCOMP_RET.ERRNO(EPERM) });
    }
  }
  common.push(...stubRules(start, SYS, end));
  common.push(...replayRules(start, end));
  // [addr, addr + len) clear of the stub region, computed exactly in the filter.
  const clear: Array<Condition | undefined> = [{ op: 'clearOf', lenArg: 1, start, end }];
  const noFixed: Array<Condition | undefined> = [undefined, undefined, undefined, { op: 'maskedEq', mask: MAP_FIXED, value: 0n }];
  // At the gadget (the sentry's passthrough; the return address right after its `syscall`):
  // what only the sentry may do traps, memory calls that could touch the stub trap, the rest passes.
  const traced = (nr: number) => spec.trapAll || spec.trap.has(nr);
  const gadget: SeccompRule[] = [...common];
  // setsid is the process's: the sentry has the stub make it at the gadget (see sys_process.ts).
  for (const sysno of SENTRY_ONLY) if (sysno !== SYS.setsid) gadget.push({ sysno, action: trap });
  // prctl about the process tree is the sentry's; the other options pass.
  for (const opt of PRCTL_SENTRY) gadget.push({ sysno: SYS.prctl, args: [{ op: 'eq', value: opt }], action: trap });
  for (const sysno of RANGE_CHECKED) gadget.push({ sysno, args: clear, action: allow }, { sysno, action: trap });
  gadget.push({ sysno: SYS.mmap, args: clear, action: allow }, { sysno: SYS.mmap, args: noFixed, action: allow }, { sysno: SYS.mmap, action: trap });
  // Direct calls from program code. A traced denied call traps there (its ip outside the stub
  // region: the deny rule in `common` still refuses it from stub code).
  const direct: SeccompRule[] = [];
  for (const sysno of spec.deny.keys()) {
    if (!traced(sysno)) continue;
    direct.push({ sysno, ip: [{ op: 'lt', value: start }], action: trap }, { sysno, ip: [{ op: 'ge', value: end }], action: trap });
  }
  direct.push(...common);
  for (const sysno of [...SENTRY_ONLY, ...SENTRY_CHECKED]) direct.push({ sysno, action: trap });
  for (const opt of PRCTL_SENTRY) direct.push({ sysno: SYS.prctl, args: [{ op: 'eq', value: opt }], action: trap });
  direct.push(...processStateRules());
  // The terminal's job control is the sentry's (sys_tty.ts); the other ioctls pass.
  if (spec.terminalStdin) direct.push({ sysno: SYS.read, args: [{ op: 'eq', value: 0n }], action: trap });
  // Changes to the terminal are checked for background jobs (SIGTTOU), then pass at the gadget.
  for (const cmd of [...TTY_CHECKED, TIOCSCTTY]) direct.push({ sysno: SYS.ioctl, args: [undefined, { op: 'maskedEq', mask: 0xffffffffn, value: cmd }], action: trap });
  for (const cmd of TTY_SENTRY) direct.push({ sysno: SYS.ioctl, args: [undefined, { op: 'maskedEq', mask: 0xffffffffn, value: cmd }], action: trap });
  for (const sysno of [...RANGE_CHECKED, SYS.mmap]) {
    if (traced(sysno)) continue;
    direct.push({ sysno, args: clear, action: allow });
    if (sysno === SYS.mmap) direct.push({ sysno, args: noFixed, action: allow });
    direct.push({ sysno, action: trap });
  }
  // Most syscalls traced (trace=all, -c): trap by default and list the few that pass instead.
  let trapByDefault = spec.trapAll === true;
  if (!trapByDefault && spec.trap.size > 200) {
    trapByDefault = true;
    const special = new Set<number>([...SENTRY_ONLY, ...SENTRY_CHECKED, ...RANGE_CHECKED, SYS.mmap]);
    for (const sysno of new Set(Object.values(SYS))) if (!spec.trap.has(sysno) && !special.has(sysno)) direct.push({ sysno, action: allow });
  } else if (!trapByDefault) for (const sysno of spec.trap) direct.push({ sysno, action: trap });
  return compileSeccomp({
    rules: direct,
    defaultAction: trapByDefault ? trap : allow,
    // The trace ring's `syscall` (an observed call the stub makes itself) is judged as the gadget's.
    atIp: { ip: gadgetAddr + 2n, rules: gadget, defaultAction: allow, ...(ringSyscallAddr !== undefined ? { alsoIp: ringSyscallAddr } : {}) },
    badArchAction: SECCOMP_RET.KILL_PROCESS, badNrAction: SECCOMP_RET.ERRNO(ERRNO.ENOSYS), // x32's, negative: ENOSYS, as Linux without x32
    layout: 'tree',
  });
}
