import { CLOCK_BOOTTIME, CLOCK_MONOTONIC, CLOCK_REALTIME, ERRNO, TIMER_ABSTIME } from '../../abi/linux.js';
import type { Task } from '../kernel/task.js';
import { err, type Handler, type Outcome, type SyscallKernel } from './context.js';

/** What the sleeps use of the kernel. */
type TimeKernel = Pick<SyscallKernel, 'mem' | 'park'>;

const NSEC_PER_SEC = 1_000_000_000n;

/** Now on `clock`, in milliseconds (CLOCK_REALTIME is wall time, the others monotonic). */
function nowMs(clock: number): number {
  return clock === CLOCK_REALTIME ? Date.now() : Number(process.hrtime.bigint()) / 1e6;
}

/**
 * A sleep in the sentry: the task holds no stub thread while it sleeps (a program with more
 * sleeping threads than stub threads goes on). `abs`: an absolute time on `clock`.
 */
function sleep(k: TimeKernel, t: Task, req: bigint, rem: bigint, abs: boolean, clock: number): Outcome {
  const b = k.mem.read(req, 16);
  if (!b) return err(ERRNO.EFAULT);
  const dv = new DataView(b.buffer, b.byteOffset, 16);
  const sec = dv.getBigInt64(0, true);
  const nsec = dv.getBigInt64(8, true);
  if (sec < 0n || nsec < 0n || nsec >= NSEC_PER_SEC) return err(ERRNO.EINVAL);
  const ms = Number(sec) * 1000 + Number(nsec) / 1e6;
  const wait = abs ? ms - nowMs(clock) : ms;
  if (wait <= 0) return 0n;
  t.sleep = { deadline: performance.now() + wait, rem: abs ? 0n : rem };
  t.interruptedAs = abs ? ERRNO.ERESTARTNOHAND : ERRNO.ERESTART_RESTARTBLOCK;
  k.park(t, 'SLEEP');
  return 'blocked';
}

/**
 * nanosleep and clock_nanosleep (gVisor's sys_time.go): emulated for the clocks a wait in the
 * sentry can follow (REALTIME, MONOTONIC, BOOTTIME); others are the kernel's.
 *
 * @example
 * ```ts
 * nanosleep(kernel, task, [reqAddr, remAddr]); // 'blocked': woken when the time is up
 * ```
 */
export const nanosleep: Handler = (k, t, a) => sleep(k, t, a[0], a[1], false, CLOCK_MONOTONIC);

export const clockNanosleep: Handler = (k, t, a) => {
  const clock = Number(a[0]);
  if (clock !== CLOCK_REALTIME && clock !== CLOCK_MONOTONIC && clock !== CLOCK_BOOTTIME) return 'pass';
  return sleep(k, t, a[2], a[3], (a[1] & TIMER_ABSTIME) !== 0n, clock);
};

/** The process's and the calling thread's CPU clocks. */
const CLOCK_PROCESS_CPUTIME_ID = 2;
const CLOCK_THREAD_CPUTIME_ID = 3;

/**
 * clock_gettime of the process's CPU clock (see ProcessCpuClock); of the thread's, in a
 * process of one thread (its time is the process's); the filter traps nothing else of it (the
 * wall clocks run without a trap). A thread's CPU clock in a process of several is the stub
 * thread's (see README).
 *
 * @example
 * ```ts
 * clockGettime(kernel, task, [2n, tsAddr]); // 0n, the CPU time at tsAddr
 * ```
 */
export const clockGettime: Handler = (k, _t, a) => {
  const clock = Number(BigInt.asIntN(32, a[0]));
  if (clock !== CLOCK_PROCESS_CPUTIME_ID && !(clock === CLOCK_THREAD_CPUTIME_ID && k.tasks.size === 1)) return 'pass';
  const ns = k.cpuClock.nowNs();
  const b = new Uint8Array(16);
  const dv = new DataView(b.buffer);
  dv.setBigInt64(0, ns / 1_000_000_000n, true);
  dv.setBigInt64(8, ns % 1_000_000_000n, true);
  return k.mem.write(a[1], b) ? 0n : err(ERRNO.EFAULT);
};

/** The CPU clock ids clock_gettime traps for (filter.ts). */
export const CPU_CLOCKS: readonly bigint[] = [BigInt(CLOCK_PROCESS_CPUTIME_ID), BigInt(CLOCK_THREAD_CPUTIME_ID)];
