/**
 * Model-based tests. Paths through the subprocess, sysmsgThread and platformContext machines are
 * generated with xstate/graph, and each one is driven against the real runtime (stubs, tracer
 * workers, sysmsg threads, contexts running machine code) by an executor: for every edge of the
 * model, a real action that makes the runtime send that event. No event is ever sent to an actor
 * by this file: the actor under test is only watched, through the platform's inspection events.
 *
 * Which paths: the shortest path to every state, every simple path (no state visited twice: few
 * here, 24 to 27 per machine, so all of them run; the count is capped in case a machine grows),
 * and one path per edge that the first two sets miss (a self-loop, or an edge back to a state
 * already visited: the shortest drivable path to its source, then the edge). Together they take
 * every edge of the model at least once, and every path through it without a cycle.
 *
 * Checked for each path: the real actor took exactly the path's transitions, in order (an
 * internal self-loop the runtime always sends with the next event, CLONED, is allowed in
 * between), and right after the last one its snapshot value is the state the model predicts.
 * States and transitions covered are counted from what the real actors did, and compared with
 * the totals of the model's adjacency map.
 *
 * Edges no real action can cause on their own are "not drivable", with the reason; so is every
 * path through one. They are listed in the log and in the summary, and the coverage bounds are
 * exactly the drivable edges: a regression in any of them fails the test.
 */
import test, { type ExecutionContext } from 'ava';
import { isDeepStrictEqual } from 'node:util';
import { availableParallelism } from 'node:os';
import { initialTransition, transition, type AnyActorRef, type AnyMachineSnapshot, type AnyStateMachine, type EventObject, type InspectionEvent, type StateValue } from 'xstate';
import { getAdjacencyMap, getShortestPaths, getSimplePaths } from 'xstate/graph';
import {
  createPlatform,
  platformContextMachine,
  REGISTER_NAMES,
  subprocessMachine,
  SYS,
  sysmsgThreadMachine,
  type AddressSpace,
  type Platform,
  type PlatformContext,
  type PlatformOptions,
  type Registers,
  type TransactionFault,
} from '../src/index.js';
import { subprocessOf } from '../src/addressSpace.js';
import type { TracerRequestBody } from '../src/tracer/protocol.js';
import { SYSCALL_THREAD_SLOT, threadSlotAddr } from '../src/abi/stub.js';
import { childPids, leakedChildren, requireTool, until } from './helpers.js';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

// ---------------------------------------------------------------------------------------------
// The models
// ---------------------------------------------------------------------------------------------

/** A machine state as a dotted name ('creating.forking', 'ready'). */
function stateName(value: StateValue): string {
  if (typeof value === 'string') return value;
  const [k, v] = Object.entries(value)[0];
  return v === undefined ? k : `${k}.${stateName(v as StateValue)}`;
}

/** An event as the model tells it apart (RELEASED's guard depends on `pooled`). */
function eventName(e: EventObject): string {
  if (e.type === 'RELEASED') return (e as { pooled?: boolean }).pooled ? 'RELEASED(pooled)' : 'RELEASED(not pooled)';
  return e.type;
}

const edgeName = (from: string, event: string, to: string) => `${from} --${event}--> ${to}`;

interface Edge {
  from: string;
  event: string;
  to: string;
  name: string;
}

/** A path of the model: its events, the transitions they take, the state it ends in. */
interface ModelPath {
  /** Event names, in order ('' for the empty path). */
  id: string;
  events: string[];
  edges: string[];
  final: StateValue;
  finalName: string;
  /** Where it came from: shortest, simple, edge (edge cover). */
  kinds: Set<string>;
}

/** The most simple paths run per machine (they grow exponentially with cycles). */
const MAX_SIMPLE_PATHS = 200;

interface Model {
  states: string[];
  initial: string;
  edges: Edge[];
  paths: ModelPath[];
  counts: { shortest: number; simple: number; edgeCover: number; total: number; simpleCapped: boolean };
}

interface GraphPath {
  state: AnyMachineSnapshot;
  steps: Array<{ state: AnyMachineSnapshot; event: EventObject }>;
}

function toModelPath(p: GraphPath, kind: string): ModelPath {
  // xstate/graph's steps: [init state, then (event, state after it) for each event].
  const events: string[] = [];
  const edges: string[] = [];
  for (let i = 1; i < p.steps.length; i++) {
    const ev = eventName(p.steps[i].event);
    events.push(ev);
    edges.push(edgeName(stateName(p.steps[i - 1].state.value), ev, stateName(p.steps[i].state.value)));
  }
  return { id: events.join(' '), events, edges, final: p.state.value, finalName: stateName(p.state.value), kinds: new Set([kind]) };
}

/**
 * Builds the model: adjacency map (states by value only: context counters would make the graph
 * infinite), shortest paths, simple paths (capped) and an edge cover for what they miss.
 * `blocked` edges (not drivable) are left out of the prefixes of edge-cover paths.
 */
