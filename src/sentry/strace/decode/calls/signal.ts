/**
 * Decoders for the signal calls: sending (kill, tgkill, sigqueue),
 * handlers and masks (rt_sigaction, rt_sigprocmask...), and the return
 * from a handler (rt_sigreturn).
 *
 * @module
 */

import type { ArgFormatter, DecoderTable, SyscallDecoder } from './args.js';
import { FD, I, SIG, U, UL, enumOf, out, sig, sigset } from './args.js';
import { formatSigmask } from '../signals.js';
import { formatSigaction, formatSiginfo, formatStack } from '../structs/signal.js';
import { formatTimespec } from '../structs/time.js';
import { readU64 } from '../umove.js';
import { SIG_HOW } from '../xlat/signal.js';

/**
 * Where the mask to restore sits above the stack pointer at rt_sigreturn:
 * sp points at the ucontext of the signal frame, whose uc_sigmask follows
 * uc_flags, uc_link, uc_stack (40 bytes) and uc_mcontext (256).
 */
const UC_SIGMASK_OFFSET = 296n;

/** rt_sigreturn: the mask it restores, read from the frame when the stack pointer is known. */
const rtSigreturn: SyscallDecoder = {
  args(c) {
    if (c.sp === undefined) return [];
    const mask = readU64(c.mem, c.sp + UC_SIGMASK_OFFSET);
    return [mask === null ? '{mask=?}' : `{mask=${formatSigmask(mask)}}`];
  },
};

const siginfo: ArgFormatter = (v, c) => formatSiginfo(c.mem, v);
const sigaction: ArgFormatter = (v, c) => formatSigaction(c.mem, v);
const stack: ArgFormatter = (v, c) => formatStack(c.mem, v);

/**
 * Decoders for the signal calls, by name.
 *
 * @example
 * ```ts
 * SIGNAL_DECODERS.kill!.args(c); // ['1234', 'SIGTERM']
 * ```
 */
export const SIGNAL_DECODERS: DecoderTable = {
  kill: sig(I, SIG),
  tkill: sig(I, SIG),
  tgkill: sig(I, I, SIG),
  rt_sigqueueinfo: sig(I, SIG, siginfo),
  rt_tgsigqueueinfo: sig(I, I, SIG, siginfo),
  pidfd_send_signal: sig(FD, SIG, siginfo, U),
  rt_sigaction: sig(SIG, sigaction, out(sigaction), UL),
  rt_sigprocmask: sig(enumOf(SIG_HOW, 'SIG_'), sigset(3), out(sigset(3)), UL),
  rt_sigpending: sig(out(sigset(1, 1)), UL),
  rt_sigsuspend: sig(sigset(1), UL),
  rt_sigtimedwait: sig(sigset(3), out(siginfo), (v, c) => formatTimespec(c.mem, v), UL),
  rt_sigreturn: rtSigreturn,
  sigaltstack: sig(stack, out(stack)),
};
