import { setup, assign } from 'xstate';

/** Events of a sysmsg thread: the steps of its creation, then its life. */
export type SysmsgThreadEvent =
  | { type: 'CLONED'; tid: number }
  | { type: 'ATTACHED' }
  | { type: 'STACK_MAPPED' }
  | { type: 'SECCOMP_INSTALLED' }
  | { type: 'DETACH' }
  | { type: 'DETACHED' }
  | { type: 'START' }
  | { type: 'FAULT'; reason: string }
  | { type: 'FAILED'; reason: string }
  | { type: 'EXITED'; reason?: string };

export interface SysmsgThreadContext {
  /** Per-thread slot in the stub region. */
  slot: number;
  /** Host tid (a thread of the stub when its loop made it; its own thread group when a transaction did). */
  tid?: number;
  reason?: string;
}

/**
 * A sysmsg thread (gVisor's sysmsgThread): a host thread sharing the stub's address space that
 * runs application code and traps its syscalls and faults into its signal handler.
 *
 * cloning (the syscall thread clones it) → attached (traced, PDEATHSIG set) → stackMapped
 * (private stack, shared signal stack + Msg, sigaltstack) → seccompInstalled (NO_NEW_PRIVS and
 * the sysmsg filter) → parked (detached into group-stop) → running (started into the handler).
 * A thread the stub's loop makes itself (stub.S, STUB_REQUEST_NEW_THREAD) is never attached:
 * cloning → stackMapped → seccompInstalled → running.
 *
 * @example
 * ```ts
 * const a = createActor(sysmsgThreadMachine, { input: { slot: 1 } }).start();
 * a.send({ type: 'CLONED', tid: 4321 });
 * ```
 */
export const sysmsgThreadMachine = setup({
  types: {
    context: {} as SysmsgThreadContext,
    events: {} as SysmsgThreadEvent,
    input: {} as { slot: number },
  },
  actions: {
    recordTid: assign({ tid: ({ event }) => (event.type === 'CLONED' ? event.tid : undefined) }),
    recordReason: assign({ reason: ({ event }) => ('reason' in event ? (event.reason ?? 'exited') : undefined) }),
  },
}).createMachine({
  id: 'sysmsgThread',
  context: ({ input }) => ({ slot: input.slot }),
  initial: 'cloning',
  on: {
    EXITED: { target: '.dead', actions: 'recordReason' },
    FAILED: { target: '.dead', actions: 'recordReason' },
  },
  states: {
    cloning: {
      on: {
        CLONED: { actions: 'recordTid' },
        ATTACHED: 'attached',
        // Made by the stub's own loop (no tracer attaches): it reports its setup when done.
        STACK_MAPPED: 'stackMapped',
      },
    },
    attached: { on: { STACK_MAPPED: 'stackMapped' } },
    stackMapped: { on: { SECCOMP_INSTALLED: 'seccompInstalled' } },
    seccompInstalled: { on: { DETACHED: 'parked', START: 'running' } },
    parked: { on: { START: 'running' } },
    running: { on: { FAULT: { target: 'faulted', actions: 'recordReason' } } },
    faulted: {},
    dead: { type: 'final' },
  },
});
