import { ATTR, TASK_ATTRS } from '../../abi/sysmsg.js';
import { credentialsOf, type Credentials } from './credentials.js';

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
  /** Capability sets (see Capabilities), once the process changed them or PR_SET_KEEPCAPS. */
  caps?: Capabilities;
  /** PR_SET_NO_NEW_PRIVS as the program set it (the stub threads all have it, for their filter). */
  noNewPrivs?: boolean;
}

/** A process's capability sets (64-bit masks) and its PR_SET_KEEPCAPS flag. */
export interface Capabilities {
  effective: bigint;
  permitted: bigint;
  inheritable: bigint;
  keep: boolean;
}

/** Nothing set yet. */
export function noAttrs(): AttrValues {
  return { set: 0, uid: [0, 0, 0, 0], gid: [0, 0, 0, 0], groups: [], nice: 0, affinity: new Uint8Array(0), rlimits: new Map() };
}

/** A copy (a fork's child starts with its parent's values). */
export function copyAttrs(v: AttrValues): AttrValues {
  return { ...v, uid: [...v.uid], gid: [...v.gid], groups: [...v.groups], affinity: v.affinity.slice(), rlimits: new Map(v.rlimits), ...(v.caps ? { caps: { ...v.caps } } : {}) };
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

  /** The filesystem ids and groups the program set, for checks made on its behalf (undefined: as it started). */
  creds(): { uid: number; gid: number; groups: number[] } | undefined {
    const v = this.values;
    return v.set & ATTR.creds ? { uid: v.uid[3], gid: v.gid[3], groups: [...v.groups] } : undefined;
  }

  /**
   * The process's credentials now: as it set them, or, before it set any, as its stub started
   * (its syscall thread's, from /proc; undefined when the stub is gone).
   */
  credentials(hostPid: number): Credentials | undefined {
    const v = this.values;
    return v.set & ATTR.creds ? { uid: [...v.uid], gid: [...v.gid], groups: [...v.groups] } : credentialsOf(hostPid);
  }

  /** New credentials (a call of the setuid family succeeded). False: more groups than the block holds. */
  recordCreds(c: Credentials): boolean {
    if (c.groups.length > ATTR.groupsMax) return false;
    Object.assign(this.values, { uid: [...c.uid], gid: [...c.gid], groups: [...c.groups] });
    this.#publish(ATTR.creds);
    return true;
  }

  /** New capability sets or keepcaps flag (capset, PR_SET_KEEPCAPS, a uid change, execve). */
  recordCaps(caps: Capabilities): void {
    this.values.caps = { ...caps };
    this.#publish(ATTR.caps);
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
    if (v.caps) {
      [v.caps.effective, v.caps.permitted, v.caps.inheritable].forEach((c, i) => b.setBigUint64(TASK_ATTRS.caps + 8 * i, c, true));
      b.setUint32(TASK_ATTRS.keepcaps, v.caps.keep ? 1 : 0, true);
    }
    this.#gen++;
    Atomics.store(new Uint32Array(b.buffer, b.byteOffset + TASK_ATTRS.gen, 1), 0, this.#gen);
  }
}
