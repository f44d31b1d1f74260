import type { InspectionEvent } from 'xstate';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { delimiter } from 'node:path';

/** The state letter of a process (R, S, T, t, Z, …), or undefined when it does not exist. */
export function procState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

/** The TracerPid of a process (0: not traced), or undefined when it does not exist. */
export function tracerPid(pid: number): number | undefined {
  try {
    return Number(/^TracerPid:\s*(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
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

/**
 * Number of pidfds open in this process. A process leaves /proc before the event loop hears of
 * its exit and closes its pidfd: wait for this to settle before comparing fd counts.
 */
export function pidfdCount(): number {
  let n = 0;
  for (const f of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${f}`) === 'anon_inode:[pidfd]') n++;
    } catch {
      // closed meanwhile
    }
  }
  return n;
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

/**
 * The path of a system tool the test needs: the first executable `name` on PATH, then in the
 * folders Debian installs to (a package installed there counts even if PATH misses it), that
 * passes `need` when given. A missing tool throws one line that says what to install, so that
 * the test fails saying so instead of with whatever the missing program leads to further on.
 * The package defaults to the tool's row in test/tools.json (the table that npm's pretest checks
 * and .ci/run installs); a tool not there is refused, so that the table stays complete.
 *
 * @example
 * ```ts
 * const readelf = requireTool('readelf'); // else "readelf is missing: apt-get install binutils"
 * const python = requireTool('python3', 'python3', { what: 'an ELF program', test: isElf }); // not a pyenv shim
 * ```
 */
export function requireTool(name: string, debianPackage = packageOf(name), need?: { what: string; test: (path: string) => boolean }): string {
  const found = toolCandidates(name);
  const ok = need ? found.find((p) => need.test(p)) : found[0];
  if (ok) return ok;
  if (found.length === 0) throw missing(name, debianPackage);
  throw oneLineError(`no ${name} that is ${need!.what} (found ${found.join(', ')}): apt-get install ${debianPackage}`);
}

/** The Debian package of a tool in test/tools.json; throws for a tool the table lacks. */
export function packageOf(tool: string): string {
  const rows = (JSON.parse(readFileSync(new URL('./tools.json', import.meta.url), 'utf8')) as { tools: Array<{ tool: string; package: string }> }).tools;
  const row = rows.find((r) => r.tool === tool);
  if (!row) throw oneLineError(`${tool} is not in test/tools.json: add its row (tool, Debian package) there`);
  return row.package;
}

/** Executable files called `name` on PATH then in Debian's bin folders, in that order, once each. */
function toolCandidates(name: string): string[] {
  return checkerCandidates(name, [...(process.env.PATH ?? '').split(delimiter), ...DEBIAN_BIN_DIRS]);
}

/** True if the file starts with the ELF magic (not a script or a shim): the checker's own test. */
export { isElf } from '../scripts/check-test-tools.mjs';
import { DEBIAN_BIN_DIRS, toolCandidates as checkerCandidates } from '../scripts/check-test-tools.mjs';

/** The one-line error of a missing tool or file: what is missing and the Debian package to install. */
export function missing(what: string, debianPackage: string): Error {
  return oneLineError(`${what} is missing: apt-get install ${debianPackage}`);
}

/** An Error whose message is the whole story: no stack printed under it. */
export function oneLineError(message: string): Error {
  const e = new Error(message);
  e.stack = message;
  return e;
}

/**
 * A thread's state letter and CPU time (clock ticks) from /proc/TID/stat, or undefined when it is
 * gone. /proc/TID works for any thread, also one of another thread group (sysmsg threads are
 * processes of their own).
 */
export function threadStat(tid: number): { state: string; utime: number; stime: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${tid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields after the command: state is field 3 of the man page, utime 14, stime 15.
    return { state: f[0], utime: Number(f[11]), stime: Number(f[12]) };
  } catch {
    return undefined;
  }
}

/**
 * True when a thread of process `pid` sleeps (state S) inside syscall `sysno`, per
 * /proc/PID/task/TID/syscall: the call was entered and blocks, not merely about to be made.
 */
export function blockedIn(pid: number, sysno: number): boolean {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return false;
  }
  return tids.some((tid) => {
    try {
      const nr = readFileSync(`/proc/${pid}/task/${tid}/syscall`, 'utf8').split(' ')[0];
      return nr === String(sysno) && threadStat(Number(tid))?.state === 'S';
    } catch {
      return false;
    }
  });
}

/** Signals pending for a process (ShdPnd) or any of its threads (SigPnd), as a bit mask (bit signo-1). */
export function pendingSignals(pid: number): bigint {
  let mask = 0n;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
        for (const m of status.matchAll(/^(?:ShdPnd|SigPnd):\s*([0-9a-f]+)$/gm)) mask |= BigInt('0x' + m[1]);
      } catch {
        // the thread exited
      }
    }
  } catch {
    // the process is gone: nothing is pending
  }
  return mask;
}


/** A process as /proc shows it: pid, parent, comm, pid namespace (undefined for a zombie). */
export interface ProcessRow {
  pid: number;
  ppid: number;
  comm: string;
  state: string;
  ns?: string;
}

/** Every process of the machine. */
export function processes(): ProcessRow[] {
  const out: ProcessRow[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      let ns: string | undefined;
      try {
        ns = readlinkSync(`/proc/${d}/ns/pid`);
      } catch {
        // a zombie: no namespace to read
      }
      out.push({ pid: Number(d), ppid: Number(ppid), comm, state, ns });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * The stubs of the program `systrap run --sandbox=MODE` runs as process `cli`: in a sandbox,
 * the children of its init (the CLI's child in another pid namespace); without one, the CLI's
 * children. Sysmsg threads are the stubs' children, not in the list.
 */
export function programStubs(cli: number, mode: 'auto' | 'off'): ProcessRow[] {
  const all = processes();
  if (mode === 'off') return all.filter((p) => p.ppid === cli);
  const own = readlinkSync('/proc/self/ns/pid');
  const init = all.find((p) => p.ppid === cli && p.ns !== undefined && p.ns !== own);
  return init ? all.filter((p) => p.ppid === init.pid) : [];
}

/**
 * True when every thread of stub `pid` and of its children (its sysmsg threads) sleeps: the
 * program's tasks in it are all parked in the sentry (a sleep, a wait), none runs in the stub.
 */
export function stubAsleep(pid: number): boolean {
  const pids = [pid];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      pids.push(...readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number));
    }
    return pids.every((p) => readdirSync(`/proc/${p}/task`).every((tid) => threadStat(Number(tid))?.state === 'S'));
  } catch {
    return false;
  }
}

/**
 * The states an actor went through in an inspection's events, repeats folded (nested states as
 * JSON).
 */
export function statesOf(events: InspectionEvent[], id: string): string[] {
  const out: string[] = [];
  for (const e of events) {
    if (e.type !== '@xstate.snapshot' || e.actorRef.id !== id) continue;
    const v = (e.snapshot as { value: unknown }).value;
    const st = typeof v === 'string' ? v : JSON.stringify(v);
    if (out[out.length - 1] !== st) out.push(st);
  }
  return out;
}
