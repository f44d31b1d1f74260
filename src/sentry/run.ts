import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { readdirSync, readFileSync, realpathSync } from 'node:fs';
import { basename, isAbsolute, join } from 'node:path';
import type { Platform } from '../platform.js';
import type { AddressSpace } from '../addressSpace.js';
import type { PlatformContext } from '../actors/platformContext.js';
import { SYS } from '../abi/syscalls.js';
import { REGISTER_NAMES, REG } from '../abi/registers.js';
import { Errors, SystrapError, toSystrapError } from '../errors.js';
import { programFilter } from './filter.js';
import { loadProgram } from './exec/loader.js';
import { parseElf } from './exec/elf.js';
import type { SentryMail, SentryRequest, SentryResult, SentryTask, TraceOptions } from './protocol.js';

/** Options of {@link runProgram}. */
export interface RunProgramOptions {
  /** The executable (absolute, or relative to `cwd`). */
  path: string;
  argv: string[];
  env: string[];
  /** The program's working directory. Default: Node's. */
  cwd?: string;
  /** Node's fds that become the program's 0, 1, 2. Default [0, 1, 2]. */
  stdio?: [number, number, number];
  /** Tracing, injection and policy (see `systrap run --help`). */
  trace?: Partial<TraceOptions>;
  /** Syscalls the kernel refuses, with their errno (`--deny`). */
  deny?: Map<number, number>;
}

/** A running program: its pid (the stub's), a way to signal it, and its end. */
export interface ProgramHandle {
  readonly pid: number;
  /** Sends a signal to the program (as `kill` would), e.g. the CLI forwarding SIGINT. */
  kill(signo: number): void;
  /** How it ended. */
  readonly done: Promise<SentryResult>;
}

/** Registers at exec: only rip and rsp matter; flags with IF set, the user code/stack selectors. */
function entryRegs(entry: bigint, sp: bigint): BigUint64Array {
  const r = new BigUint64Array(REGISTER_NAMES.length);
  r[REG.rip] = entry;
  r[REG.rsp] = sp;
  r[REG.eflags] = 0x202n;
  r[REG.cs] = 0x33n;
  r[REG.ss] = 0x2bn;
  r[REG.orig_rax] = BigInt.asUintN(64, -1n);
  return r;
}

/**
 * Runs a host program under the sentry: a fresh stub with the program's seccomp filter, its
 * stdio and cwd, the ELF image loaded (interpreter too), and a sentry worker that handles every
 * trap until the program ends. What is not traced, injected or emulated never traps.
 *
 * @example
 * ```ts
 * const p = await runProgram(platform, { path: '/bin/ls', argv: ['ls', '-l', '/'], env: [] });
 * const end = await p.done; // { kind: 'exited', status: 0 }
 * ```
 */
