import { ATTR } from '../abi/sysmsg.js';
import { SYS } from '../abi/syscalls.js';
import type { AddressSpace } from '../addressSpace.js';
import type { StubPort } from '../platformPort.js';
import type { AttrValues } from './kernel/taskAttrs.js';
import { credentialsOf } from './kernel/credentials.js';

const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * Has a stub's syscall thread take on a process's task attributes (see TaskAttrs) before it
 * forks the process: the child is a copy of that thread, credentials and limits included, as
 * Linux's child is of its parent. Groups and gids before uids (a uid change may drop the
 * privilege they need); nothing that already matches is changed. Throws when a call fails: the
 * fork must then fail rather than make a child with other credentials or limits.
 * Precondition: the syscall thread serves requests (the stub is not forking meanwhile).
 *
 * @example
 * ```ts
 * if (m.attrs && m.attrs.gen > proc.attrsGen) await syncAttrs(proc.as, proc.stub, m.attrs.values);
 * ```
 */
export async function syncAttrs(as: AddressSpace, stub: StubPort, v: AttrValues): Promise<void> {
  const call = async (name: string, sysno: number, args: bigint[]) => {
    const r = await as.syscall(sysno, ...args);
    // setfsuid/setfsgid answer the old id; keepcaps may be locked (a sandbox: no capability to keep).
    if (r < 0n && sysno !== SYS.setfsuid && sysno !== SYS.setfsgid && sysno !== SYS.prctl) throw new Error(`${name} in the syscall thread of stub ${as.pid}: errno ${-r}`);
  };
  const sc = stub.scratch();
  for (const [r, [soft, hard]] of v.rlimits) {
    sc.view.setBigUint64(0, soft, true);
    sc.view.setBigUint64(8, hard, true);
    await call('prlimit64', SYS.prlimit64, [0n, BigInt(r), sc.addr, 0n]);
  }
  if (v.set & ATTR.nice) await call('setpriority', SYS.setpriority, [0n, 0n, BigInt(v.nice)]);
  if (v.set & ATTR.affinity) {
    sc.bytes.set(v.affinity);
    await call('sched_setaffinity', SYS.sched_setaffinity, [0n, BigInt(v.affinity.length), sc.addr]);
  }
  // Capabilities: kept across the uid change (keepcaps on for it), then set, then keepcaps as the process has it.
  const caps = v.set & ATTR.caps ? v.caps : undefined;
  if (caps) await call('prctl', SYS.prctl, [8n, 1n, 0n, 0n, 0n]);
  if (v.set & ATTR.creds) await syncCreds(as, stub, v, call);
  if (!caps) return;
  sc.view.setUint32(0, 0x20080522, true);
  sc.view.setUint32(4, 0, true);
  [caps.effective, caps.permitted, caps.inheritable].forEach((c, i) => {
    sc.view.setUint32(8 + 4 * i, Number(c & 0xffffffffn), true);
    sc.view.setUint32(20 + 4 * i, Number(c >> 32n), true);
  });
  await call('capset', SYS.capset, [sc.addr, sc.addr + 8n]);
  await call('prctl', SYS.prctl, [8n, caps.keep ? 1n : 0n, 0n, 0n, 0n]);
}

/** The credentials part of syncAttrs: what already matches is left alone. */
async function syncCreds(as: AddressSpace, stub: StubPort, v: AttrValues, call: (name: string, sysno: number, args: bigint[]) => Promise<void>): Promise<void> {
  const sc = stub.scratch();
  const now = credentialsOf(as.pid);
  if (!now) throw new Error(`stub ${as.pid}: no credentials in /proc`);
  if (!same(now.groups, v.groups)) {
    v.groups.forEach((g, i) => sc.view.setUint32(4 * i, g, true));
    await call('setgroups', SYS.setgroups, [BigInt(v.groups.length), sc.addr]);
  }
  if (!same(now.gid.slice(0, 3), v.gid.slice(0, 3))) await call('setresgid', SYS.setresgid, v.gid.slice(0, 3).map(BigInt));
  if (now.gid[3] !== v.gid[3]) await call('setfsgid', SYS.setfsgid, [BigInt(v.gid[3])]);
  if (!same(now.uid.slice(0, 3), v.uid.slice(0, 3))) await call('setresuid', SYS.setresuid, v.uid.slice(0, 3).map(BigInt));
  if (now.uid[3] !== v.uid[3]) await call('setfsuid', SYS.setfsuid, [BigInt(v.uid[3])]);
}
