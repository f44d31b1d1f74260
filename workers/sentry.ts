/**
 * Sentry worker: runs one program's sentry (src/sentry/kernel/kernel.ts) from start to end.
 * Every trap of the program is handled here, on this thread, with no message per syscall; the
 * main thread (src/sentry/sentryLink.ts) hears of new threads, exits and the end.
 */
import { Kernel } from '../src/sentry/kernel/kernel.js';
import type { SentryResult, SentryTask } from '../src/sentry/protocol.js';

export default function run(task: SentryTask | { warm: true }): Promise<SentryResult | null> {
  // A warm-up task: the worker has started and loaded the sentry (static imports); nothing to run.
  if ('warm' in task) return Promise.resolve(null);
  return new Kernel(task).run();
}
