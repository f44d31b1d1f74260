/**
 * Sentry host worker: runs the sentries of many programs (src/sentry/host.ts), every trap of
 * each handled here, on this thread, with no message per syscall; the main thread
 * (src/sentry/sentryLink.ts for each program, src/actors/hostPool.ts for the host) hears of new
 * threads, exits and the ends.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SentryHost } from '../src/sentry/host.js';
import type { HostData } from '../src/hostProtocol.js';

// A host started early (see startHostEarly in src/actors/hostPool.ts) gets its data once its
// pool exists, as the first message on its parent port.
if (workerData) void new SentryHost(workerData as HostData).run();
else parentPort!.once('message', (data: HostData) => void new SentryHost(data).run());