function buildModel(machine: AnyStateMachine, allEvents: EventObject[], input: unknown, blocked: (edge: string) => boolean): Model {
  const base = (s: AnyMachineSnapshot, e: EventObject) => s.status === 'active' && s.can(e);
  const options = {
    input,
    serializeState: (s: AnyMachineSnapshot) => JSON.stringify(s.value),
    events: allEvents,
    filterEvents: base,
  };
  // xstate/graph's generics do not reach AnyStateMachine's snapshots: one cast for all three.
  const graph = { getAdjacencyMap, getShortestPaths, getSimplePaths } as unknown as {
    getAdjacencyMap(m: AnyStateMachine, o: object): Record<string, { state: AnyMachineSnapshot; transitions: Record<string, { event: EventObject; state: AnyMachineSnapshot }> }>;
    getShortestPaths(m: AnyStateMachine, o: object): GraphPath[];
    getSimplePaths(m: AnyStateMachine, o: object): GraphPath[];
  };
  const adj = graph.getAdjacencyMap(machine, options);
  const states = Object.values(adj).map((v) => stateName(v.state.value));
  const edges: Edge[] = [];
  for (const v of Object.values(adj)) {
    const from = stateName(v.state.value);
    for (const t of Object.values(v.transitions)) {
      const event = eventName(t.event);
      const to = stateName(t.state.value);
      edges.push({ from, event, to, name: edgeName(from, event, to) });
    }
  }
  const byId = new Map<string, ModelPath>();
  const add = (p: ModelPath) => {
    const had = byId.get(p.id);
    if (had) p.kinds.forEach((k) => had.kinds.add(k));
    else byId.set(p.id, p);
  };
  const shortest = graph.getShortestPaths(machine, options).map((p) => toModelPath(p, 'shortest'));
  shortest.forEach(add);
  let simple = graph.getSimplePaths(machine, options).map((p) => toModelPath(p, 'simple'));
  const simpleCapped = simple.length > MAX_SIMPLE_PATHS;
  if (simpleCapped) simple = simple.slice(0, MAX_SIMPLE_PATHS);
  simple.forEach(add);
  // Edge cover: the shortest path to the edge's source over drivable edges only, then the edge.
  const drivable = graph.getShortestPaths(machine, {
    ...options,
    filterEvents: (s: AnyMachineSnapshot, e: EventObject) => {
      if (!base(s, e)) return false;
      const to = stateName(transition(machine, s, e)[0].value);
      return !blocked(edgeName(stateName(s.value), eventName(e), to));
    },
  }).map((p) => toModelPath(p, 'edge'));
  const prefixTo = new Map(drivable.map((p) => [p.finalName, p]));
  const taken = new Set([...byId.values()].flatMap((p) => p.edges));
  let edgeCover = 0;
  for (const e of edges) {
    if (taken.has(e.name)) continue;
    const prefix = prefixTo.get(e.from) ?? shortest.find((p) => p.finalName === e.from)!;
    const events = [...prefix.events, e.event];
    add({
      id: events.join(' '),
      events,
      edges: [...prefix.edges, e.name],
      final: Object.values(adj).find((v) => stateName(v.state.value) === e.to)!.state.value,
      finalName: e.to,
      kinds: new Set(['edge']),
    });
    taken.add(e.name);
    edgeCover++;
  }
  return {
    states,
    initial: stateName(initialTransition(machine, input)[0].value),
    edges,
    paths: [...byId.values()],
    counts: { shortest: shortest.length, simple: simple.length, edgeCover, total: byId.size, simpleCapped },
  };
}

// ---------------------------------------------------------------------------------------------
// Watching the real actor
// ---------------------------------------------------------------------------------------------

interface Taken {
  name: string;
  from: string;
  to: string;
  self: boolean;
}

/**
 * The platform's inspection observer. It picks the actor under test (the first actor created
 * after `watch` whose id matches), follows the transitions it really takes (events its machine
 * ignored are skipped) and matches them against the path, resolving `reached(n)` the moment
 * the n-th one happens: the executor runs in the very next microtask, before the runtime's own
 * next step, so a transient state can still be seen.
 */
class Hub {
  target?: AnyActorRef;
  /** Path transitions matched so far. */
  matched = 0;
  /** Every transition the target took while the path ran (matched, and allowed self-loops). */
  taken: Taken[] = [];
  error?: Error;
  #pattern?: RegExp;
  #expected: string[] = [];
  #prev?: AnyMachineSnapshot;
  #frozen = true;
  readonly #waiters = new Set<{ n: number; resolve(): void; reject(e: Error): void }>();
  readonly #eventWaiters = new Set<{ pred(e: InspectionEvent): boolean; resolve(): void }>();

