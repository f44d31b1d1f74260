/**
 * Signal names and signal sets as strace prints them.
 *
 * @module
 */

import { ptr } from './scalars.js';
import type { MemoryReader } from './umove.js';
import { readBytes } from './umove.js';

/** Standard signal names, index = signal number (x86-64). */
const NAMES: readonly string[] = [
  '', 'SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGILL', 'SIGTRAP', 'SIGABRT', 'SIGBUS', 'SIGFPE', 'SIGKILL',
  'SIGUSR1', 'SIGSEGV', 'SIGUSR2', 'SIGPIPE', 'SIGALRM', 'SIGTERM', 'SIGSTKFLT', 'SIGCHLD', 'SIGCONT',
  'SIGSTOP', 'SIGTSTP', 'SIGTTIN', 'SIGTTOU', 'SIGURG', 'SIGXCPU', 'SIGXFSZ', 'SIGVTALRM', 'SIGPROF',
  'SIGWINCH', 'SIGIO', 'SIGPWR', 'SIGSYS',
];

/** The number of signals in a kernel sigset_t on x86-64. */
const NSIG = 64;
/** The first real-time signal; strace names the others SIGRT_n after it. */
const SIGRTMIN = 32;

/**
 * A signal number's name: `SIGINT`, `SIGRTMIN` (32), `SIGRT_n` (32+n), or
 * the number itself when it is no signal (0, 99...).
 *
 * @example
 * ```ts
 * signalName(2);  // 'SIGINT'
 * signalName(34); // 'SIGRT_2'
 * signalName(0);  // '0'
 * ```
 */
export function signalName(sig: number | bigint): string {
  const n = Number(BigInt.asIntN(32, BigInt(sig)));
  if (n >= 1 && n < NAMES.length) return NAMES[n]!;
  if (n === SIGRTMIN) return 'SIGRTMIN';
  if (n > SIGRTMIN && n <= NSIG) return `SIGRT_${n - SIGRTMIN}`;
  return n.toString();
}

/**
 * The number of a signal name (`SIGINT`, `INT`, `SIGRTMIN`, `SIGRT_3`) or a
 * decimal number; undefined when it is neither.
 *
 * @example
 * ```ts
 * signalFromName('SIGTERM'); // 15
 * signalFromName('KILL');    // 9
 * ```
 */
export function signalFromName(name: string): number | undefined {
  if (/^\d+$/.test(name)) {
    const n = Number(name);
    return n >= 1 && n <= NSIG ? n : undefined;
  }
  const full = name.startsWith('SIG') ? name : `SIG${name}`;
  const i = NAMES.indexOf(full);
  if (i > 0) return i;
  if (full === 'SIGRTMIN') return SIGRTMIN;
  const m = /^SIGRT_(\d+)$/.exec(full);
  if (m && Number(m[1]) >= 1 && Number(m[1]) <= NSIG - SIGRTMIN) return SIGRTMIN + Number(m[1]);
  return undefined;
}

/** A signal's name inside a set: without the `SIG` prefix (`INT`, `RTMIN`, `RT_1`). */
function setMember(sig: number): string {
  const n = signalName(sig);
  return n.startsWith('SIG') ? n.slice(3) : n;
}

/**
 * A signal mask (bit n-1 = signal n) as strace prints it: `[INT TERM]`, or
 * the complement `~[RTMIN RT_1]` when more than half the signals are in it.
 *
 * @example
 * ```ts
 * formatSigmask((1n << 1n) | (1n << 14n)); // '[INT TERM]'
 * formatSigmask(0n);                      // '[]'
 * formatSigmask(~0n);                     // '~[]'
 * ```
 */
export function formatSigmask(mask: bigint, nsig = NSIG): string {
  const all = (1n << BigInt(nsig)) - 1n;
  let m = BigInt.asUintN(nsig, mask);
  let count = 0;
  for (let i = 0; i < nsig; i++) if ((m >> BigInt(i)) & 1n) count++;
  let prefix = '';
  if (count * 2 > nsig) {
    prefix = '~';
    m = all & ~m;
  }
  const names: string[] = [];
  for (let i = 0; i < nsig; i++) if ((m >> BigInt(i)) & 1n) names.push(setMember(i + 1));
  return `${prefix}[${names.join(' ')}]`;
}

/**
 * The sigset_t at `addr` of `size` bytes (rt_sigprocmask's last argument):
 * `NULL`, the address when unreadable or of an odd size, else
 * {@link formatSigmask}.
 *
 * @example
 * ```ts
 * formatSigsetAt(mem, 0x1000n, 8); // '[CHLD]'
 * ```
 */
export function formatSigsetAt(mem: MemoryReader, addr: bigint, size: number, minSize = 8): string {
  if (BigInt.asUintN(64, addr) === 0n) return 'NULL';
  // Like strace 6.1 (print_sigset_addr_len_limit): a size other than the kernel's 8 bytes is not
  // read, the set shown as its address; rt_sigpending alone accepts a smaller one (minSize 1).
  if (size < minSize || size > NSIG / 8) return ptr(addr);
  const n = Math.min(size, NSIG / 8);
  const b = readBytes(mem, addr, n);
  if (!b) return ptr(addr);
  let mask = 0n;
  for (let i = n - 1; i >= 0; i--) mask = (mask << 8n) | BigInt(b[i]!);
  return formatSigmask(mask, n * 8);
}
