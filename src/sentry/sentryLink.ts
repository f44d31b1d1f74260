import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { readdirSync, readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { AddressSpace } from '../addressSpace.js';
import type { AdoptedContext, PlatformPort, StubPort } from '../platformPort.js';
import type { TaskEvent } from '../machines/task.js';
import { SYS } from '../abi/syscalls.js';
import { ERRNO, O_CLOEXEC } from '../abi/linux.js';
import { abi } from '../abi/stub.js';
import type { SystrapError } from '../errors.js';
import { loadProgram } from './exec/loader.js';
import { checkExecutable } from './exec/check.js';
import { canonical, nameStub } from './processSetup.js';
import type { SentryMail, SentryRequest } from './protocol.js';

/** How often the main thread tells the sentry the tids of sysmsg threads made meanwhile. */
const THREAD_SYNC_MS = 20;

/**
 * The main thread's side of a sentry worker (the worker's is kernel/mailbox.ts): answers its
 * requests (contexts for new threads, sysmsg threads, execve images), forwards signals and the
 * sysmsg threads' host tids, and relays lifecycle steps to the context actors and, when the
 * platform is inspected, to one task actor per program thread.
 *
 * @example
 * ```ts
 * const link = new SentryLink(platform.port, as, port1, mail, contexts);
 * link.send({ type: 'signal', signo: SIG.SIGINT });
 * ```
 */
export class SentryLink {
  readonly #mail: Int32Array;
  readonly #stub: StubPort;
  #tids = '';
  readonly #timer: NodeJS.Timeout;
  /** Mirror actors of the program's threads, by tid (inspection only). */
  readonly #tasks = new Map<number, { send(event: TaskEvent): void }>();
  readonly #program: number;

  constructor(
    readonly port: PlatformPort,
    readonly as: AddressSpace,
    readonly messages: MessagePort,
    mail: SharedArrayBuffer,
    readonly contexts: Map<number, AdoptedContext>,
  ) {
    this.#mail = new Int32Array(mail);
    this.#stub = port.stub(as);
    this.#program = port.nextId('program');
    messages.on('message', (m: SentryRequest) => void this.#onRequest(m));
    // New sysmsg threads appear as the stub's kicks create them: tell the sentry their tids.
    this.#timer = setInterval(() => this.syncThreads(), THREAD_SYNC_MS);
  }

  send(m: SentryMail): void {
    this.messages.postMessage(m);
    Atomics.add(this.#mail, 0, 1);
    Atomics.notify(this.#mail, 0);
    // The worker may sleep on the stub's doorbell: ring it.
    this.#stub.ringDoorbell();
  }

  syncThreads(): void {
    const tids = this.#stub.sysmsgThreadTids();
    const key = JSON.stringify(tids);
    if (key === this.#tids) return;
    this.#tids = key;
    this.send({ type: 'threads', tids });
  }

  /**
   * Ends the link once the worker's task is over. Its last messages (the final task events,
   * context exits) may still wait on the port: piscina's result travels on another channel and
   * can come first. They are taken now, before the port closes.
   */
  close(): void {
    clearInterval(this.#timer);
    for (let m = receiveMessageOnPort(this.messages); m; m = receiveMessageOnPort(this.messages)) {
      const r = m.message as SentryRequest;
      if (r.type === 'taskEvents' || r.type === 'contextExit' || r.type === 'contextEvent') void this.#onRequest(r);
    }
    this.messages.close();
  }

  async #onRequest(m: SentryRequest): Promise<void> {
    try {
      switch (m.type) {
        case 'needThread':
          return this.#stub.kick();
        case 'newContext': {
          const ctx = await this.port.adoptContext(this.as);
          this.contexts.set(ctx.id, ctx);
          return this.send({ type: 'context', req: m.req, id: ctx.id, slot: ctx.slot });
        }
        case 'contextEvent':
          return this.#contextEvent(m.id, m.sysno);
        case 'contextExit':
          this.contexts.get(m.id)?.release();
          this.contexts.delete(m.id);
          return;
        case 'taskEvents':
          return this.#taskEvents(m.events);
        case 'execCheck':
          return this.send({ type: 'execChecked', req: m.req, errno: await checkExecutable(m.path, (p) => this.#resolve(p)) });
        case 'execLoad':
          return this.send(await this.#exec(m));
      }
    } catch (e) {
      if ('req' in m) this.send({ type: 'failed', req: m.req, message: String((e as Error).message ?? e) });
    }
  }

  /** One trap and the switch back, as the context's actor would have seen them on the slow path. */
  #contextEvent(id: number, sysno: number): void {
    const ctx = this.contexts.get(id);
    if (!ctx) return;
    ctx.report('TRAPPED_SYSCALL', sysno);
    ctx.report('SWITCH');
    ctx.report('RUNNING');
  }

  #taskEvents(events: Array<[number, TaskEvent['type']]>): void {
    for (const [tid, type] of events) {
      let actor = this.#tasks.get(tid);
      if (!actor) {
        actor = this.port.mirrorTask(`task:${this.#program}/${tid}`);
        this.#tasks.set(tid, actor);
      }
      actor.send({ type });
    }
  }

  /** The program's path as the kernel would open it (relative to the program's cwd). */
  #resolve(path: string): string {
    return isAbsolute(path) ? path : join(`/proc/${this.as.pid}/cwd`, path);
  }

  async #exec(m: Extract<SentryRequest, { type: 'execLoad' }>): Promise<SentryMail> {
    await this.#stub.unmapApplication();
    await this.#closeOnExec();
    try {
      const exe = this.#resolve(m.path);
      // The stub opens the path as the program gave it, from its own cwd: Node's /proc/PID/cwd
      // form names a pid the stub cannot see from inside a sandbox's pid namespace.
      const img = await loadProgram(this.as, { path: m.file ?? m.path, argv: m.argv, envp: m.envp, execfn: m.path });
      // The kernel names the process after the file execve was given (a script's name, not its
      // interpreter's), but /proc/self/exe is the ELF file mapped: for a script, the interpreter,
      // whose path (maybe relative) was opened from the program's cwd.
      await nameStub(this.as, this.#stub, exe);
      const loaded = canonical(this.#resolve(img.path));
      return { type: 'execLoaded', req: m.req, errno: 0, entry: img.entry, sp: img.sp, brkStart: img.brkStart, exe: loaded };
    } catch (e) {
      const errno = (e as SystrapError).errno;
      return { type: 'execLoaded', req: m.req, errno: typeof errno === 'number' ? Math.abs(errno) : ERRNO.ENOEXEC };
    }
  }

  /** Closes the program's close-on-exec fds (the flags are in /proc/PID/fdinfo, in octal). */
  async #closeOnExec(): Promise<void> {
    const dir = `/proc/${this.as.pid}/fdinfo`;
    for (const name of readdirSync(dir)) {
      const fd = Number(name);
      if (fd === abi.STUB_MEMFD || fd === abi.STUB_FDCHAN) continue;
      try {
        const flags = /flags:\s*([0-7]+)/.exec(readFileSync(join(dir, name), 'utf8'));
        if (flags && (BigInt(parseInt(flags[1], 8)) & O_CLOEXEC) !== 0n) await this.as.syscall(SYS.close, BigInt(fd));
      } catch {
        // closed meanwhile
      }
    }
  }
}