  readonly inspect = (e: InspectionEvent): void => {
    for (const w of this.#eventWaiters) {
      if (w.pred(e)) {
        this.#eventWaiters.delete(w);
        w.resolve();
      }
    }
    if (e.type !== '@xstate.snapshot' || this.#frozen || !this.#pattern) return;
    const snap = e.snapshot as AnyMachineSnapshot;
    if (!this.target) {
      const ref = e.actorRef as AnyActorRef;
      if (e.event.type === 'xstate.init' && this.#pattern.test(ref.id)) {
        this.target = ref;
        this.#prev = snap;
        this.#settle();
      }
      return;
    }
    if (e.actorRef !== this.target) return;
    const prev = this.#prev!;
    this.#prev = snap;
    if (prev.status !== 'active' || !prev.can(e.event)) return; // ignored by the machine
    const from = stateName(prev.value);
    const to = stateName(snap.value);
    const name = edgeName(from, eventName(e.event), to);
    this.taken.push({ name, from, to, self: from === to });
    if (this.matched < this.#expected.length && name === this.#expected[this.matched]) this.matched++;
    else if (from !== to) {
      // A self-loop the path does not take (CLONED before ATTACHED) changes no state: allowed.
      this.error ??= new Error(`the actor took ${name} where the path expects ${this.#expected[this.matched] ?? 'nothing more'}`);
    }
    this.#settle();
  };

  /** Starts watching for a new actor whose id matches; `expected` are the path's transitions. */
  watch(pattern: RegExp, expected: string[]): void {
    this.#pattern = pattern;
    this.#expected = expected;
    this.target = undefined;
    this.#prev = undefined;
    this.matched = 0;
    this.taken = [];
    this.error = undefined;
    this.#frozen = false;
  }

  /** Stops following the actor (cleanup transitions are not the path's). */
  freeze(): void {
    this.#frozen = true;
    for (const w of this.#waiters) w.reject(new Error('stopped'));
    this.#waiters.clear();
  }

  fail(e: unknown): void {
    this.error ??= e instanceof Error ? e : new Error(String(e));
    this.#settle();
  }

  /** Resolves once the target exists and took the path's first n transitions. */
  reached(n: number, ms = 6000): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(w);
        const at = this.target ? stateName(this.target.getSnapshot().value) : '(no actor yet)';
        reject(new Error(`timed out after ${ms} ms: ${this.matched} of ${n} transitions, the actor is in ${at}`));
      }, ms);
      const w = {
        n,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.#waiters.add(w);
      this.#settle();
    });
  }

  /** Resolves at the next inspection event that satisfies pred. */
  next(pred: (e: InspectionEvent) => boolean, ms = 6000): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const w = { pred, resolve: () => (clearTimeout(timer), resolve()) };
      const timer = setTimeout(() => (this.#eventWaiters.delete(w), reject(new Error('timed out waiting for an inspection event'))), ms);
      this.#eventWaiters.add(w);
    });
  }

  #settle(): void {
    for (const w of this.#waiters) {
      if (this.error) {
        this.#waiters.delete(w);
        w.reject(this.error);
      } else if (this.target && this.matched >= w.n) {
        this.#waiters.delete(w);
        w.resolve();
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Executors
// ---------------------------------------------------------------------------------------------

/** What one path's run has: its own platform, and what the steps started. */
interface World {
  t: ExecutionContext;
  platform: Platform;
  hub: Hub;
  /** Faults for the next transaction of that op that the runtime starts on its own. */
  faults: Array<{ op: TracerRequestBody['op']; fault: TransactionFault }>;
  /** Operations left running in the background (settled at cleanup). */
  bg: Array<Promise<unknown>>;
  contexts: PlatformContext[];
  as?: AddressSpace;
  creating?: Promise<AddressSpace | unknown>;
  releasing?: Promise<unknown>;
  ctx?: PlatformContext;
}

/** A step of a plan: a real action, and how many of the path's events it makes the runtime send. */
interface Step {
  label: string;
  consumes: number;
  run(w: World): void | Promise<void>;
}

/** An edge executor, or why the edge cannot be driven. */
type Exec = { reason: string } | { label: string; consumes?: number; retry?: boolean; run(w: World): void | Promise<void> };

interface Plan {
  steps: Step[];
  options: PlatformOptions;
  setup?: (w: World) => Promise<void>;
  /** Attempts allowed: more than one only where a step is probabilistic (a forged reply). */
  attempts: number;
}

interface MachineSpec {
  name: string;
  machine: AnyStateMachine;
  input?: unknown;
  events: Array<EventObject & Record<string, unknown>>;
  /** Id of the actor under test (the first one created after the path starts). */
  actor: RegExp;
  /** Edges no real action can cause, by `from|event`, with the reason. */
  never: Record<string, string>;
  /** States no real path reaches (only through `never` edges), with the reason. */
  unreachable?: Record<string, string>;
  /** The executor of one edge of a path (may look ahead in the path). */
  edge(from: string, event: string, path: ModelPath, i: number): Exec;
  /** The action that creates the actor (the empty path). */
  birth: Step;
  options(path: ModelPath): PlatformOptions;
  setup?: (w: World) => Promise<void>;
  /** A step run before the path's own (contexts: the context is made first). */
  prelude?: Step;
}

function plan(spec: MachineSpec, path: ModelPath): Plan | { reason: string } {
  const steps: Step[] = [];
  if (spec.prelude) steps.push(spec.prelude);
  if (path.events.length === 0 && !spec.prelude) steps.push(spec.birth);
  // Two tries for every path: the real kernel's timing (a signal landing a step later) can make
  // one run take another legal transition; each retry is counted and reported.
  let attempts = 2;
  let name = stateName(initialTransition(spec.machine, spec.input)[0].value);
  for (let i = 0; i < path.events.length; ) {
    const ev = path.events[i];
    const never = spec.never[`${name}|${ev}`];
    if (never) return { reason: `${name} --${ev}-->: ${never}` };
    const x = spec.edge(name, ev, path, i);
    if ('reason' in x) return { reason: `${name} --${ev}-->: ${x.reason}` };
    const consumes = x.consumes ?? 1;
    if (x.retry) attempts = 6; // the forging program races the stub; each try wins ~9 times in 10
    steps.push({ label: x.label, consumes, run: x.run });
    i += consumes;
    name = path.edges[i - 1].split('--> ')[1];
  }
  return { steps, options: spec.options(path), setup: spec.setup, attempts };
}

/** Runs `p` in the background: its failure is the hub's (the path then fails), never unhandled. */
function bg<T>(w: World, p: Promise<T>, expectFailure = false): Promise<T> {
  w.bg.push(
    p.then(
      () => undefined,
      (e) => {
        if (!expectFailure) w.hub.fail(e);
      },
    ),
  );
  return p;
}

/** Routes the faults of `w.faults` into the transactions the runtime starts on its own. */
function interpose(w: World): void {
  w.platform.port.setFaultHook((body: TracerRequestBody): TransactionFault | undefined => {
    const i = w.faults.findIndex((f) => f.op === body.op);
    return i >= 0 ? w.faults.splice(i, 1)[0].fault : undefined;
  });
}

const CODE = 0x400000n;
const DATA = 0x500000n;
const DATA2 = 0x600000n;
const le32 = (n: number) => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff];
const le64 = (n: bigint) => [...le32(Number(n & 0xffffffffn)), ...le32(Number(n >> 32n))];
/** What a forging program answers to every request of the stub's syscall thread. */
const FORGED = 0x13370000n;
/** Offsets of the snippets in the code page. */
const SNIP = {
  /** mov eax, getppid; syscall; jmp $ — traps as a syscall. */
  syscall: 0x00,
  /** movabs rax, 4 GiB; mov dword [rax], 1; jmp $ — SIGSEGV on a store. */
  fault: 0x20,
  /** jmp $ — runs until interrupted. */
  loop: 0x40,
  /**
   * The forger (rdi = the syscall thread's request page, rsi = a data page): marks the data page,
   * then forever copies the request number into `done` with FORGED as the reply, so the runtime
   * reads a reply the stub's syscall thread never wrote. 1: mov dword [rsi], 1;
   * 2: mov eax, [rdi]; movabs rdx, FORGED; mov [rdi+4096], rdx; mov [rdi+4104], eax; jmp 2b.
   */
  forge: 0x60,
};
const CODE_PAGE: Array<[number, number[]]> = [
  [SNIP.syscall, [0xb8, ...le32(SYS.getppid), 0x0f, 0x05, 0xeb, 0xfe]],
  [SNIP.fault, [0x48, 0xb8, ...le64(0x100000000n), 0xc7, 0x00, 0x01, 0x00, 0x00, 0x00, 0xeb, 0xfe]],
  [SNIP.loop, [0xeb, 0xfe]],
  [
    SNIP.forge,
    [0xc7, 0x06, 0x01, 0x00, 0x00, 0x00, 0x8b, 0x07, 0x48, 0xba, ...le64(FORGED), 0x48, 0x89, 0x97, 0x00, 0x10, 0x00, 0x00,
      0x89, 0x87, 0x08, 0x10, 0x00, 0x00, 0xeb, 0xe5],
  ],
];

function regsAt(snippet: number): Registers {
  const r = Object.fromEntries(REGISTER_NAMES.map((n) => [n, 0n])) as Registers;
  r.rip = CODE + BigInt(snippet);
  r.eflags = 0x202n;
  return r;
}

/** Maps the code page (rx) and a data page (rw) into the address space. */
async function loadCode(w: World, as: AddressSpace): Promise<Uint8Array> {
  const mf = w.platform.memoryFile;
  const text = mf.allocate(4096);
  const v = mf.view(text);
  for (const [at, bytes] of CODE_PAGE) v.set(bytes, at);
  await as.mapFile(CODE, text, 'rx');
  const data = mf.allocate(4096);
  await as.mapFile(DATA, data, 'rw');
  return mf.view(data);
}

/** A context runs the forger in the address space; resolves once it runs. */
async function startForger(w: World, as: AddressSpace): Promise<void> {
  const data = await loadCode(w, as);
  const regs = regsAt(SNIP.forge);
  regs.rdi = threadSlotAddr(w.platform.stubRegion, SYSCALL_THREAD_SLOT);
  regs.rsi = DATA;
  const ctx = w.platform.newContext();
  w.contexts.push(ctx);
  // Its thread made by a transaction (a zero delay makes the runtime take that path): a process
  // of its own, which the SIGSTOP of holdSyscallThread leaves running (the threads the stub's
  // loop makes are the stub's own and would stop with it).
  w.faults.push({ op: 'requestThread', fault: { at: 'attach', action: 'delay', ms: 0 } });
  bg(w, ctx.switchToApp(as, regs), true);
  if (!(await until(() => data[0] === 1, 4000))) throw new Error('the forging program did not start');
  await separateForger(as);
}

/**
 * Stops the stub's syscall thread (SIGSTOP to its process: the forger's sysmsg thread, made by a
 * transaction, is a process of its own and keeps running), so that the next request's only
 * answer is the forger's: the race is decided, however loaded the machine. Returns the SIGCONT
 * that undoes it.
 */
async function holdSyscallThread(as: AddressSpace): Promise<() => void> {
  const pid = as.pid;
  process.kill(pid, 'SIGSTOP');
  const stopped = () => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2)[0] === 'T';
    } catch {
      return true; // gone: nothing will answer either
    }
  };
  if (!(await until(stopped, 4000))) throw new Error(`the syscall thread ${pid} did not stop`);
  return () => {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // gone
    }
  };
}

