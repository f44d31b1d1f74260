import { TASK_COMM_LEN } from '../../abi/linux.js';

/**
 * The name the kernel gives a thread that execs `path`: its last component, as given (`exe`
 * for /proc/self/exe), cut to TASK_COMM_LEN - 1 bytes (kept as latin1: one char per byte).
 *
 * @example
 * ```ts
 * commOf('/usr/bin/busybox'); // 'busybox'
 * ```
 */
export function commOf(path: string): string {
  const base = Buffer.from(path.slice(path.lastIndexOf('/') + 1));
  return base.subarray(0, TASK_COMM_LEN - 1).toString('latin1');
}
