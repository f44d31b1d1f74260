import { MessageChannel } from 'node:worker_threads';
import { isAbsolute, join } from 'node:path';
import type { Platform } from '../platform.js';
import { native } from '../native.js';
import type { AdoptedContext } from '../platformPort.js';
import { REGISTER_NAMES, REG } from '../abi/registers.js';
import { SystrapError, toSystrapError } from '../errors.js';
import { patchableCalls, programFilter } from './filter.js';
import { loadProgram } from './exec/loader.js';
import { canonical, namespacePid, nameStub, setupProcess } from './processSetup.js';
import { commOf } from './exec/comm.js';
import { findProgram } from './exec/findProgram.js';
import { LoaderErrors } from './exec/loaderErrors.js';
import type { InjectWhen } from './strace/inject.js';
import { SentryLink } from './sentryLink.js';
import { forkSeams } from '../actors/stubCreation.js';
import type { SentryResult, SentryTask, TraceOptions } from './protocol.js';

/** Every syscall number the filter may trap (`-c` counts them all). */
const MAX_SYSCALL = 460;
/** Registers at exec: flags with IF set, the user code and stack selectors. */
const INITIAL_EFLAGS = 0x202n;
const USER_CS = 0x33n;
const USER_SS = 0x2bn;

/** Options of {@link runProgram}. */
export interface RunProgramOptions {
  /**
   * The executable, an ELF program or a '#!' script: a path (absolute, or relative to `cwd`), or
   * a bare name found on Node's PATH as execvp finds it (`'ls'` is `/usr/bin/ls`). It is also
   * the name execve is given: AT_EXECFN, and a script's name in its interpreter's argv.
   */
  path: string;
  argv: string[];
  env: string[];
  /** The program's working directory. Default: Node's. */
  cwd?: string;
  /** Node's fds that become the program's 0, 1, 2. Default [0, 1, 2]. */
  stdio?: [number, number, number];
  /**
   * Node's fds the program inherits at the same numbers besides its stdio (3 to 999), as a
   * process Node's parent started would (a shell's `3<file`, `<(…)`'s /dev/fd/63). Default none.
   * `systrap run` passes what Node inherited (see inheritedFds).
   */
  inherit?: readonly number[];
  /**
   * Tracing, injection and policy (see `systrap run --help`). The syscall lists take what the
   * parsers give: `trace: parseTraceSet('%file')` (a Set), `inject: [parseInject('openat:error=EACCES')]`.
   */
  trace?: RunTraceOptions;
  /**
   * Syscalls the kernel refuses (`--deny`): a Map of syscall to errno, or what parseDeny gives
   * (one, or a list).
   */
  deny?: ReadonlyMap<number, number> | DenySpec | Iterable<DenySpec>;
  /**
   * Syscall patching (`--no-patch` turns it off): a call site the program traps from is
   * rewritten to enter the stub with no signal next time (see the README). Default true.
   */
  patch?: boolean;
}

/** One `--deny`: a syscall and the errno the kernel answers (what parseDeny returns). */
export interface DenySpec {
  sysno: number;
  errno: number;
}

/**
 * {@link TraceOptions} as runProgram takes them: every field optional, syscall lists as any
 * iterable (a Set from parseTraceSet, an array).
 *
 * @example
 * ```ts
 * const t: RunTraceOptions = { trace: parseTraceSet('%file'), outFd: 2, style: { timestamps: 2 } };
 * ```
 */
export interface RunTraceOptions extends Partial<Omit<TraceOptions, 'trace' | 'inject' | 'counted'>> {
  trace?: Iterable<number>;
  inject?: Iterable<{ syscalls: Iterable<number>; error?: number; retval?: bigint; when?: InjectWhen }>;
  counted?: Iterable<number>;
}

