import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** The state letter of a process (R, S, T, t, Z, …), or undefined when it does not exist. */
export function procState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

/** Our own children that are zombies or stopped (a leak of the runtime). */
export function leakedChildren(): Array<{ pid: number; state: string; comm: string }> {
  const out: Array<{ pid: number; state: string; comm: string }> = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const state = fields[0];
      const ppid = Number(fields[1]);
      if (ppid === process.pid && /[ZTt]/.test(state)) out.push({ pid: Number(d), state, comm });
    } catch {
      // raced with an exit
    }
  }
  return out;
}

/** Children of this process that are not esbuild's service (stubs, in our tests). */
export function childPids(): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && !stat.includes('(esbuild)')) out.push(Number(d));
    } catch {
      // raced with an exit
    }
  }
  return out;
}

/** Number of fds open in this process. */
export function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** The fd table of a process: fd number → link target. */
export function fdTable(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      out[fd] = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** Lines of /proc/PID/maps. */
export function maps(pid: number): string[] {
  return readFileSync(`/proc/${pid}/maps`, 'utf8').trim().split('\n');
}

/** True if a mapping in /proc/PID/maps starts at addr. */
export function hasMappingAt(pid: number, addr: bigint): boolean {
  return maps(pid).some((l) => BigInt('0x' + l.split('-')[0]) === addr);
}

/** Waits until cond() is true or the timeout passes; returns the last value of cond(). */
export async function until(cond: () => boolean, timeoutMs = 5000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return cond();
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export { existsSync };

/** The inspector URL a `systrap run --inspect` / `systrap inspect` child prints on stderr. */
export function inspectorUrl(child: { stderr: NodeJS.ReadableStream | null }, timeoutMs = 20_000): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`no inspector URL: ${err}`)), timeoutMs);
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /inspector at (http:\/\/\S+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
  });
}