/**
 * Puts the forger's host thread and the stub's syscall thread on different CPUs. Sharing one,
 * the syscall thread woken by a request preempts the spinning forger and answers first, every
 * time, for as long as the scheduler keeps them together (seen: 50 requests in a row).
 */
async function separateForger(as: AddressSpace): Promise<void> {
  if (availableParallelism() < 2) return;
  // The thread made by the stub's loop runs before Node has read its answer: wait for its tid.
  const tids = () => subprocessOf(as).sysmsgThreads.tids().map(([, tid]) => tid);
  if (!(await until(() => tids().length > 0, 4000))) throw new Error('the forger\'s thread has no tid');
  const [forger] = tids();
  // From outside the stub: any syscall of the stub's own would get the forged reply too.
  const taskset = requireTool('taskset', 'util-linux');
  execFileSync(taskset, ['-pc', '0', String(as.pid)], { stdio: 'ignore' });
  execFileSync(taskset, ['-pc', '1', String(forger)], { stdio: 'ignore' });
}

const addressSpace = async (w: World): Promise<AddressSpace> => (w.as ??= (await w.creating) as AddressSpace);
const pidOf = (w: World): number => (w.hub.target!.getSnapshot() as AnyMachineSnapshot).context.pid as number;
const tidOf = (w: World): number => (w.hub.target!.getSnapshot() as AnyMachineSnapshot).context.tid as number;
const next = (path: ModelPath, i: number, k = 1): string | undefined => path.events[i + k];

// --- subprocess -------------------------------------------------------------------------------