/** The options as the sentry worker takes them (plain arrays: they cross a MessagePort). */
function traceOptions(t: RunTraceOptions = {}): TraceOptions {
  const { trace, inject, counted, ...rest } = t;
  return {
    outFd: 2,
    summary: false,
    ...rest,
    trace: [...(trace ?? [])],
    inject: [...(inject ?? [])].map((i) => ({ ...i, syscalls: [...i.syscalls] })),
    ...(counted ? { counted: [...counted] } : {}),
  };
}

/** `deny` as a Map (see RunProgramOptions.deny). */
function denyMap(d: RunProgramOptions['deny']): Map<number, number> {
  if (d === undefined) return new Map();
  if (d instanceof Map) return new Map(d);
  if ('sysno' in d) return new Map([[d.sysno, d.errno]]);
  return new Map([...(d as Iterable<DenySpec>)].map((x) => [x.sysno, x.errno]));
}

/** A running program: its pid (the stub's), a way to signal it, and its end. */
export interface ProgramHandle {
  /** The stub's pid as Node sees it. */
  readonly pid: number;
  /** Whether the program runs in a sandbox of its own (see `platform.sandbox`). */
  readonly sandboxed: boolean;
  /** Sends a signal to the program (as `kill` would), e.g. the CLI forwarding SIGINT. */
  kill(signo: number): void;
  /**
   * Calls `fn` when the program's first process stops (a stop signal: `stopped` true, with the
   * signal) or continues. The CLI stops itself then, as the program's job at a shell would.
   */
  onStop(fn: (stopped: boolean, signo: number) => void): void;
  /** How it ended. */
  readonly done: Promise<SentryResult>;
}

/** Registers at exec: only rip and rsp matter; flags with IF set, the user code/stack selectors. */
function entryRegs(entry: bigint, sp: bigint): BigUint64Array {
  const r = new BigUint64Array(REGISTER_NAMES.length);
  r[REG.rip] = entry;
  r[REG.rsp] = sp;
  r[REG.eflags] = INITIAL_EFLAGS;
  r[REG.cs] = USER_CS;
  r[REG.ss] = USER_SS;
  r[REG.orig_rax] = BigInt.asUintN(64, -1n);
  return r;
}

/**
 * What traps (the program's seccomp filter, for a sandboxed stub or not) and which of those
 * calls' sites are patched (none with `patch: false`). Sets `trace.denied`: denied calls that
 * trap anyway are refused by the sentry, and so traced (see programFilter).
 */
function programTraps(region: Platform['port']['region'], opts: RunProgramOptions, trace: TraceOptions, deny: ReadonlyMap<number, number>) {
  const trap = new Set<number>([...trace.trace, ...trace.inject.flatMap((i) => i.syscalls)]);
  if (trace.summary && trace.counted) for (const n of trace.counted) trap.add(n);
  else if (trace.summary) for (let n = 0; n < MAX_SYSCALL; n++) trap.add(n);
  const trapAll = trace.policy !== undefined;
  trace.denied = [...deny].filter(([nr]) => trapAll || trap.has(nr));
  const terminalStdin = native.isTerminal((opts.stdio ?? [0, 1, 2])[0]);
  return {
    filter: (sandboxed: boolean) => programFilter({ region, trap, trapAll, deny, nodePid: sandboxed ? undefined : process.pid, terminalStdin }),
    usertrapCalls: opts.patch === false ? undefined : patchableCalls({ trap, trapAll, deny }),
  };
}

/**
 * Runs a host program under the sentry: a fresh stub with the program's seccomp filter, its
 * stdio and cwd, the ELF image loaded (interpreter too; a '#!' script's interpreter for a script), and a sentry worker that handles every
 * trap until the program ends. What is not traced, injected or emulated never traps.
 *
 * @example
 * ```ts
 * const p = await runProgram(platform, { path: '/bin/ls', argv: ['ls', '-l', '/'], env: [] });
 * const end = await p.done; // { kind: 'exited', status: 0 }
 * ```
 */
