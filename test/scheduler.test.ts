/**
 * The sentry's Scheduler (src/sentry/kernel/scheduler.ts) on a real context queue in a memory
 * file, with a real process standing for the stub's sysmsg thread (it shows the SIGCHLD an
 * interrupt sends it): an interrupt that finds its task on a thread whose tid the worker does
 * not know yet reaches it once the tid comes; contexts that wait with no thread coming get one.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { MemoryFile } from '../src/index.js';
import { CONTEXT_QUEUE, ContextState, THREAD_CONTEXT } from '../src/abi/sysmsg.js';
import { ContextQueue } from '../src/shm/contextQueue.js';
import { Scheduler, WAIT_LOOK, type SchedulerHost } from '../src/sentry/kernel/scheduler.js';
import { Task } from '../src/sentry/kernel/task.js';
import type { WatchedWord } from '../src/shm/watchedWord.js';
import { requireTool, until } from './helpers.js';

function setup() {
  const mf = new MemoryFile({ maxSize: 1 << 20, growBy: 1 << 20 });
  const range = mf.allocate(CONTEXT_QUEUE.size);
  const queue = new ContextQueue(range, mf.shared);
  const tasks: Task[] = [];
  let threadRequests = 0;
  const host: SchedulerHost = {
    liveTasks: () => tasks,
    needThread: () => void threadRequests++,
    stopped: () => false,
  };
  const sched = new Scheduler(queue, 8, host);
  /** A task of context `id`, made ready and handed to the stub (queued). */
  const run = (id: number) => {
    const t = new Task(-1, 100 + id, new ArrayBuffer(THREAD_CONTEXT.allocatedSize));
    t.bind(id, new ArrayBuffer(THREAD_CONTEXT.allocatedSize));
    tasks.push(t);
    sched.adopt(t);
    sched.queueReady();
    return t;
  };
  return { mf, queue, sched, run, requests: () => threadRequests };
}

test('an interrupt of a task on a sysmsg thread not known yet is sent once its tid comes (a task that makes no trapped call would never see the flag alone)', async (t) => {
  const python = requireTool('python3', 'python3');
  // Stands for the sysmsg thread: says when SIGCHLD reaches it.
  const thread = spawn(python, ['-c', 'import signal,sys\nsignal.signal(signal.SIGCHLD, lambda *a: (print("SIGCHLD", flush=True), sys.exit(0)))\nprint("ready", flush=True)\nwhile True: signal.pause()'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  thread.stdout!.on('data', (d) => (out += String(d)));
  const { mf, sched, run } = setup();
  try {
    t.true(await until(() => out.includes('ready')), 'the stand-in thread runs');
    const task = run(1);
    t.is(task.state, 'inStub.running');
    // A stub thread took it: its slot says which (thread slot 3), a slot the worker has no tid for.
    Atomics.store(task.u32, THREAD_CONTEXT.threadId / 4, 3);
    sched.interrupt(task);
    t.is(task.state, 'inStub.runningKicked');
    t.is(Atomics.load(task.u32, THREAD_CONTEXT.interrupt / 4), 1, 'the flag is set at once');
    sched.setThreadTids([[3, thread.pid!]], thread.pid!);
    t.true(await until(() => out.includes('SIGCHLD')), 'the thread got the signal once its tid came');
  } finally {
    thread.kill();
    if (thread.exitCode === null && thread.signalCode === null) await once(thread, 'exit');
    mf.close();
  }
});

test('contexts waiting with no thread coming for them get one at the next turn: an idle stub thread woken, another asked for', (t) => {
  const { mf, queue, sched, run, requests } = setup();
  try {
    // Two contexts queued while a thread counted as coming (one the main thread was making).
    queue.threadStarting();
    queue.threadStarting();
    run(1);
    run(2);
    t.is(queue.waiting, 2);
    const toWake = () => new Uint32Array(mf.shared.buffer(queue.range.start + CONTEXT_QUEUE.numThreadsToWakeup, 4))[0];
    t.is(toWake(), 0, 'none woken: two were coming');
    // Those threads never came (their creation failed): the count drops back.
    const active = new Uint32Array(mf.shared.buffer(queue.range.start + CONTEXT_QUEUE.numActiveThreads, 4));
    Atomics.sub(active, 0, 2);
    sched.preempt(performance.now() + 10);
    t.is(toWake(), 1, 'an idle stub thread is handed a wake-up');
    t.is(requests(), 1, 'and the main thread is asked for another thread');
    sched.preempt(performance.now() + 20);
    t.is(toWake(), 2, 'and another for the second context');
    sched.preempt(performance.now() + 30);
    t.is(toWake(), 2, 'no more than the contexts waiting');
  } finally {
    mf.close();
  }
});

test('a trap published after the scan and before the doorbell mark is found before the host waits (the mark would hide it from the doorbell)', (t) => {
  const { mf, queue, sched, run } = setup();
  try {
    const task = run(1);
    const look = (deferred = false) => {
      const hot: WatchedWord[] = [];
      return { flags: sched.lookBeforeWait(hot, deferred), hot: hot.length };
    };
    t.is(sched.scanTraps(() => t.fail('nothing published yet')), false);
    const quiet = look();
    // (WOKE too: queueing it woke a stub thread, there being none awake.)
    t.is(quiet.flags, WAIT_LOOK.inStub | WAIT_LOOK.woke, 'a task in the stub, nothing pending');
    t.is(quiet.hot, 1, 'its state word is watched while the host spins');
    // The stub publishes (state word, then the doorbell) after the scan, before the mark.
    Atomics.store(task.u32, THREAD_CONTEXT.state / 4, ContextState.Syscall);
    Atomics.add(new Uint32Array(mf.shared.buffer(queue.range.start + CONTEXT_QUEUE.numPublished, 4)), 0, 1);
    sched.markDoorbell();
    t.is(queue.doorbell.value, queue.published, 'the mark has taken the publish in: the doorbell shows nothing');
    t.is(look().flags, WAIT_LOOK.pending, 'the state word shows it: no wait');
    const seen: number[] = [];
    t.true(sched.scanTraps((_, st) => seen.push(st)));
    t.deepEqual(seen, [ContextState.Syscall], 'the next turn takes it');
    t.is(look().flags & WAIT_LOOK.pending, 0, 'taken: nothing pending');
    t.is(look(true).flags, WAIT_LOOK.pending, 'a signal a stub thread deferred meanwhile: no wait either');
  } finally {
    mf.close();
  }
});
