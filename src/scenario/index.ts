/**
 * `systrap/scenario`: scripted runs of the runtime on the real kernel, with faults injected at
 * named lifecycle states, and assertions on the simplified sequence of inspection events.
 *
 * @example
 * ```ts
 * import { Scenario } from 'systrap/scenario';
 * const s = await Scenario.create({ pool: false });
 * s.fault({ op: 'initStub', at: 'attached', action: 'kill' }); // kill the stub when its syscall thread is attached
 * await assert.rejects(s.platform.newAddressSpace(), { code: 'ESTUBDEAD' });
 * assert.deepEqual(s.states('subprocess:1'), ['creating.forking', 'creating.initializing', 'dead']);
 * await s.close();
 * ```
 */
import type { AnyActorRef, InspectionEvent } from 'xstate';
import { createPlatform, type Platform, type PlatformOptions } from '../platform.js';
import type { PlatformContext } from '../actors/platformContext.js';
import type { TracerRequestBody, TransactionFault, TransactionPoint } from '../tracer/protocol.js';
import { THREAD_CONTEXT } from '../abi/sysmsg.js';
import { stateString } from '../inspect/record.js';
import { Errors } from '../errors.js';
import type { ProcessFault, ProcessFaultPoint } from '../platformPort.js';

/** A fault for the next transaction(s) that match (gVisor's request names). */
/**
 * A fault for the runtime's own transactions (`op`: a tracer transaction, `at` a point in it),
 * or for a program's processes (`op`: `fork`, `exec` or `exit`; no `at`): see Scenario.fault.
 */
export type FaultRule = TransactionFaultRule | ProcessFaultRule;

export interface ProcessFaultRule {
  /** The program's fork (the parent's pid), its execve, or its process's end. */
  op: ProcessFaultPoint;
  /**
   * fail: the fork or the execve fails with `errno` (EAGAIN, ENOMEM by default; no `fail` at
   * exit); kill: SIGKILL to the process's stub there (the new child's at fork, during the load
   * at exec, before its release at exit); delay: that step waits `ms`.
   */
  action: 'kill' | 'delay' | 'fail';
  ms?: number;
  errno?: number;
  /** Only this process (its pid as the program sees it: the parent's at fork). Any if omitted. */
  pid?: number;
  times?: number;
}

export interface TransactionFaultRule {
  /** The transaction: `requestStub` (clone a stub), `initStub`, `inject`, `requestThread`. Any if omitted. */
  op?: 'requestStub' | 'initStub' | 'inject' | 'requestThread';
  /** Where in it: the state the syscall thread enters (`attach` is before PTRACE_ATTACH). */
  at: TransactionPoint;
  /** kill the stub, delay the tracer thread `ms`, or fail the ptrace request with `errno`. */
  action: 'kill' | 'delay' | 'fail';
  ms?: number;
  errno?: number;
  /** How many matching transactions get it. Default 1. */
  times?: number;
}

/** One step of the simplified sequence: an actor entered a state (or appeared). */
export interface ScenarioStep {
  actor: string;
  state: string;
  /** The event that led there. */
  event?: string;
}

type Reaction = { pattern: RegExp; state: string; fn: (actorId: string) => void | Promise<void>; once: boolean; fired: boolean };

