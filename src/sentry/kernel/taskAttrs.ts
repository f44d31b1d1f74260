import { readFileSync } from 'node:fs';
import { ATTR, TASK_ATTRS } from '../../abi/sysmsg.js';

/**
 * What the program set of the attributes Linux keeps per task (credentials, resource limits,
 * nice, CPU affinity): the values every stub thread of its process must hold. Plain data: a
 * forked process starts with a copy of its parent's.
 */
export interface AttrValues {
  /** ATTR bits of what was set (the rest is as the stub started). */
  set: number;
  /** Real, effective, saved, filesystem. */
  uid: number[];
  gid: number[];
  groups: number[];
  nice: number;
  affinity: Uint8Array;
  /** By resource: [soft, hard]. */
  rlimits: Map<number, [bigint, bigint]>;
}

/** Nothing set yet. */
export function noAttrs(): AttrValues {
  return { set: 0, uid: [0, 0, 0, 0], gid: [0, 0, 0, 0], groups: [], nice: 0, affinity: new Uint8Array(0), rlimits: new Map() };
}

/** A copy (a fork's child starts with its parent's values). */
export function copyAttrs(v: AttrValues): AttrValues {
  return { ...v, uid: [...v.uid], gid: [...v.gid], groups: [...v.groups], affinity: v.affinity.slice(), rlimits: new Map(v.rlimits) };
}

/**
 * A process's task attributes (the kernel's per-task credentials and limits, kept as one for
 * the process as gVisor keeps them on its ThreadGroup): a call that changes one runs on one
 * sysmsg thread, and the others must follow, as must the syscall thread its forks are made
 * by. The sentry records the new values here after the call succeeded; they are published to
 * the stub's task_attrs block (native/stub/sysmsg.h), which each sysmsg thread takes on before
 * its next context, and handed to the main thread with each fork, which has the syscall thread
 * take them on first. Protected by: the sentry worker (the block's other readers only read).
 *
 * @example
 * ```ts
 * attrs.recordRlimit(7, 64n, 64n); // RLIMIT_NOFILE: every stub thread, and the next fork's child
 * ```
 */
export class TaskAttrs {
  readonly values: AttrValues;
  #gen = 0;
  readonly #block: DataView;

  /** `block`: the stub's task_attrs block (its context queue's, CONTEXT_QUEUE.attrs). */
  constructor(block: ArrayBuffer, inherited?: AttrValues) {
    this.#block = new DataView(block, 0, TASK_ATTRS.size);
    this.values = inherited ? copyAttrs(inherited) : noAttrs();
  }

  /** The publication count (a fork's syscall thread is brought up to it first). */
  get gen(): number {
    return this.#gen;
  }

  /**
   * Credentials as the thread `tid` (host view) now has them, after a call of the setuid family
   * succeeded there. False when its /proc status could not be read or has more groups than the
   * block holds (the caller then fails the call's process: it cannot be kept alike).
   */
  recordCreds(tid: number): boolean {
    let status: string;
    try {
      status = readFileSync(`/proc/${tid}/status`, 'utf8');
    } catch {
      return false;
    }
    const ids = (name: string) => (new RegExp(`^${name}:(.*)$`, 'm').exec(status)?.[1] ?? '').trim().split(/\s+/).filter(Boolean).map(Number);
    const uid = ids('Uid');
    const gid = ids('Gid');
    const groups = ids('Groups');
    if (uid.length !== 4 || gid.length !== 4 || groups.length > ATTR.groupsMax) return false;
    Object.assign(this.values, { uid, gid, groups });
    this.#publish(ATTR.creds);
    return true;
  }

  recordRlimit(resource: number, soft: bigint, hard: bigint): void {
    if (resource < 0 || resource >= ATTR.rlimits) return;
    this.values.rlimits.set(resource, [soft, hard]);
    this.#publish(1 << (ATTR.rlimitShift + resource));
  }

  recordNice(nice: number): void {
    this.values.nice = Math.min(19, Math.max(-20, nice));
    this.#publish(ATTR.nice);
  }

  recordAffinity(mask: Uint8Array): void {
    this.values.affinity = mask.slice(0, ATTR.affinityMax);
    this.#publish(ATTR.affinity);
  }

  /** Writes every value, then the new generation (a thread reading meanwhile reads again later). */
  #publish(bit: number): void {
    const v = this.values;
    v.set |= bit;
    const b = this.#block;
    b.setUint32(TASK_ATTRS.set, v.set, true);
    for (let i = 0; i < 4; i++) {
      b.setUint32(TASK_ATTRS.uid + 4 * i, v.uid[i] >>> 0, true);
      b.setUint32(TASK_ATTRS.gid + 4 * i, v.gid[i] >>> 0, true);
    }
    b.setUint32(TASK_ATTRS.ngroups, v.groups.length, true);
    v.groups.forEach((g, i) => b.setUint32(TASK_ATTRS.groups + 4 * i, g >>> 0, true));
    b.setInt32(TASK_ATTRS.nice, v.nice, true);
    b.setUint32(TASK_ATTRS.affinityLen, v.affinity.length, true);
    v.affinity.forEach((byte, i) => b.setUint8(TASK_ATTRS.affinity + i, byte));
    for (const [r, [soft, hard]] of v.rlimits) {
      b.setBigUint64(TASK_ATTRS.rlimit + 16 * r, soft, true);
      b.setBigUint64(TASK_ATTRS.rlimit + 16 * r + 8, hard, true);
    }
    this.#gen++;
    Atomics.store(new Uint32Array(b.buffer, b.byteOffset + TASK_ATTRS.gen, 1), 0, this.#gen);
  }
}