export async function runProgram(platform: Platform, opts: RunProgramOptions): Promise<ProgramHandle> {
  const port = platform.port;
  const trace = traceOptions(opts.trace);
  const deny = denyMap(opts.deny);
  // A bare name is looked up on PATH, as execvp (and `systrap run`) do.
  let given = opts.path;
  if (!given.includes('/')) {
    const found = findProgram(given).path;
    if (found === undefined) throw LoaderErrors.NoFile(given);
    given = found;
  }
  const { filter, usertrapCalls } = programTraps(port.region, opts, trace, deny);
  const as = await port.newAddressSpace({ seccomp: filter, sandbox: true });
  const sandboxed = port.sandboxed(as);
  const stub = port.stub(as);
  const contexts = new Map<number, AdoptedContext>();
  let link: SentryLink | undefined;
  const cleanup = async () => {
    if (link) return link.releaseAll();
    await as.release().catch(() => undefined);
    for (const c of contexts.values()) c.release();
  };
  try {
    await setupProcess(as, stub, opts.stdio ?? [0, 1, 2], opts.cwd ?? process.cwd(), opts.inherit);
    const path = isAbsolute(given) ? given : join(opts.cwd ?? process.cwd(), given);
    const loadStart = process.hrtime.bigint();
    const img = await loadProgram(as, { path, argv: opts.argv, envp: opts.env, execfn: given, usertrap: usertrapCalls !== undefined });
    const loadNs = Number(process.hrtime.bigint() - loadStart);
    // Named after the file given (a script's own name), as the kernel does; see SentryLink.
    await nameStub(as, stub, path);
    const main = await port.adoptContext(as);
    contexts.set(main.id, main);
    await stub.ensureThread();
    const { port1, port2 } = new MessageChannel();
    const mail = new SharedArrayBuffer(4);
    const task: SentryTask = {
      memory: stub.memory,
      queue: stub.queueRange(),
      ...(stub.rulesRange() ? { rules: stub.rulesRange() } : {}),
      ...(stub.syscallMsg() ? { syscallMsg: stub.syscallMsg() } : {}),
      // Scenario faults at exec apply where the main thread loads: every exec goes there then.
      localExec: !port.processFaultsArmed(),
      localFork: !port.processFaultsArmed() && !forkSeams.childAnswered,
      pid: as.pid,
      nsPid: sandboxed ? namespacePid(as.pid) : as.pid,
      nodePid: process.pid,
      sandboxed,
      region: { start: port.region.start, end: port.region.end, gadgetAddr: port.region.gadgetAddr, sighandlerAddr: port.region.sighandlerAddr, restorerAddr: port.region.restorerAddr, syshandlerAddr: port.region.syshandlerAddr },
      maxSysmsgThreads: port.maxSysmsgThreads,
      main: { id: main.id, slot: main.slot, regs: entryRegs(img.entry, img.sp) },
      brkStart: img.brkStart,
      // /proc/self/exe: the ELF file loaded (a script's interpreter, relative to the program's cwd).
      exe: canonical(isAbsolute(img.path) ? img.path : join(opts.cwd ?? process.cwd(), img.path)),
      ...(usertrapCalls && img.usertrapTable !== undefined ? { usertrap: { table: img.usertrapTable, calls: usertrapCalls, syshandler: port.region.syshandlerAddr } } : {}),
      loadNs,
      comm: commOf(given),
      mail,
      port: port2,
      trace,
      mirror: port.inspecting,
    };
    const nsPid = task.nsPid;
    const l = (link = new SentryLink(port, { pid: nsPid, as, contexts, usertrapCalls }, port1, mail));
    l.syncThreads();
    const done = port
      .runWorker<SentryResult>('sentry', task, [port2])
      .catch((e: unknown): SentryResult => {
        const err = toSystrapError(e);
        return { kind: 'error', code: err.code, message: err.message };
      })
      .finally(async () => {
        l.close();
        await cleanup();
      });
    return { pid: as.pid, sandboxed, kill: (signo) => l.send({ type: 'signal', signo }), onStop: (fn) => void (l.onStop = fn), done };
  } catch (e) {
    await cleanup();
    throw e;
  }
}


export { SystrapError };
