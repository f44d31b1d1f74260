import { readFileSync } from 'node:fs';
import type { FutexKey } from './futex.js';

/**
 * The key of the futex word at `addr` of process `p` (Linux's get_futex_key): private futexes,
 * and shared ones on private memory, are the process's own address; a shared futex on a shared
 * mapping (a file, shmem, MAP_SHARED|MAP_ANONYMOUS) is the file page under it, found in the
 * process's /proc/PID/maps, so that every process mapping that page has the same key. Null when
 * nothing is mapped at `addr` (EFAULT).
 *
 * @example
 * ```ts
 * futexKey(process, addr, false); // "2:140737488347136"
 * futexKey(process, semAddr, true); // "00:1a:12345:4096": shared with the other processes
 * ```
 */
export function futexKey(p: { tgid: number; hostPid: number }, addr: bigint, shared: boolean): FutexKey | null {
  const own = `${p.tgid}:${addr}`;
  if (!shared) return own;
  let maps: string;
  try {
    maps = readFileSync(`/proc/${p.hostPid}/maps`, 'utf8');
  } catch {
    return null;
  }
  for (const line of maps.split('\n')) {
    const dash = line.indexOf('-');
    const space = line.indexOf(' ');
    if (dash < 0 || space < 0) continue;
    const start = BigInt('0x' + line.slice(0, dash));
    const end = BigInt('0x' + line.slice(dash + 1, space));
    if (addr < start || addr >= end) continue;
    const [, perms, offset, dev, inode] = line.split(/\s+/);
    if (perms[3] !== 's') return own; // private memory: the process's own word
    return `${dev}:${inode}:${BigInt('0x' + offset) + (addr - start)}`;
  }
  return null;
}