const subprocessSpec: MachineSpec = {
  name: 'subprocess',
  machine: subprocessMachine,
  events: [
    { type: 'FORKED', pid: 1 },
    { type: 'CREATED' },
    { type: 'RELEASE' },
    { type: 'RELEASED', pooled: true },
    { type: 'RELEASED', pooled: false },
    { type: 'REUSE' },
    { type: 'FAULT', reason: 'model' },
    { type: 'KILL' },
    { type: 'EXITED', reason: 'model' },
    { type: 'FAILED', reason: 'model' },
  ],
  actor: /^subprocess:\d+$/,
  never: {
    'creating.forking|KILL':
      'the runtime cannot kill a stub before it knows its pid (kill() is a no-op until FORKED); closing the platform then kills the source, and the clone fails: FAILED',
    'creating.forking|EXITED':
      'nothing watches a stub before FORKED (no pid, no pidfd); a clone that dies inside requestStub fails the transaction: FAILED',
  },
  // A fresh stub each time (pool off) where the path releases it without pooling.
  options: (path) => ({ pool: path.events.includes('RELEASED(not pooled)') ? false : { maxAvailable: 4 }, maxSysmsgThreads: 2, tracerThreads: 2 }),
  birth: {
    label: 'newAddressSpace()',
    consumes: 0,
    run: (w) => void (w.creating = bg(w, w.platform.newAddressSpace())),
  },
  edge(from, ev, path, i): Exec {
    const after = next(path, i);
    const close: Exec = { label: 'platform.close()', run: (w) => void bg(w, w.platform.close()) };
    const sigkill: Exec = { label: 'SIGKILL the stub', run: (w) => void process.kill(pidOf(w), 'SIGKILL') };
    switch (`${from}|${ev}`) {
      case 'creating.forking|FORKED':
        return {
          label: after === 'FAILED' ? 'newAddressSpace(), initStub fails at attach' : after === 'EXITED' || after === 'KILL' ? 'newAddressSpace(), initStub held 300 ms' : 'newAddressSpace()',
          run: (w) => {
            // The next edge needs initStub to fail (stub alive) or to wait while the stub dies.
            if (after === 'FAILED') w.faults.push({ op: 'initStub', fault: { at: 'attach', action: 'fail' } });
            if (after === 'EXITED' || after === 'KILL') w.faults.push({ op: 'initStub', fault: { at: 'attach', action: 'delay', ms: 300 } });
            w.creating = bg(w, w.platform.newAddressSpace(), after === 'FAILED' || after === 'EXITED' || after === 'KILL');
          },
        };
      case 'creating.forking|FAILED':
        return {
          label: 'newAddressSpace(), requestStub fails at attach',
          run: (w) => {
            w.faults.push({ op: 'requestStub', fault: { at: 'attach', action: 'fail' } });
            w.creating = bg(w, w.platform.newAddressSpace(), true);
          },
        };
      case 'creating.initializing|CREATED':
        return { label: 'initStub completes', run: () => undefined };
      case 'creating.initializing|FAILED':
        return { label: 'initStub fails (armed at FORKED)', run: () => undefined };
      case 'creating.initializing|EXITED':
        return sigkill;
      case 'creating.initializing|KILL':
        return close;
      case 'ready|RELEASE':
        if (after === 'FAULT') {
          // One real action sends both: release() starts while an mmap whose reply the program
          // forges is in flight; the mmap's check then faults the stub, now releasing.
          return {
            label: 'forged mmap reply in flight, as.release()',
            consumes: 2,
            retry: true,
            run: async (w) => {
              const as = await addressSpace(w);
              await startForger(w, as);
              const resume = await holdSyscallThread(as);
              bg(w, as.mapFile(DATA2, w.platform.memoryFile.allocate(4096), 'rw').finally(resume), true);
              w.releasing = bg(w, as.release(), true);
            },
          };
        }
        return { label: 'as.release()', run: async (w) => void (w.releasing = bg(w, (await addressSpace(w)).release())) };
      case 'releasing|RELEASED(pooled)':
        return { label: 'release completes (pool on)', run: () => undefined };
      case 'releasing|RELEASED(not pooled)':
        return { label: 'release completes (pool off)', run: () => undefined };
      case 'releasing|KILL':
        return close;
      case 'releasing|EXITED':
        return sigkill;
      case 'ready|FAULT':
        return {
          label: 'a program forges the syscall thread reply to mmap',
          run: async (w) => {
            const as = await addressSpace(w);
            await startForger(w, as);
            const range = w.platform.memoryFile.allocate(4096);
            const resume = await holdSyscallThread(as);
            try {
              await as.mapFile(DATA2, range, 'rw');
            } catch (e) {
              if ((e as { code?: string }).code === 'EPROTOCOL') return;
              throw e;
            } finally {
              resume();
            }
            throw new Error('the mmap reply was not the forged one');
          },
        };
      case 'ready|KILL':
        return close;
      case 'ready|EXITED':
        return sigkill;
      case 'pooled|REUSE':
        return { label: 'newAddressSpace() takes the pooled stub', run: async (w) => void (w.as = await w.platform.newAddressSpace()) };
      case 'pooled|KILL':
        return close;
      case 'pooled|EXITED':
        return sigkill;
      case 'faulted|KILL':
        if (path.events[i - 1] === 'FAULT' && path.events[i - 2] === 'RELEASE')
          return { label: 'the release in progress kills the stub', run: () => undefined };
        return { label: 'as.release() of a faulted stub', run: async (w) => void (w.releasing = bg(w, (await addressSpace(w)).release())) };
      case 'faulted|EXITED':
        if (path.events[i - 1] === 'FAULT' && path.events[i - 2] === 'RELEASE')
          return {
            reason:
              'the release in progress has already called kill() when FAULT is seen (the forged unmap replies come back at once), so a SIGKILL right after FAULT follows the runtime\'s own KILL: the edge is not the program\'s death the path means',
          };
        return sigkill;
    }
    return { reason: 'no executor' };
  },
};

// --- sysmsgThread ------------------------------------------------------------------------------

