import { SIG } from '../../abi/linux.js';
import { ContextState, THREAD_CONTEXT } from '../../abi/sysmsg.js';
import type { LoadedImage } from '../syscalls/context.js';
import type { Task } from './task.js';
import type { ExecLoadResult } from '../protocol.js';

const STATE = THREAD_CONTEXT.state / 4;
/** How long execve waits for the other threads to leave the stub before it gives up. */
const STOP_OTHERS_MS = 5000;

/** What an execve in progress needs of the kernel. */
export interface ExecHost {
  liveTasks(): Iterable<Task>;
  /** Interrupts a task in the stub (once). */
  interrupt(t: Task): void;
  /** Removes a task (gone with the old image). */
  remove(t: Task): void;
  /** Ends the task's wait with `ret` as the result of its execve (a failure before the point of no return). */
  wake(t: Task, ret: bigint): void;
  /** Lets the task run again with the registers it has now (the new image's). */
  resumeExeced(t: Task): void;
  killGroup(signo: number): never;
  /**
   * The checks (the sentry's own or the main thread's, see localExec.ts), answered later through
   * `done`; with `load` (a process with no other thread: nothing to stop in between) the load
   * follows at once, its answer with them.
   */
  check(path: string, load: ExecArgs | undefined, done: (errno: number, loaded?: LoadedImage | number) => void): void;
  /** The load of the new image (the old one is gone; see localExec.ts), answered later. */
  load(args: ExecArgs, done: (img: LoadedImage | number) => void): void;
}

/**
 * The main thread's answer to a load as the kernel takes it: the new image, or the errno.
 *
 * @example
 * ```ts
 * done(loadedImage(reply));
 * ```
 */
export function loadedImage(r: ExecLoadResult): LoadedImage | number {
  if (r.errno !== 0) return r.errno;
  return { entry: r.entry!, sp: r.sp!, brkStart: r.brkStart!, exe: r.exe!, ...(r.usertrapTable !== undefined ? { usertrapTable: r.usertrapTable } : {}) };
}

/** What execve was called with (read from the old image). */
export interface ExecArgs {
  path: string;
  argv: string[];
  envp: string[];
  /** The file to open instead of `path`, which stays the name (the program's own /proc/self/exe). */
  file?: string;
}

/**
 * One execve, from its checks to the new image (Linux's do_execveat: checks, de_thread, the
 * point of no return, the loader): the task waits parked (blocked.exec, which no signal
 * interrupts) while the file is checked; then the other threads are interrupted and dropped
 * once out of the stub (checked each turn, see {@link progress}); then the old image is
 * unmapped and the new one loaded. The checks and the load are the sentry's own, through the
 * stub's syscall thread, when it can make them (see localExec.ts; a few hundred µs in which its
 * thread serves nothing else), else the main thread's (the sentry goes on meanwhile). A failed
 * check is the call's error; a failed load kills the program (the old image is gone).
 *
 * @example
 * ```ts
 * kernel.execing = new ExecInProgress(kernel, t, args, (img) => applyImage(kernel, t, img));
 * // each turn: kernel.execing.progress();
 * ```
 */
export class ExecInProgress {
  #phase: 'checking' | 'stopping' | 'loading' | 'done' = 'checking';
  #deadline = 0;

  constructor(
    private readonly k: ExecHost,
    readonly task: Task,
    private readonly args: ExecArgs,
    private readonly onLoaded: (img: LoadedImage) => void,
  ) {
    // Alone in its process: nothing happens between the check and the load (no thread to
    // stop), so the main thread does both in one request.
    const alone = [...k.liveTasks()].every((o) => o === task);
    k.check(args.file ?? args.path, alone ? args : undefined, (errno, loaded) => this.#checked(errno, loaded));
  }

  get done(): boolean {
    return this.#phase === 'done';
  }

  /** True once the point of no return is passed: the other threads are being dropped. */
  get pastChecks(): boolean {
    return this.#phase !== 'checking';
  }

  #checked(errno: number, loaded: LoadedImage | number | undefined): void {
    if (errno !== 0) {
      this.#phase = 'done';
      this.k.wake(this.task, -BigInt(errno));
      return;
    }
    if (loaded !== undefined) return this.#loaded(loaded);
    this.#phase = 'stopping';
    this.#deadline = performance.now() + STOP_OTHERS_MS;
    this.progress();
  }

  /** Another turn: while stopping, interrupts the others and drops those out of the stub. */
  progress(): void {
    if (this.#phase !== 'stopping') return;
    let left = 0;
    for (const t of [...this.k.liveTasks()]) {
      if (t === this.task) continue;
      if (t.inStub && Atomics.load(t.u32, STATE) === ContextState.None) {
        this.k.interrupt(t);
        left++;
      } else this.k.remove(t);
    }
    if (left > 0) {
      if (performance.now() > this.#deadline) this.k.killGroup(SIG.SIGKILL);
      return;
    }
    this.#phase = 'loading';
    this.k.load(this.args, (img) => this.#loaded(img));
  }

  #loaded(img: LoadedImage | number): void {
    this.#phase = 'done';
    if (typeof img === 'number') this.k.killGroup(SIG.SIGKILL); // past the point of no return
    this.onLoaded(img);
    this.k.resumeExeced(this.task);
  }
}
