import { readFileSync } from 'node:fs';
import { native } from '../../native.js';

/** O_NONBLOCK in an fd's flags (a pidfd made with PIDFD_NONBLOCK). */
const O_NONBLOCK = 0o4000;

/**
 * Which process of the tree a program's pidfd names (waitid's P_PIDFD). The program's pidfds are
 * the kernel's, for its processes' stubs (pidfd_open and CLONE_PIDFD name stubs): the fd's
 * /proc fdinfo names the stub while it exists, and since Linux 6.9 (pidfs) its inode, which each
 * process's pidfds share with no other process, names it after the stub is gone (a zombie of the
 * tree has no stub). The inodes are noted as processes are made.
 *
 * @example
 * ```ts
 * const names = new PidfdNames();
 * names.added(p.tgid, p.hostPid);
 * names.resolve(caller.hostPid, 5, true); // { pid: 3, nonblock: false }, 'EBADF' or 'unknown'
 * ```
 */
export class PidfdNames {
  /** Inode of each process's pidfds → its pid. Protected by: the worker's turn. */
  readonly #byInode = new Map<number, number>();
  /** False when two processes' pidfds showed one inode (a kernel before pidfs). */
  #unique = true;

  /** Process `pid` exists, its stub `hostPid` running: its pidfds' inode is noted. */
  added(pid: number, hostPid: number): void {
    let ino: number;
    try {
      ino = native.pidfdInode(hostPid);
    } catch {
      return; // the stub is gone already: its fdinfo said so for as long as it mattered
    }
    const had = this.#byInode.get(ino);
    if (had !== undefined && had !== pid) this.#unique = false;
    this.#byInode.set(ino, pid);
  }

  /** Process `pid` was reaped: its pidfds name nobody of the tree any more. */
  reaped(pid: number): void {
    for (const [ino, p] of this.#byInode) {
      if (p !== pid) continue;
      this.#byInode.delete(ino);
      return;
    }
  }

  /**
   * The process fd `fd` of the stub `hostPid` names: EBADF when it is no open pidfd (as Linux's
   * pidfd_get_pid), 'unknown' for a process not of the tree. `sandboxed`: the tree's pids are
   * those of its own pid namespace (the innermost of fdinfo's NSpid). `nonblock`: made with
   * PIDFD_NONBLOCK (a wait then answers EAGAIN instead of waiting).
   */
  resolve(hostPid: number, fd: number, sandboxed: boolean): { pid: number; nonblock: boolean } | 'EBADF' | 'unknown' {
    let text: string;
    try {
      text = readFileSync(`/proc/${hostPid}/fdinfo/${fd}`, 'utf8');
    } catch {
      return 'EBADF';
    }
    const field = (name: string): string | undefined => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(text)?.[1].trim();
    const pidLine = field('Pid');
    if (pidLine === undefined) return 'EBADF';
    const nonblock = (parseInt(field('flags') ?? '0', 8) & O_NONBLOCK) !== 0;
    if (Number(pidLine) > 0) {
      const ns = (field('NSpid') ?? pidLine).split(/\s+/);
      return { pid: Number(sandboxed ? ns[ns.length - 1] : pidLine), nonblock };
    }
    // The stub is gone (Pid: -1): the inode still names the process, where inodes are unique.
    const pid = this.#unique ? this.#byInode.get(Number(field('ino'))) : undefined;
    return pid === undefined ? 'unknown' : { pid, nonblock };
  }
}
