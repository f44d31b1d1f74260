/**
 * Signal call flags (sigprocmask how, sa_flags, ss_flags) and the si_code
 * values of a siginfo (x86-64 values, in strace's print order).
 *
 * @module
 */

import { SIG } from '../../../../abi/linux.js';
import type { Xlat } from '../xlat.js';
import { xlat } from '../xlat.js';

/**
 * The special sa_handler values.
 *
 * @example
 * ```ts
 * lookup(1n, SIG_HANDLERS); // 'SIG_IGN'
 * ```
 */
export const SIG_HANDLERS = xlat({ SIG_DFL: 0, SIG_IGN: 1, SIG_ERR: 0xffffffffffffffffn });

/**
 * sa_flags: the handler returns through sa_restorer (so strace shows it).
 *
 * @example
 * ```ts
 * if (flags & SA_RESTORER) s += `, sa_restorer=${ptr(restorer)}`;
 * ```
 */
export const SA_RESTORER = 0x04000000n;

/**
 * si_code of a signal the kernel sent: no sender pid/uid to show.
 *
 * @example
 * ```ts
 * if (code === SI_KERNEL) return `{${sig}, si_code=SI_KERNEL}`;
 * ```
 */
export const SI_KERNEL = 0x80;

/**
 * rt_sigprocmask(2) `how`.
 *
 * @example
 * ```ts
 * formatEnum(2n, SIG_HOW, 'SIG_'); // 'SIG_SETMASK'
 * ```
 */
export const SIG_HOW = xlat({ SIG_BLOCK: 0, SIG_UNBLOCK: 1, SIG_SETMASK: 2 });

/**
 * sigaction sa_flags, in strace's order.
 *
 * @example
 * ```ts
 * formatFlags(0x14000000n, SA_FLAGS); // 'SA_RESTORER|SA_RESTART'
 * ```
 */
export const SA_FLAGS = xlat({
  SA_RESTORER, SA_ONSTACK: 0x08000000, SA_RESTART: 0x10000000, SA_INTERRUPT: 0x20000000,
  SA_NODEFER: 0x40000000, SA_RESETHAND: 0x80000000, SA_SIGINFO: 4, SA_NOCLDSTOP: 1, SA_NOCLDWAIT: 2,
});

/**
 * sigaltstack(2) ss_flags.
 *
 * @example
 * ```ts
 * formatFlags(2n, SS_FLAGS); // 'SS_DISABLE'
 * ```
 */
export const SS_FLAGS = xlat({ SS_ONSTACK: 1, SS_DISABLE: 2, SS_AUTODISARM: 0x80000000 });

/** SIGCHLD si_code values. */
const CLD_CODES = xlat({ CLD_EXITED: 1, CLD_KILLED: 2, CLD_DUMPED: 3, CLD_TRAPPED: 4, CLD_STOPPED: 5, CLD_CONTINUED: 6 });

/**
 * si_code values any signal can have (sent by a process, the kernel, a timer...).
 *
 * @example
 * ```ts
 * lookup(-6n, SI_CODES); // 'SI_TKILL'
 * ```
 */
export const SI_CODES = xlat({ SI_USER: 0, SI_KERNEL, SI_QUEUE: -1, SI_TIMER: -2, SI_MESGQ: -3, SI_ASYNCIO: -4, SI_SIGIO: -5, SI_TKILL: -6 });

/**
 * The positive si_code values of the signals that have their own, by signal number
 * (positive codes mean different things for each signal).
 *
 * @example
 * ```ts
 * lookup(1n, SIG_CODES.get(SIG.SIGSEGV)!); // 'SEGV_MAPERR'
 * ```
 */
export const SIG_CODES: ReadonlyMap<number, Xlat> = new Map([
  [SIG.SIGILL, xlat({ ILL_ILLOPC: 1, ILL_ILLOPN: 2, ILL_ILLADR: 3, ILL_ILLTRP: 4, ILL_PRVOPC: 5, ILL_PRVREG: 6, ILL_COPROC: 7, ILL_BADSTK: 8 })],
  [SIG.SIGTRAP, xlat({ TRAP_BRKPT: 1, TRAP_TRACE: 2, TRAP_BRANCH: 3, TRAP_HWBKPT: 4 })],
  [SIG.SIGBUS, xlat({ BUS_ADRALN: 1, BUS_ADRERR: 2, BUS_OBJERR: 3, BUS_MCEERR_AR: 4, BUS_MCEERR_AO: 5 })],
  [SIG.SIGFPE, xlat({ FPE_INTDIV: 1, FPE_INTOVF: 2, FPE_FLTDIV: 3, FPE_FLTOVF: 4, FPE_FLTUND: 5, FPE_FLTRES: 6, FPE_FLTINV: 7, FPE_FLTSUB: 8 })],
  [SIG.SIGSEGV, xlat({ SEGV_MAPERR: 1, SEGV_ACCERR: 2, SEGV_BNDERR: 3, SEGV_PKUERR: 4 })],
  [SIG.SIGCHLD, CLD_CODES],
  [SIG.SIGSYS, xlat({ SYS_SECCOMP: 1 })],
]);
