import { native } from '../native.js';
import { SIG } from '../abi/linux.js';
import { WNOHANG, __WALL } from '../abi/ptrace.js';

/**
 * The init (pid 1) of a stub's sandbox (see native forkSandbox): Node's child, the stub's
 * parent. Its death ends everything inside the sandbox (the kernel kills a pid namespace with
 * its init), and Node reaps it as soon as its pidfd says it exited, so no zombie is left
 * whichever side dies first.
 *
 * @example
 * ```ts
 * const init = new SandboxInit(res.initPid); // watched and reaped from now on
 * init.kill(); // everything in the sandbox dies
 * ```
 */
export class SandboxInit {
  #watch?: { close(): void };
  #reaped = false;
  #onGone!: () => void;
  /**
   * Resolves once the init is reaped. The kernel lets a pid namespace's init finish exiting
   * only after every other process inside is gone, so then the whole sandbox is.
   */
  readonly gone = new Promise<void>((resolve) => (this.#onGone = resolve));

  constructor(readonly pid: number) {
    try {
      this.#watch = new native.ExitWatch(pid, () => this.#reap());
    } catch {
      this.#reap(); // pidfd_open failed: it is already gone
    }
  }

  /** Kills the init and with it the whole sandbox; reaped when its exit is seen. */
  kill(): void {
    if (this.#reaped) return;
    try {
      native.kill(this.pid, SIG.SIGKILL);
    } catch {
      // gone already
    }
  }

  #reap(): void {
    if (this.#reaped) return;
    this.#reaped = true;
    try {
      native.wait4(this.pid, WNOHANG | __WALL);
    } catch {
      // reaped already
    }
    this.#watch?.close();
    this.#onGone();
  }
}
