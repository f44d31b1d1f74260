import { syscallName } from '../abi/syscalls.js';
import type { TraceOptions } from './protocol.js';

/** What a policy module's handle(call) may answer. */
export type PolicyAnswer = 'pass' | 'kill' | number | bigint | { errno: number } | { value: number | bigint };

/** The call a policy module sees. */
export interface PolicyCall {
  sysno: number;
  name: string;
  args: bigint[];
  tid: number;
}

/**
 * The per-call decisions taken before emulation: `-e inject=` (a result without the call) and
 * `--policy` (a module's handle(call), loaded in the sentry worker). `--deny` is not here: the
 * kernel enforces it in the program's seccomp filter.
 *
 * @example
 * ```ts
 * const policy = new Policy({ trace: [], outFd: -1, summary: false, inject: [{ syscalls: [SYS.openat], error: 13 }] });
 * await policy.init();
 * policy.injected(SYS.openat); // -13n
 * ```
 */
export class Policy {
  readonly #inject = new Map<number, bigint>();
  #handle?: (call: PolicyCall) => PolicyAnswer;

  constructor(readonly opts: Pick<TraceOptions, 'inject' | 'policy'>) {
    for (const i of opts.inject) for (const s of i.syscalls) this.#inject.set(s, i.error !== undefined ? -BigInt(i.error) : (i.retval ?? 0n));
  }

  /** Loads the policy module (in this worker). */
  async init(): Promise<void> {
    if (!this.opts.policy) return;
    const mod = (await import(this.opts.policy)) as { handle?: (call: PolicyCall) => PolicyAnswer };
    if (typeof mod.handle !== 'function') throw new Error(`systrap: the policy module ${this.opts.policy} exports no handle(call) function`);
    this.#handle = mod.handle;
  }

  /** An injected result for this call (`-e inject=`), if any. */
  injected(sysno: number): bigint | undefined {
    return this.#inject.get(sysno);
  }

  /** The policy module's answer: pass, kill, or the program's result. */
  decide(tid: number, sysno: number, args: bigint[]): 'pass' | 'kill' | bigint {
    if (!this.#handle) return 'pass';
    const a = this.#handle({ sysno, name: syscallName(sysno), args: [...args], tid });
    if (a === undefined || a === 'pass') return 'pass';
    if (a === 'kill') return 'kill';
    if (typeof a === 'number' || typeof a === 'bigint') return BigInt(a);
    if ('errno' in a) return -BigInt(a.errno);
    if ('value' in a) return BigInt(a.value);
    return 'pass';
  }
}