export async function runProgram(platform: Platform, opts: RunProgramOptions): Promise<ProgramHandle> {
  const rt = platform._runtime;
  const trace: TraceOptions = { trace: [], outFd: 2, summary: false, inject: [], ...opts.trace };
  const trap = new Set<number>([...trace.trace, ...trace.inject.flatMap((i) => i.syscalls)]);
  if (trace.summary) for (let n = 0; n < 460; n++) trap.add(n);
  const seccomp = programFilter({ region: rt.region, trap, trapAll: trace.policy !== undefined, deny: opts.deny ?? new Map(), nodePid: process.pid });
  const as = await platform.newAddressSpace({ seccomp });
  const contexts = new Map<number, PlatformContext>();
  const cleanup = async () => {
    await as.release().catch(() => undefined);
    for (const c of contexts.values()) c.release();
  };
  try {
    await setupProcess(as, opts.stdio ?? [0, 1, 2], opts.cwd ?? process.cwd());
    const path = isAbsolute(opts.path) ? opts.path : join(opts.cwd ?? process.cwd(), opts.path);
    const img = await loadProgram(as, { path, argv: opts.argv, envp: opts.env, execfn: opts.path });
    await nameStub(as, path);
    const ctx = platform.newContext();
    const main = await ctx._adopt(as);
    contexts.set(main.id, ctx);
    const sp = as._subprocess;
    await sp.ensureThread();
    const { port1, port2 } = new MessageChannel();
    const mail = new SharedArrayBuffer(4);
    const task: SentryTask = {
      fd: rt.memoryFile.fd,
      maxSize: rt.memoryFile._file.maxSize,
      queue: sp.queue!.range,
      pid: as.pid,
      nodePid: process.pid,
      region: { start: rt.region.start, end: rt.region.end, gadgetAddr: rt.region.gadgetAddr },
      maxSysmsgThreads: rt.maxSysmsgThreads,
      main: { id: main.id, slot: main.slot, regs: entryRegs(img.entry, img.sp) },
      brkStart: img.brkStart,
      exe: canonical(path),
      mail,
      port: port2,
      trace,
      spinNs: availableParallelism() > 1 ? 300_000 : 0,
    };
    const link = new SentryLink(platform, as, port1, mail, contexts);
    link.syncThreads();
    const done = rt
      .runners()
      .runSentry(task)
      .catch((e: unknown): SentryResult => {
        const err = toSystrapError(e);
        return { kind: 'error', code: err.code, message: err.message };
      })
      .finally(async () => {
        link.close();
        await cleanup();
      });
    return { pid: as.pid, kill: (signo) => link.send({ type: 'signal', signo }), done };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

/** A path as /proc/PID/exe shows it (symlinks resolved), or as given if that fails. */
function canonical(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/** The program's stdio (Node's fds, shared as fork would share them) and working directory. */
async function setupProcess(as: AddressSpace, stdio: [number, number, number], cwd: string): Promise<void> {
  const got = await as.importFds(stdio);
  for (let i = 0; i < 3; i++) {
    if (got[i] === i) continue;
    const r = await as.syscall(SYS.dup2, BigInt(got[i]), BigInt(i));
    if (r < 0n) throw Errors.Syscall('dup2', Number(-r), as.pid);
  }
  for (const fd of got) if (fd > 2) await as.syscall(SYS.close, BigInt(fd));
  // Node (libuv) puts its pipes and ttys in non-blocking mode; the description is shared, and a
  // program expects blocking stdio, as a shell gives it (`yes | head` must end in SIGPIPE, not
  // EAGAIN). Node's own writes to these fds then block, which the CLI does not mind.
  const O_NONBLOCK = 0o4000n;
  for (let fd = 0n; fd < 3n; fd++) {
    const fl = await as.syscall(SYS.fcntl, fd, 3n /* F_GETFL */);
    if (fl >= 0n && (fl & O_NONBLOCK) !== 0n) await as.syscall(SYS.fcntl, fd, 4n /* F_SETFL */, fl & ~O_NONBLOCK);
  }
  const sc = as._subprocess.scratch();
  const bytes = Buffer.from(cwd + '\0');
  if (bytes.length > sc.bytes.length) throw Errors.InvalidArg('cwd is too long');
  sc.bytes.set(bytes);
  const r = await as.syscall(SYS.chdir, sc.addr);
  if (r < 0n) throw Errors.Syscall('chdir', Number(-r), as.pid);
}

/**
 * Names the stub after the program (what /proc/PID/comm and ps show: the kernel would take the
 * executable's basename, cut to 15 bytes). Best effort: a name is cosmetic.
 */
async function nameStub(as: AddressSpace, path: string): Promise<void> {
  const sc = as._subprocess.scratch();
  const name = Buffer.from(basename(path)).subarray(0, 15);
  sc.bytes.fill(0, 0, 16);
  sc.bytes.set(name);
  // Sysmsg threads cloned from now on take this name too (an execve renames only the stub's
  // main thread: /proc/PID/comm of another process cannot be written).
  await as.syscall(SYS.prctl, 15n /* PR_SET_NAME */, sc.addr).catch(() => undefined);
}

/**
 * The main thread's side of a sentry worker: answers its requests (contexts for new threads,
 * sysmsg threads, execve images), forwards signals and the sysmsg threads' host tids, and
 * relays lifecycle steps to the context actors.
 */
class SentryLink {
  readonly #mail: Int32Array;
  #tids = '';
  readonly #timer: NodeJS.Timeout;

  constructor(
    readonly platform: Platform,
    readonly as: AddressSpace,
    readonly port: MessagePort,
    mail: SharedArrayBuffer,
    readonly contexts: Map<number, PlatformContext>,
  ) {
    this.#mail = new Int32Array(mail);
    port.on('message', (m: SentryRequest) => void this.#onRequest(m));
    // New sysmsg threads appear as the stub's kicks create them: tell the sentry their tids.
    this.#timer = setInterval(() => this.syncThreads(), 20);
  }

  send(m: SentryMail): void {
    this.port.postMessage(m);
    Atomics.add(this.#mail, 0, 1);
    Atomics.notify(this.#mail, 0);
    // The worker may sleep on the stub's doorbell: ring it.
    this.as._subprocess.queue?.ring();
  }

  syncThreads(): void {
    const tids: Array<[number, number]> = [...this.as._subprocess.sysmsgThreads].filter(([, t]) => t.tid > 0).map(([slot, t]) => [slot, t.tid]);
    const key = JSON.stringify(tids);
    if (key === this.#tids) return;
    this.#tids = key;
    this.send({ type: 'threads', tids });
  }

  close(): void {
    clearInterval(this.#timer);
    this.port.close();
  }

  async #onRequest(m: SentryRequest): Promise<void> {
    try {
      switch (m.type) {
        case 'kick':
          this.as._subprocess.kick();
          return;
        case 'newContext': {
          const ctx = this.platform.newContext();
          const { id, slot } = await ctx._adopt(this.as);
          this.contexts.set(id, ctx);
          this.send({ type: 'context', req: m.req, id, slot });
          return;
        }
        case 'contextEvent': {
          const ctx = this.contexts.get(m.id);
          if (ctx && m.event === 'syscall') {
            // One trap and the switch back, as the actor would have seen them on the slow path.
            ctx._event('TRAPPED_SYSCALL', m.sysno);
            ctx._event('SWITCH');
            ctx._event('RUNNING');
          }
          return;
        }
        case 'contextExit': {
          const ctx = this.contexts.get(m.id);
          this.contexts.delete(m.id);
          ctx?.release();
          return;
        }
        case 'execCheck':
          this.send({ type: 'execChecked', req: m.req, errno: this.#checkExec(m.path) });
          return;
        case 'execLoad':
          this.send(await this.#exec(m));
          return;
      }
    } catch (e) {
      if ('req' in m) this.send({ type: 'failed', req: m.req, message: String((e as Error).message ?? e) });
    }
  }

  /** The program's path as the kernel would open it (relative to the program's cwd). */
  #resolve(path: string): string {
    return isAbsolute(path) ? path : join(`/proc/${this.as.pid}/cwd`, path);
  }

  /** What execve would fail with before the point of no return (0: it can go on). */
  #checkExec(path: string): number {
    try {
      parseElf(readFileSync(this.#resolve(path)));
      return 0;
    } catch (e) {
      const errno = (e as SystrapError).errno ?? (e as NodeJS.ErrnoException).errno;
      return typeof errno === 'number' ? Math.abs(errno) : 8; // ENOEXEC
    }
  }

  async #exec(m: Extract<SentryRequest, { type: 'execLoad' }>): Promise<SentryMail> {
    const sp = this.as._subprocess;
    await sp.unmapApplication();
    await this.#closeOnExec();
    try {
      const exe = this.#resolve(m.path);
      const img = await loadProgram(this.as, { path: exe, argv: m.argv, envp: m.envp, execfn: m.path });
      // The path the kernel would show as /proc/self/exe: absolute, through the program's cwd.
      const real = canonical(exe);
      await nameStub(this.as, exe);
      return { type: 'execLoaded', req: m.req, errno: 0, entry: img.entry, sp: img.sp, brkStart: img.brkStart, exe: real };
    } catch (e) {
      const errno = (e as SystrapError).errno;
      return { type: 'execLoaded', req: m.req, errno: typeof errno === 'number' ? Math.abs(errno) : 8 };
    }
  }

  /** Closes the program's close-on-exec fds (the flags are in /proc/PID/fdinfo). */
  async #closeOnExec(): Promise<void> {
    const dir = `/proc/${this.as.pid}/fdinfo`;
    for (const name of readdirSync(dir)) {
      const fd = Number(name);
      if (fd === 1000 || fd === 1001) continue;
      try {
        const flags = /flags:\s*([0-7]+)/.exec(readFileSync(join(dir, name), 'utf8'));
        if (flags && (parseInt(flags[1], 8) & 0o2000000) !== 0) await this.as.syscall(SYS.close, BigInt(fd));
      } catch {
        // closed meanwhile
      }
    }
  }
}

export { SystrapError };