const sysmsgSpec: MachineSpec = {
  name: 'sysmsgThread',
  machine: sysmsgThreadMachine,
  input: { slot: 1 },
  events: [
    { type: 'CLONED', tid: 1 },
    { type: 'ATTACHED' },
    { type: 'STACK_MAPPED' },
    { type: 'SECCOMP_INSTALLED' },
    { type: 'DETACH' },
    { type: 'DETACHED' },
    { type: 'START' },
    { type: 'FAULT', reason: 'model' },
    { type: 'FAILED', reason: 'model' },
    { type: 'EXITED', reason: 'model' },
  ],
  actor: /^sysmsgThread:/,
  never: {
    'parked|START': 'the runtime never starts a parked thread: contexts only use threads created started (kick), and a parked one is never woken',
    'running|FAULT': 'no code of the runtime sends FAULT to a sysmsg thread actor',
    'attached|EXITED': 'requestThread has no fault point between the new thread\'s steps (faults apply to the syscall thread only): a kill lands at a random step',
    'attached|FAILED': 'requestThread has no fault point between the new thread\'s steps; FAILED comes only once the transaction ends',
    'stackMapped|EXITED': 'no fault point between the new thread\'s steps',
    'stackMapped|FAILED': 'no fault point between the new thread\'s steps',
    'seccompInstalled|EXITED': 'no fault point between SECCOMP_INSTALLED and the new thread\'s detach',
    'seccompInstalled|FAILED': 'no fault point between SECCOMP_INSTALLED and the new thread\'s detach',
    'faulted|EXITED': 'faulted is unreachable (nothing sends FAULT)',
    'faulted|FAILED': 'faulted is unreachable (nothing sends FAULT)',
    'parked|FAILED': 'a requestThread that fails after the thread is made kills that thread (no orphan), and its exit signal kills the stub: EXITED and FAILED race',
    'running|FAILED': 'a requestThread that fails after the thread is made kills that thread (no orphan), and its exit signal kills the stub: EXITED and FAILED race',
  },
  unreachable: { faulted: 'nothing in the runtime sends FAULT to a sysmsg thread' },
  options: () => ({ maxSysmsgThreads: 2, tracerThreads: 2 }),
  setup: async (w) => {
    w.as = await w.platform.newAddressSpace();
    await loadCode(w, w.as);
  },
  birth: {
    label: 'createSysmsgThread() (parked)',
    consumes: 0,
    run: (w) => void (w.creating = bg(w, subprocessOf(w.as!).sysmsgThreads.create())),
  },
  edge(from, ev, path): Exec {
    const sp = (w: World) => subprocessOf(w.as!);
    switch (`${from}|${ev}`) {
      case 'cloning|CLONED':
        return { reason: 'CLONED is only ever sent with ATTACHED, by the same tracer step (seen as a self-loop before ATTACHED in the other paths)' };
      case 'cloning|FAILED':
        return {
          label: 'createSysmsgThread(), requestThread fails at attach',
          run: (w) => void (w.creating = bg(w, sp(w).sysmsgThreads.create({ at: 'attach', action: 'fail' }), true)),
        };
      case 'cloning|EXITED':
        return {
          label: 'createSysmsgThread(), requestThread held 300 ms, SIGKILL the stub',
          run: (w) => {
            w.creating = bg(w, sp(w).sysmsgThreads.create({ at: 'attach', action: 'delay', ms: 300 }), true);
            process.kill(w.as!.pid, 'SIGKILL');
          },
        };
      case 'cloning|ATTACHED': {
        const started = path.events.includes('START');
        const failsAt = path.events.indexOf('FAILED');
        const ends = ['attached', 'stackMapped', 'seccompInstalled'].includes(path.finalName);
        let fault: TransactionFault | undefined;
        // FAILED after the thread parked or started: the syscall thread's detach fails, stub alive.
        if (failsAt > 0) fault = { at: 'detaching', action: 'fail' };
        // Ending in a creation step: the reply is held so that it cannot overtake the live steps.
        else if (ends) fault = { at: 'detaching', action: 'delay', ms: 100 };
        // Started without a fault, a thread is made by the stub's own loop (never ATTACHED): a
        // fault that does nothing keeps the switch on the requestThread transaction.
        if (started && !fault) fault = { at: 'attached', action: 'delay', ms: 1 };
        if (started)
          return {
            label: `a context switch makes the runtime create a started thread, requestThread ${fault!.action}s at ${fault!.at}`,
            run: (w) => {
              if (fault) w.faults.push({ op: 'requestThread', fault });
              const ctx = w.platform.newContext();
              w.contexts.push(ctx);
              bg(w, ctx.switchToApp(w.as!, regsAt(SNIP.syscall)), true);
            },
          };
        return {
          label: `createSysmsgThread() (parked)${fault ? `, requestThread ${fault.action}s at detaching` : ''}`,
          run: (w) => void (w.creating = bg(w, sp(w).sysmsgThreads.create(fault), failsAt > 0)),
        };
      }
      case 'cloning|STACK_MAPPED': {
        if (path.events.includes('DETACHED')) return { reason: 'the stub\'s loop makes started threads only: it never parks one' };
        if (['stackMapped', 'seccompInstalled'].includes(path.finalName))
          return { reason: 'a thread the stub\'s loop makes reports its setup steps at once, when it answers: nothing can hold it between them' };
        if (path.events.includes('FAILED')) return { reason: 'no fault point in a creation the stub\'s loop makes (no transaction)' };
        return {
          label: 'a context switch makes the stub\'s loop create a started thread (no transaction)',
          run: (w) => {
            const ctx = w.platform.newContext();
            w.contexts.push(ctx);
            bg(w, ctx.switchToApp(w.as!, regsAt(SNIP.syscall)), true);
          },
        };
      }
      case 'attached|STACK_MAPPED':
      case 'stackMapped|SECCOMP_INSTALLED':
      case 'seccompInstalled|DETACHED':
      case 'seccompInstalled|START':
        return { label: 'the creating transaction goes on', run: () => undefined };
      case 'parked|FAILED':
      case 'running|FAILED':
        return { label: 'the syscall thread\'s detach fails (armed at creation)', run: () => undefined };
      case 'parked|EXITED':
      case 'running|EXITED':
        return {
          label: 'SIGKILL the sysmsg thread (its exit signal kills the stub)',
          run: async (w) => {
            // Not while the transaction still runs: its failure would race with the exit.
            if (!(await until(() => !sp(w).thread!.busy, 4000))) throw new Error('the syscall thread stayed busy');
            process.kill(tidOf(w), 'SIGKILL');
          },
        };
    }
    return { reason: 'no executor' };
  },
};

// --- platformContext ---------------------------------------------------------------------------

/** The snippet a switch starts, from what the path does after it. */
function snippetFor(path: ModelPath, i: number): number {
  const a = next(path, i);
  if (a === 'RELEASE' || a === undefined) return SNIP.syscall; // ends by itself
  const b = next(path, i, 2);
  if (b === 'TRAPPED_SYSCALL') return SNIP.syscall;
  if (b === 'TRAPPED_FAULT') return SNIP.fault;
  return SNIP.loop; // stays running: interrupted, released, killed, or the path ends in running
}

