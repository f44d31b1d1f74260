import type { AddressSpace } from '../addressSpace.js';
import type { AdoptedContext, EarlyFork } from '../platformPort.js';
import type { Runtime } from './runtime.js';
import type { Subprocess } from './subprocess.js';
import { Errors } from '../errors.js';
import { forkStubEarly, forkedBySentry, makeForked, type ForkedBySentry, type ForkedStub } from './stubCreation.js';
import { native } from '../native.js';

/** What forkForSentry needs of the platform: an address space over a stub, a context adopted in one. */
export interface SentryForkHost {
  /** The platform is closing: no fork. */
  closing(): boolean;
  wrap(sp: Subprocess): AddressSpace;
  adopt(as: AddressSpace): Promise<AdoptedContext>;
}

/**
 * A program's fork for its sentry (PlatformPort.forkEarly): the child forked, checked and set
 * up to run (forkStubEarly: its first sysmsg thread on its way), and handed over at once, with
 * the context slot its first thread will have; its actors, address space and that context are
 * made afterwards (`made`), while the sentry runs it. Why: those take a few hundred µs of the
 * main thread's time, which the child and its parent no longer wait for.
 *
 * The child's control memory stays until the sentry lets go of it (EarlyFork.letGo): the
 * sentry maps it by its fd's number when it takes the reply, which may come after a failure
 * here has killed the child.
 *
 * The first context's id is the one the child's control memory gives next: nothing else binds
 * one there before `made` (the sentry's requests for the child wait for it, see SentryLink),
 * and the context adopted is checked to be that one (else the child is released: EPROTOCOL).
 *
 * @example
 * ```ts
 * const f = await forkForSentry(rt, parent, { wrap, adopt });
 * reply({ hostPid: f.hostPid, queue: f.queue, main: f.main }); // the sentry runs the child
 * const { as, main } = await f.made;
 * ```
 */
export async function forkForSentry(rt: Runtime, parent: Subprocess, host: SentryForkHost): Promise<EarlyFork> {
  if (host.closing()) throw Errors.Closed();
  return handOver(rt, parent, await forkStubEarly(rt, parent), host);
}

/**
 * A fork the sentry made itself (src/sentry/kernel/localFork.ts) taken over as forkForSentry's
 * own: its control memory adopted from the fd the sentry hands over (closed here), its actors,
 * address space and first context made afterwards (`made`), as for forkForSentry. A failure
 * (the platform closing) throws: the caller kills the child.
 *
 * @example
 * ```ts
 * const f = adoptForSentry(rt, parent, { hostPid, nsPid, fd, first }, host);
 * const { as, main } = await f.made;
 * ```
 */
export function adoptForSentry(rt: Runtime, parent: Subprocess, given: ForkedBySentry, host: SentryForkHost): EarlyFork {
  if (host.closing()) {
    native.closeFd(given.fd);
    throw Errors.Closed();
  }
  return handOver(rt, parent, forkedBySentry(rt, parent, given), host);
}

/** The child in `f` handed to the sentry: what it adopts it with, and its actors to come. */
function handOver(rt: Runtime, parent: Subprocess, f: ForkedStub, host: SentryForkHost): EarlyFork {
  const main = f.control.nextContext();
  const letGo = f.control.hold();
  // Made in a later macrotask: the actors' synchronous start (some 300 µs of xstate work) would
  // otherwise run before the reply that lets the sentry run the child is sent.
  const made = new Promise<void>((resolve) => setImmediate(resolve)).then(() => makeForked(rt, parent, f)).then(async (sp) => {
    const as = host.wrap(sp);
    try {
      const ctx = await host.adopt(as);
      if (ctx.id !== main.id) {
        ctx.release();
        throw Errors.Protocol(`the fork child's first context is ${ctx.id}, not ${main.id}`, sp.pid);
      }
      return { as, main: ctx };
    } catch (e) {
      await as.release().catch(() => undefined);
      throw e;
    }
  });
  return { hostPid: f.pid, nsPid: f.nsPid, memory: f.control.ref, queue: f.queue.range, main, syscallMsg: { offset: f.msg.range.start, addr: f.msg.addr }, made, letGo };
}
