import { syscallName } from '../abi/syscalls.js';
import { dynamicImport } from '../bundleHooks.js';
import type { TraceOptions } from './protocol.js';
import { injectApplies, type InjectWhen } from './strace/inject.js';

/**
 * What a policy module's handle(call) may answer: `'pass'` (the call goes on as without a
 * policy), `'kill'` (the program dies of SIGSYS), a number or bigint (the call is not made and
 * returns it), `{ errno }` (the call fails with that errno, 1..4095), `{ value }` (returns it).
 * Anything else, a Promise included, is an error that ends the program (fail closed).
 */
export type PolicyAnswer = 'pass' | 'kill' | number | bigint | { errno: number } | { value: number | bigint };

/** The largest errno a syscall can return. */
const MAX_ERRNO = 4095;

/** A policy module misbehaved: the program ends with this error (never "pass" by default). */
export class PolicyError extends Error {
  readonly code = 'EPOLICY';
}

/** The call a policy module sees. */
export interface PolicyCall {
  sysno: number;
  name: string;
  args: bigint[];
  tid: number;
}

/**
 * The per-call decisions taken before emulation: `-e inject=` (a result without the call) and
 * `--policy` (a module's handle(call), loaded in the sentry worker), and `--deny` for the calls
 * that trap anyway (traced or counted); the kernel refuses the others (the program's filter).
 *
 * @example
 * ```ts
 * const policy = new Policy({ trace: [], outFd: -1, summary: false, inject: [{ syscalls: [SYS.openat], error: 13 }] });
 * await policy.init();
 * policy.injected(tid, SYS.openat); // -13n
 * ```
 */
export class Policy {
  /** Injections by syscall, in the order given (the first whose `when` holds applies). */
  readonly #inject = new Map<number, Array<{ ret: bigint; when?: InjectWhen }>>();
  /** Calls seen per thread and syscall (`when=` counts them from 1, per thread as strace does). */
  readonly #counts = new Map<number, Map<number, number>>();
  #handle?: (call: PolicyCall) => PolicyAnswer;

  /** `--deny`ed calls the kernel lets trap (see TraceOptions.denied): errno by syscall. */
  readonly #denied: Map<number, number>;

  constructor(readonly opts: Pick<TraceOptions, 'inject' | 'policy' | 'denied'>) {
    this.#denied = new Map(opts.denied ?? []);
    for (const i of opts.inject) {
      for (const s of i.syscalls) {
        const list = this.#inject.get(s) ?? [];
        list.push({ ret: i.error !== undefined ? -BigInt(i.error) : (i.retval ?? 0n), when: i.when });
        this.#inject.set(s, list);
      }
    }
  }

  /**
   * Loads the policy module (in this worker). An async handle() is refused here: the sentry
   * decides each call synchronously, and a Promise would be an answer it cannot read.
   */
  async init(): Promise<void> {
    const file = this.opts.policy;
    if (!file) return;
    const mod = await dynamicImport<{ handle?: (call: PolicyCall) => PolicyAnswer }>(file);
    if (typeof mod.handle !== 'function') throw new PolicyError(`the policy module ${file} exports no handle(call) function`);
    if (mod.handle.constructor.name === 'AsyncFunction' || mod.handle.constructor.name === 'AsyncGeneratorFunction')
      throw new PolicyError(`the policy module ${file}: handle(call) is async; it must answer synchronously`);
    this.#handle = mod.handle;
  }

  /** Whether a policy module answers calls (it is shown every argument). */
  get hasModule(): boolean {
    return this.#handle !== undefined;
  }

  /** -errno for a `--deny`ed call that trapped, if this is one (it is never made). */
  denied(sysno: number): bigint | undefined {
    const errno = this.#denied.get(sysno);
    return errno === undefined ? undefined : -BigInt(errno);
  }

  /** An injected result for this call of thread `tid` (`-e inject=`, its `when=` counted), if any. */
  injected(tid: number, sysno: number): bigint | undefined {
    const list = this.#inject.get(sysno);
    if (!list) return undefined;
    let counts = this.#counts.get(tid);
    if (!counts) this.#counts.set(tid, (counts = new Map()));
    const n = (counts.get(sysno) ?? 0) + 1;
    counts.set(sysno, n);
    return list.find((i) => injectApplies(i.when, n))?.ret;
  }

  /** A thread is gone: its counts go too. */
  forget(tid: number): void {
    this.#counts.delete(tid);
  }

  /**
   * The policy module's answer: pass, kill, or the program's result. An answer outside
   * {@link PolicyAnswer}, or an exception from handle(), throws a PolicyError naming the module.
   */
  decide(tid: number, sysno: number, args: bigint[]): 'pass' | 'kill' | bigint {
    if (!this.#handle) return 'pass';
    const name = syscallName(sysno);
    let a: unknown;
    try {
      a = this.#handle({ sysno, name, args: [...args], tid });
    } catch (e) {
      throw new PolicyError(`the policy module ${this.opts.policy} threw on ${name}: ${(e as Error).message ?? e}`);
    }
    const answer = readAnswer(a);
    if (answer === undefined) throw new PolicyError(`the policy module ${this.opts.policy} answered ${describe(a)} for ${name}: not an answer (see PolicyAnswer)`);
    return answer;
  }
}

/** A policy answer as the sentry acts on it, or undefined when it is none. */
function readAnswer(a: unknown): 'pass' | 'kill' | bigint | undefined {
  if (a === 'pass' || a === 'kill') return a;
  if (typeof a === 'bigint') return a;
  if (typeof a === 'number') return Number.isSafeInteger(a) ? BigInt(a) : undefined;
  if (typeof a !== 'object' || a === null || typeof (a as { then?: unknown }).then === 'function') return undefined;
  const keys = Object.keys(a);
  if (keys.length !== 1) return undefined;
  if (keys[0] === 'errno') {
    const e = (a as { errno: unknown }).errno;
    return typeof e === 'number' && Number.isInteger(e) && e >= 1 && e <= MAX_ERRNO ? -BigInt(e) : undefined;
  }
  if (keys[0] === 'value') {
    const v = (a as { value: unknown }).value;
    if (typeof v === 'bigint') return v;
    return typeof v === 'number' && Number.isSafeInteger(v) ? BigInt(v) : undefined;
  }
  return undefined;
}

function describe(a: unknown): string {
  if (a === undefined) return 'undefined';
  if (typeof a === 'object' && a !== null && typeof (a as { then?: unknown }).then === 'function') return 'a Promise';
  try {
    return JSON.stringify(a, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v)) ?? String(a);
  } catch {
    return String(a);
  }
}