const contextSpec: MachineSpec = {
  name: 'platformContext',
  machine: platformContextMachine,
  events: [
    { type: 'SWITCH' },
    { type: 'RUNNING' },
    { type: 'TRAPPED_SYSCALL', sysno: SYS.getppid },
    { type: 'TRAPPED_FAULT', signo: 11 },
    { type: 'INTERRUPTED' },
    { type: 'FAULTED', reason: 'model' },
    { type: 'RELEASE' },
  ],
  actor: /^platformContext:/,
  never: {
    'idle|FAULTED': 'FAULTED is only sent by a switch after RUNNING (its wait failed, or its state word was corrupt)',
    'queued|FAULTED': 'FAULTED is only sent after RUNNING; a switch failing while queued (its stub dead) sends nothing and leaves the actor queued',
    'syscall|FAULTED': 'FAULTED is only sent by a switch, and a switch first sends SWITCH (syscall --SWITCH--> queued)',
    'fault|FAULTED': 'FAULTED is only sent by a switch, and a switch first sends SWITCH',
    'interrupted|FAULTED': 'FAULTED is only sent by a switch, and a switch first sends SWITCH',
  },
  options: () => ({ maxSysmsgThreads: 2, tracerThreads: 2 }),
  setup: async (w) => {
    w.as = await w.platform.newAddressSpace();
    await loadCode(w, w.as);
  },
  prelude: {
    label: 'platform.newContext()',
    consumes: 0,
    run: (w) => {
      w.ctx = w.platform.newContext();
      w.contexts.push(w.ctx);
    },
  },
  birth: { label: 'platform.newContext()', consumes: 0, run: () => undefined },
  edge(from, ev, path, i): Exec {
    const release: Exec = { label: 'ctx.release()', run: (w) => w.ctx!.release() };
    switch (`${from}|${ev}`) {
      case 'idle|SWITCH':
      case 'syscall|SWITCH':
      case 'fault|SWITCH':
      case 'interrupted|SWITCH': {
        const snip = snippetFor(path, i);
        const name = Object.entries(SNIP).find(([, v]) => v === snip)![0];
        return { label: `ctx.switchToApp(${name})`, run: (w) => void bg(w, w.ctx!.switchToApp(w.as!, regsAt(snip)), path.events.includes('FAULTED')) };
      }
      case 'queued|RUNNING':
        return { label: 'the switch queues the context', run: () => undefined };
      case 'running|TRAPPED_SYSCALL':
        return { label: 'the program makes a syscall', run: () => undefined };
      case 'running|TRAPPED_FAULT':
        return { label: 'the program stores to an unmapped page', run: () => undefined };
      case 'running|INTERRUPTED':
        return { label: 'ctx.interrupt()', run: (w) => w.ctx!.interrupt() };
      case 'running|FAULTED':
        return { label: 'SIGKILL the stub while the context runs', run: (w) => void process.kill(w.as!.pid, 'SIGKILL') };
      case 'faulted|FAULTED':
        return {
          label: 'switch the faulted context into a new stub, SIGKILL it',
          run: async (w) => {
            const as = await w.platform.newAddressSpace();
            await loadCode(w, as);
            // The machine ignores SWITCH and RUNNING in faulted; the runtime runs it all the same.
            const running = w.hub.next((e) => e.type === '@xstate.event' && e.actorRef === w.hub.target && e.event.type === 'RUNNING');
            bg(w, w.ctx!.switchToApp(as, regsAt(SNIP.loop)), true);
            await running;
            process.kill(as.pid, 'SIGKILL');
          },
        };
      case 'idle|RELEASE':
      case 'queued|RELEASE':
      case 'running|RELEASE':
      case 'syscall|RELEASE':
      case 'fault|RELEASE':
      case 'interrupted|RELEASE':
      case 'faulted|RELEASE':
        return release;
    }
    return { reason: 'no executor' };
  },
};

// ---------------------------------------------------------------------------------------------
// Running paths
// ---------------------------------------------------------------------------------------------

interface Report {
  name: string;
  model: Model;
  run: number;
  passed: number;
  retried: number;
  failed: Array<{ path: string; error: string }>;
  notDrivable: Array<{ path: string; reason: string }>;
  coveredStates: Set<string>;
  coveredEdges: Set<string>;
  ms: number;
}

const reports = new Map<string, Report>();

