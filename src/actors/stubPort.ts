import type { StubPort } from '../platformPort.js';
import { Errors } from '../errors.js';
import type { Subprocess } from './subprocess.js';

/**
 * A subprocess as a sentry drives it (see StubPort in src/platformPort.ts).
 *
 * @example
 * ```ts
 * const stub = stubPort(subprocessOf(as));
 * await stub.ensureThread();
 * ```
 */
export function stubPort(sp: Subprocess): StubPort {
  return {
    pid: sp.pid,
    memory: sp.control.ref,
    scratch: () => sp.scratch(),
    unmapApplication: (then) => sp.unmapApplication(then),
    ensureThread: () => sp.sysmsgThreads.ensureRunning(),
    kick: () => sp.kick(),
    queueRange: () => {
      if (!sp.queue) throw Errors.InvalidArg(`${sp.id} has no context queue yet`);
      return sp.queue.range;
    },
    rulesRange: () => sp.control.rules,
    ringDoorbell: (wake = true) => sp.queue?.ring(wake) ?? false,
    sysmsgThreadTids: () => sp.sysmsgThreads.tids(),
    syscallMsg: () => {
      const msg = sp.thread.msg;
      return msg && { offset: msg.range.start, addr: msg.addr };
    },
    reclaimSyscallThread: () => sp.thread.reclaimFromSentry(),
  };
}
