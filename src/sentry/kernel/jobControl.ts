import { CLD, SIG } from '../../abi/linux.js';
import { makeSiginfo } from './signals.js';
import type { Task } from './task.js';

/** A stop or a continue its parent has not waited for yet (wait's WUNTRACED / WCONTINUED). */
export interface JobReport {
  kind: 'stopped' | 'continued';
  /** The stop signal, or SIGCONT. */
  signo: number;
}

/** What job control needs of its process. */
export interface JobHost {
  liveTasks(): Iterable<Task>;
  /** Interrupts a task in the stub: it traps back, and stops instead of running again. */
  interrupt(t: Task): void;
  /** A task that was stopped runs again (the scheduler takes it). */
  makeReady(t: Task): void;
  /** The parent hears of the change (SIGCHLD, its waits). */
  changed(): void;
}

/**
 * Job control of one process (gVisor's group stop, reduced): a stop signal whose action is
 * the default (SIGSTOP always) stops every thread of the process where the sentry holds it:
 * threads in the stub are interrupted, threads parked in the sentry (a futex wait, a sleep)
 * stay parked, and none is handed to the stub again (the scheduler sends it STOP) until SIGCONT.
 * Syscalls are not interrupted by a stop (no EINTR): they finish or restart, as Linux's do. Each
 * change is reported to the parent once: SIGCHLD with CLD_STOPPED / CLD_CONTINUED (unless its
 * SIGCHLD has SA_NOCLDSTOP) and wait with WUNTRACED / WCONTINUED.
 *
 * @example
 * ```ts
 * const job = new JobControl(host);
 * job.stop(SIG.SIGTSTP); // job.stopped
 * job.continue();        // every stopped task is ready again
 * ```
 */
export class JobControl {
  /** The signal that stopped the process; 0 while it runs. Protected by: the process's turn. */
  stopSignal = 0;
  /** The change its parent has not waited for yet. */
  report?: JobReport;

  constructor(private readonly host: JobHost) {}

  get stopped(): boolean {
    return this.stopSignal !== 0;
  }

  stop(signo: number): void {
    if (this.stopped) return;
    this.stopSignal = signo;
    this.report = { kind: 'stopped', signo };
    for (const t of this.host.liveTasks()) if (t.inStub) this.host.interrupt(t);
    this.host.changed();
  }

  continue(): void {
    if (!this.stopped) return;
    this.stopSignal = 0;
    this.report = { kind: 'continued', signo: SIG.SIGCONT };
    for (const t of this.host.liveTasks()) {
      if (t.state !== 'stopped') continue;
      t.send('CONTINUE');
      this.host.makeReady(t);
    }
    this.host.changed();
  }
}

/**
 * The SIGCHLD siginfo of a child that stopped or continued (what the parent's handler and
 * waitid see): CLD_STOPPED with the stop signal, or CLD_CONTINUED with SIGCONT.
 *
 * @example
 * ```ts
 * parent.signals.sendGroup(SIG.SIGCHLD, jobInfo(child.tgid, { kind: 'stopped', signo: SIG.SIGTSTP }));
 * ```
 */
export function jobInfo(pid: number, r: JobReport): Uint8Array {
  const b = makeSiginfo(SIG.SIGCHLD, r.kind === 'stopped' ? CLD.STOPPED : CLD.CONTINUED, { pid, uid: process.getuid?.() ?? 0 });
  new DataView(b.buffer).setInt32(24, r.signo, true); // si_status, after si_pid and si_uid
  return b;
}

/**
 * SIGINT and the like from outside (the CLI forwards them): the terminal's foreground group
 * takes it, as the terminal's own signals go (the first process's group until a program sets
 * another with tcsetpgrp).
 *
 * @example
 * ```ts
 * signalFromOutside(kernel, SIG.SIGINT); // Ctrl-C at systrap's terminal
 * ```
 */
export function signalFromOutside(k: OutsideSignalTree, signo: number): void {
  const fg = k.terminal.foreground;
  const pgid = fg !== undefined && k.table.live().some((p) => p.pgid === fg) ? fg : k.root.pgid;
  const info = makeSiginfo(signo, 0, { pid: k.senderPid });
  for (const p of k.table.live()) if (p.pgid === pgid) p.defer(() => p.signals.sendGroup(signo, info));
}

/** What a signal from outside needs of the tree (Kernel). */
export interface OutsideSignalTree {
  readonly terminal: { readonly foreground?: number };
  readonly root: { readonly pgid: number };
  readonly senderPid: number;
  readonly table: { live(): readonly { readonly pgid: number; defer(fn: () => void): void; readonly signals: { sendGroup(signo: number, info: Uint8Array): void } }[] };
}
