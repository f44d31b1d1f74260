/** ptrace(2) and wait(2) constants used by the tracer (x86-64 Linux values). */

/** PTRACE_SETOPTIONS flags. */
export const PTRACE_O_TRACESYSGOOD = 0x1;
export const PTRACE_O_TRACEEXIT = 0x40;
export const PTRACE_O_EXITKILL = 0x100000;

/**
 * The option set every tracer transaction applies after attaching (gVisor's thread.init):
 * syscall stops are told from SIGTRAPs, a stub's exit is reported as an event, and a tracer
 * thread that dies takes its tracees with it.
 */
export const TRACER_OPTIONS = PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEEXIT | PTRACE_O_EXITKILL;

/** ptrace event numbers reported in a wait status. */
export const PTRACE_EVENT_EXIT = 6;

/** wait4 options. */
export const WNOHANG = 1;
export const WUNTRACED = 2;
export const __WALL = 0x40000000;

/** Kernel-internal restart codes a tracer can observe in rax (gVisor's syscallIgnoreInterrupt). */
export const ERESTARTSYS = 512;
export const ERESTARTNOINTR = 513;
export const ERESTARTNOHAND = 514;

/** True for -ERESTARTSYS, -ERESTARTNOINTR and -ERESTARTNOHAND. */
export function isRestart(ret: bigint): boolean {
  return ret === -512n || ret === -513n || ret === -514n;
}
