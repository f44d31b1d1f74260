import { readFileSync } from 'node:fs';
import { SYS } from '../../abi/syscalls.js';

/**
 * A process's credentials (gVisor's auth.Credentials, without capabilities): uids and gids as
 * real, effective, saved, filesystem; supplementary groups.
 */
export interface Credentials {
  uid: number[];
  gid: number[];
  groups: number[];
}

/** An id argument's "leave it" value ((uid_t)-1). */
const KEEP = 0xffffffff;

/**
 * The credentials of process `pid` (host view) as /proc shows them, or undefined.
 *
 * @example
 * ```ts
 * credentialsOf(stub.pid); // { uid: [0, 0, 0, 0], gid: [0, 0, 0, 0], groups: [] }
 * ```
 */
export function credentialsOf(pid: number): Credentials | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const ids = (name: string) => (new RegExp(`^${name}:(.*)$`, 'm').exec(status)?.[1] ?? '').trim().split(/\s+/).filter(Boolean).map(Number);
    const c = { uid: ids('Uid'), gid: ids('Gid'), groups: ids('Groups') };
    return c.uid.length === 4 && c.gid.length === 4 ? c : undefined;
  } catch {
    return undefined;
  }
}

/** One of setuid/setreuid/setresuid/setfsuid applied to ids [real, effective, saved, fs] (kernel/sys.c). */
function applyIds(ids: number[], sysno: { one: boolean; re: boolean; res: boolean; fs: boolean }, a: number[], privileged: boolean): number[] {
  const [r, e, s] = ids;
  if (sysno.one) return privileged ? [a[0], a[0], a[0], a[0]] : [r, a[0], s, a[0]];
  if (sysno.fs) return privileged || ids.includes(a[0]) ? [r, e, s, a[0]] : ids;
  if (sysno.re) {
    const nr = a[0] === KEEP ? r : a[0];
    const ne = a[1] === KEEP ? e : a[1];
    // Linux's setreuid: the saved id follows the new effective one when the real one was set, or
    // the effective one was set to something other than the old real one.
    const ns = a[0] !== KEEP || (a[1] !== KEEP && a[1] !== r) ? ne : s;
    return [nr, ne, ns, ne];
  }
  const ne = a[1] === KEEP ? e : a[1];
  return [a[0] === KEEP ? r : a[0], ne, a[2] === KEEP ? s : a[2], ne];
}

/**
 * The credentials a successful call of the setuid family leaves (Linux's rules for the saved
 * and filesystem ids; "privileged" is an effective uid of 0, whose capabilities allow any
 * change). setgroups' list is read by the caller (`groups`). Precondition: the call returned
 * success (setfsuid/setfsgid: any return; the rule decides whether it changed anything).
 *
 * @example
 * ```ts
 * credentialsAfter(root, SYS.setresuid, [1000n, 1000n, 1000n]); // uid [1000, 1000, 1000, 1000]
 * ```
 */
export function credentialsAfter(old: Credentials, sysno: number, args: bigint[], groups?: number[]): Credentials {
  const a = args.map((v) => Number(BigInt.asUintN(32, v)));
  const privileged = old.uid[1] === 0;
  const kind = (one: number, re: number, res: number, fs: number) => ({ one: sysno === one, re: sysno === re, res: sysno === res, fs: sysno === fs });
  const uidCall = kind(SYS.setuid, SYS.setreuid, SYS.setresuid, SYS.setfsuid);
  const gidCall = kind(SYS.setgid, SYS.setregid, SYS.setresgid, SYS.setfsgid);
  const next = { uid: [...old.uid], gid: [...old.gid], groups: [...old.groups] };
  if (Object.values(uidCall).some(Boolean)) next.uid = applyIds(old.uid, uidCall, a, privileged);
  else if (Object.values(gidCall).some(Boolean)) next.gid = applyIds(old.gid, gidCall, a, privileged);
  else if (sysno === SYS.setgroups && groups) next.groups = [...groups].sort((x, y) => x - y);
  return next;
}

/** The capability sets of process `pid` (host view) as /proc shows them, keepcaps off; undefined when gone. */
export function capabilitiesOf(pid: number): { effective: bigint; permitted: bigint; inheritable: bigint; keep: boolean } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const mask = (name: string) => BigInt('0x' + (new RegExp(`^${name}:\\s*([0-9a-f]+)$`, 'm').exec(status)?.[1] ?? '0'));
    return { effective: mask('CapEff'), permitted: mask('CapPrm'), inheritable: mask('CapInh'), keep: false };
  } catch {
    return undefined;
  }
}

/**
 * What a uid change does to the capability sets (Linux's cap_emulate_setxuid): leaving uid 0
 * for good (no real, effective or saved uid 0 left) clears the permitted and effective sets
 * unless keepcaps is on; an effective uid leaving 0 clears the effective set; one becoming 0
 * raises it to the permitted set.
 *
 * @example
 * ```ts
 * capsAfterUidChange([0, 0, 0, 0], [65534, 65534, 65534, 65534], caps); // { effective: 0n, permitted: keep ? caps.permitted : 0n, … }
 * ```
 */
export function capsAfterUidChange(
  oldUid: readonly number[],
  newUid: readonly number[],
  caps: { effective: bigint; permitted: bigint; inheritable: bigint; keep: boolean },
): { effective: bigint; permitted: bigint; inheritable: bigint; keep: boolean } {
  const next = { ...caps };
  const hadRoot = oldUid[0] === 0 || oldUid[1] === 0 || oldUid[2] === 0;
  const noRoot = newUid[0] !== 0 && newUid[1] !== 0 && newUid[2] !== 0;
  if (hadRoot && noRoot && !caps.keep) next.permitted = next.effective = 0n;
  if (oldUid[1] === 0 && newUid[1] !== 0) next.effective = 0n;
  if (oldUid[1] !== 0 && newUid[1] === 0) next.effective = next.permitted;
  return next;
}