async function settle(ps: Array<Promise<unknown>>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.allSettled(ps), new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

/** One attempt at a path on its own platform; returns the error, if any. */
async function attempt(t: ExecutionContext, spec: MachineSpec, path: ModelPath, p: Plan, hub: Hub): Promise<string | undefined> {
  const platform = await createPlatform({ ...p.options, inspect: hub.inspect });
  t.teardown(() => platform.close());
  const w: World = { t, platform, hub, faults: [], bg: [], contexts: [] };
  interpose(w);
  let error: string | undefined;
  try {
    if (p.setup) await p.setup(w);
    hub.watch(spec.actor, path.edges);
    let n = 0;
    for (const step of p.steps) {
      n += step.consumes;
      // Registered before the action: it resolves in the inspection callback itself.
      const reached = hub.reached(n);
      const r = step.run(w);
      if (r) r.catch((e) => hub.fail(e));
      await reached;
    }
    // The state right now, before the runtime's next step.
    const snap = hub.target!.getSnapshot() as AnyMachineSnapshot;
    if (!isDeepStrictEqual(snap.value, path.final)) error = `the actor is in ${stateName(snap.value)}, the model predicts ${path.finalName}`;
    // A live actor is the one the platform's system holds under its id (a final one left it).
    else if (snap.status === 'active' && platform.actor.system.get(hub.target!.id) !== hub.target)
      error = `platform.actor.system.get('${hub.target!.id}') is not the actor under test`;
  } catch (e) {
    error = (e as Error).message;
  } finally {
    hub.freeze();
    for (const c of w.contexts) c.interrupt();
    await settle(w.bg, 2000);
    for (const c of w.contexts) c.release();
    await platform.close();
    await settle(w.bg, 5000);
    if (platform.liveStubs.length > 0) error ??= `stubs left alive after close: ${platform.liveStubs.join(' ')}`;
  }
  return error;
}

async function runMachine(t: ExecutionContext, spec: MachineSpec): Promise<Report> {
  const start = Date.now();
  const never = new Set(Object.keys(spec.never));
  const blocked = (edge: string) => {
    const [from, rest] = edge.split(' --');
    return never.has(`${from}|${rest.split('-->')[0]}`);
  };
  const model = buildModel(spec.machine, spec.events, spec.input, blocked);
  const report: Report = {
    name: spec.name,
    model,
    run: 0,
    passed: 0,
    retried: 0,
    failed: [],
    notDrivable: [],
    coveredStates: new Set(),
    coveredEdges: new Set(),
    ms: 0,
  };
  const hub = new Hub();
  for (const path of model.paths) {
    const label = path.id || '(empty path)';
    const p = plan(spec, path);
    if ('reason' in p) {
      report.notDrivable.push({ path: label, reason: p.reason });
      continue;
    }
    report.run++;
    let error: string | undefined;
    for (let k = 1; k <= p.attempts; k++) {
      error = await attempt(t, spec, path, p, hub);
      if (!error) break;
      if (k < p.attempts) {
        report.retried++;
        t.log(`${spec.name}: retrying [${label}] (attempt ${k}: ${error})`);
      }
    }
    const how = p.steps.map((s) => s.label).join('; ');
    if (error) {
      report.failed.push({ path: label, error });
      t.log(`${spec.name}: FAILED [${label}] via ${how}: ${error}`);
      continue;
    }
    t.log(`${spec.name}: ok [${label}] -> ${path.finalName} (${[...path.kinds].join('+')}) via ${how}`);
    report.passed++;
    report.coveredStates.add(model.initial);
    for (const x of hub.taken) {
      report.coveredEdges.add(x.name);
      report.coveredStates.add(x.from);
      report.coveredStates.add(x.to);
    }
  }
  report.ms = Date.now() - start;
  reports.set(spec.name, report);
  return report;
}

function describe(r: Report): string[] {
  const c = r.model.counts;
  const lines = [
    `${r.name}: ${c.total} paths generated (${c.shortest} shortest, ${c.simple} simple${c.simpleCapped ? ' (capped)' : ''}, ${c.edgeCover} edge cover; union), ` +
      `${r.run} run (${r.passed} passed, ${r.failed.length} failed, ${r.retried} retries), ${r.notDrivable.length} not drivable, ${r.ms} ms`,
    `  states covered ${r.coveredStates.size}/${r.model.states.length}: ${[...r.coveredStates].join(', ')}`,
    `  transitions covered ${r.coveredEdges.size}/${r.model.edges.length}`,
  ];
  const missing = r.model.edges.filter((e) => !r.coveredEdges.has(e.name));
  for (const e of missing) lines.push(`    not covered: ${e.name}`);
  const reasons = new Map<string, string[]>();
  for (const n of r.notDrivable) reasons.set(n.reason, [...(reasons.get(n.reason) ?? []), n.path]);
  for (const [reason, paths] of reasons) lines.push(`  not drivable (${paths.length}): ${reason}`, ...paths.map((p) => `    [${p}]`));
  for (const f of r.failed) lines.push(`  FAILED [${f.path}]: ${f.error}`);
  return lines;
}

/** Every edge and state not excluded by a stated reason must be covered for real. */
function assertCoverage(t: ExecutionContext, spec: MachineSpec, r: Report): void {
  for (const line of describe(r)) t.log(line);
  t.deepEqual(r.failed, [], 'every drivable path reaches the predicted state');
  const never = new Set(Object.keys(spec.never));
  const expectedEdges = r.model.edges.filter((e) => !never.has(`${e.from}|${e.event}`)).map((e) => e.name);
  t.deepEqual(expectedEdges.filter((e) => !r.coveredEdges.has(e)), [], 'every drivable transition is covered');
  const expectedStates = r.model.states.filter((s) => !spec.unreachable?.[s]);
  t.deepEqual(expectedStates.filter((s) => !r.coveredStates.has(s)), [], 'every reachable state is reached for real');
  t.true(r.run > 0);
}

test('subprocess: generated paths driven through the real runtime', async (t) => {
  t.timeout(60_000);
  const r = await runMachine(t, subprocessSpec);
  assertCoverage(t, subprocessSpec, r);
});

test('sysmsgThread: generated paths driven through the real runtime', async (t) => {
  t.timeout(60_000);
  const r = await runMachine(t, sysmsgSpec);
  assertCoverage(t, sysmsgSpec, r);
});

test('platformContext: generated paths driven through the real runtime', async (t) => {
  t.timeout(60_000);
  const r = await runMachine(t, contextSpec);
  assertCoverage(t, contextSpec, r);
});

test('summary: paths, coverage, nothing left running', async (t) => {
  const names = ['subprocess', 'sysmsgThread', 'platformContext'];
  t.deepEqual([...reports.keys()].sort(), [...names].sort(), 'the three machines ran');
  let generated = 0;
  let run = 0;
  let notDrivable = 0;
  for (const n of names) {
    const r = reports.get(n)!;
    generated += r.model.counts.total;
    run += r.run;
    notDrivable += r.notDrivable.length;
    t.log(
      `${n}: paths ${r.model.counts.total} generated, ${r.run} run, ${r.notDrivable.length} not drivable; ` +
        `states ${r.coveredStates.size}/${r.model.states.length}; transitions ${r.coveredEdges.size}/${r.model.edges.length}`,
    );
  }
  t.log(`total: ${generated} paths generated, ${run} run against the real runtime, ${notDrivable} not drivable`);
  t.is(generated, run + notDrivable);
  // Nothing of ours is left: no zombie or stopped child, no stub.
  t.true(await until(() => leakedChildren().length === 0 && childPids().length === 0, 5000), `left: ${JSON.stringify(leakedChildren())} ${childPids().join(' ')}`);
});