/** A glob on actor ids (`subprocess:*`, `platformContext:*`) as a RegExp. */
function actorPattern(p: string | RegExp): RegExp {
  if (p instanceof RegExp) return p;
  return new RegExp('^' + p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*') + '$');
}

/**
 * A scripted run: a platform whose inspection events are recorded and simplified, whose
 * transactions take injected faults, and whose actors trigger reactions when they enter named
 * states (interrupt a context when it runs, corrupt its slot, kill a stub when it is ready).
 */
export class Scenario {
  /** Every actor's state changes, in order (simplified inspection events). */
  readonly steps: ScenarioStep[] = [];
  readonly #faults: Array<TransactionFaultRule & { left: number }> = [];
  readonly #processFaults: Array<ProcessFaultRule & { left: number }> = [];
  readonly #reactions: Reaction[] = [];
  readonly #waiters: Array<{ pattern: RegExp; state: string; resolve: (id: string) => void }> = [];
  readonly errors: unknown[] = [];
  #platform?: Platform;

  private constructor() {}

  /** Creates the platform of the scenario (options as createPlatform's, `inspect` taken). */
  static async create(options: Omit<PlatformOptions, 'inspect'> = {}): Promise<Scenario> {
    const s = new Scenario();
    s.#platform = await createPlatform({ ...options, inspect: (e) => s.#observe(e) });
    s.#platform.port.setFaultHook((body) => s.#faultFor(body));
    s.#platform.port.setProcessFaultHook((point, pid) => s.#processFaultFor(point, pid));
    return s;
  }

  get platform(): Platform {
    return this.#platform!;
  }

  /**
   * Injects a fault into the next `times` transactions that match: the tracer thread kills the
   * stub, sleeps or fails the ptrace request exactly at that point (no race with the actor).
   * With `op` `fork`, `exec` or `exit`, into the next `times` of those steps of a program's
   * processes (run by runProgram on this platform): see ProcessFaultRule.
   *
   * @example
   * ```ts
   * s.fault({ op: 'initStub', at: 'attached', action: 'kill' });
   * s.fault({ op: 'fork', action: 'fail', errno: 11 }); // the program's next fork: EAGAIN
   * ```
   */
  fault(rule: FaultRule): this {
    if (rule.op === 'fork' || rule.op === 'exec' || rule.op === 'exit') {
      if (!['kill', 'delay', 'fail'].includes(rule.action) || (rule.op === 'exit' && rule.action === 'fail')) throw Errors.InvalidArg(`no '${rule.action}' at ${rule.op}`);
      this.#processFaults.push({ ...rule, left: rule.times ?? 1 });
      return this;
    }
    const r = rule as TransactionFaultRule;
    if (!['attach', 'attached', 'injecting', 'detaching'].includes(r.at)) throw Errors.InvalidArg(`unknown transaction point '${r.at}'`);
    this.#faults.push({ ...r, left: r.times ?? 1 });
    return this;
  }

  /**
   * Runs `fn` when an actor whose id matches enters `state` (its dotted value, or a prefix of it
   * up to a dot): once by default. Errors thrown by `fn` are kept in {@link errors}.
   */
  on(actor: string | RegExp, state: string, fn: (actorId: string) => void | Promise<void>, opts: { once?: boolean } = {}): this {
    this.#reactions.push({ pattern: actorPattern(actor), state, fn, once: opts.once ?? true, fired: false });
    return this;
  }

  /** Resolves when an actor matching `actor` enters `state` (now, if one is already in it). */
  waitFor(actor: string | RegExp, state: string, timeoutMs = 10_000): Promise<string> {
    const pattern = actorPattern(actor);
    const now = this.#current().find(([id, v]) => pattern.test(id) && matches(v, state));
    if (now) return Promise.resolve(now[0]);
    return new Promise((resolve, reject) => {
      const w = { pattern, state, resolve: (id: string) => (clearTimeout(timer), resolve(id)) };
      const timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        reject(Errors.Timeout(`no actor matching ${pattern} entered '${state}' within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.push(w);
    });
  }

  /** The states an actor went through, in order, without repeats of the same state. */
  states(actorId: string): string[] {
    const out: string[] = [];
    for (const s of this.steps) if (s.actor === actorId && out.at(-1) !== s.state) out.push(s.state);
    return out;
  }

  /** Ids of the actors seen whose id matches, in order of appearance. */
  actors(pattern: string | RegExp = '*'): string[] {
    const re = actorPattern(pattern);
    return [...new Set(this.steps.map((s) => s.actor))].filter((id) => re.test(id));
  }

  /** The actor ref (to read its snapshot). */
  actor(id: string): AnyActorRef | undefined {
    return this.platform.actor.system.get(id) as AnyActorRef | undefined;
  }

  /**
   * Writes an impossible state into a context's ThreadContext slot, as a program scribbling on
   * shared memory would: its next wait must end in ECORRUPT, and Node go on.
   */
  corruptSlot(ctx: PlatformContext, state = 0x41414141): void {
    const slot = this.platform.port.contextSlot(ctx);
    const v = this.platform.memoryFile.view(slot);
    new DataView(v.buffer, v.byteOffset, v.byteLength).setUint32(THREAD_CONTEXT.state, state, true);
    this.platform.memoryFile.shared.futexWake(slot.start + THREAD_CONTEXT.state, 1);
  }

  async close(): Promise<void> {
    await this.#platform?.close();
  }

  #current(): Array<[string, string]> {
    const last = new Map<string, string>();
    for (const s of this.steps) last.set(s.actor, s.state);
    return [...last];
  }

  #faultFor(body: TracerRequestBody): TransactionFault | undefined {
    const f = this.#faults.find((r) => r.left > 0 && (r.op === undefined || r.op === body.op));
    if (!f) return undefined;
    f.left--;
    return { at: f.at, action: f.action, ms: f.ms, errno: f.errno };
  }

  #processFaultFor(point: ProcessFaultPoint, pid: number): ProcessFault | undefined {
    const f = this.#processFaults.find((r) => r.left > 0 && r.op === point && (r.pid === undefined || r.pid === pid));
    if (!f) return undefined;
    f.left--;
    return { action: f.action, ms: f.ms, errno: f.errno };
  }

  #observe(e: InspectionEvent): void {
    if (e.type !== '@xstate.snapshot') return;
    const actor = (e.actorRef as unknown as { id: string }).id;
    const state = stateString((e.snapshot as { value?: unknown }).value);
    const prev = this.states(actor).at(-1);
    this.steps.push({ actor, state, event: e.event?.type });
    if (prev === state) return;
    for (const r of this.#reactions) {
      if ((r.once && r.fired) || !r.pattern.test(actor) || !matches(state, r.state)) continue;
      r.fired = true;
      // After the current transition: reactions call into the runtime, which sends events.
      queueMicrotask(() => {
        try {
          const p = r.fn(actor);
          if (p) p.catch((err: unknown) => this.errors.push(err));
        } catch (err) {
          this.errors.push(err);
        }
      });
    }
    for (const w of [...this.#waiters]) {
      if (w.pattern.test(actor) && matches(state, w.state)) {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        w.resolve(actor);
      }
    }
  }
}

/** `creating.forking` matches `creating.forking` and `creating`. */
function matches(value: string, state: string): boolean {
  return value === state || value.startsWith(state + '.');
}
