import { setup, assign } from 'xstate';

/** Events of a platform context. */
export type PlatformContextEvent =
  | { type: 'SWITCH' }
  | { type: 'RUNNING' }
  | { type: 'TRAPPED_SYSCALL'; sysno: number }
  | { type: 'TRAPPED_FAULT'; signo: number }
  | { type: 'INTERRUPTED' }
  | { type: 'FAULTED'; reason: string }
  | { type: 'RELEASE' };

export interface PlatformContextContext {
  switches: number;
  reason?: string;
}

/**
 * A platform context (gVisor's platformContext): one application thread's registers, run in a
 * stub by a sysmsg thread until it traps.
 *
 * idle → queued (registers handed to the stub) → running → syscall | fault | interrupted (the
 * sentry has it) → queued again on the next switch; released at the end; faulted when its stub
 * died or its shared memory was corrupted.
 *
 * @example
 * ```ts
 * const a = createActor(platformContextMachine).start();
 * a.send({ type: 'SWITCH' });
 * ```
 */
export const platformContextMachine = setup({
  types: { context: {} as PlatformContextContext, events: {} as PlatformContextEvent },
  actions: {
    recordReason: assign({ reason: ({ event }) => (event.type === 'FAULTED' ? event.reason : undefined) }),
    countSwitch: assign({ switches: ({ context }) => context.switches + 1 }),
  },
}).createMachine({
  id: 'platformContext',
  context: { switches: 0 },
  initial: 'idle',
  on: {
    RELEASE: '.released',
    FAULTED: { target: '.faulted', actions: 'recordReason' },
  },
  states: {
    idle: { on: { SWITCH: 'queued' } },
    queued: { on: { RUNNING: 'running' } },
    running: {
      entry: 'countSwitch',
      on: { TRAPPED_SYSCALL: 'syscall', TRAPPED_FAULT: 'fault', INTERRUPTED: 'interrupted' },
    },
    syscall: { on: { SWITCH: 'queued' } },
    fault: { on: { SWITCH: 'queued' } },
    interrupted: { on: { SWITCH: 'queued' } },
    faulted: { on: { RELEASE: 'released' } },
    released: { type: 'final' },
  },
});
