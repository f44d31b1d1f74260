import test from 'ava';
import { createPlatform, SYS, type Platform } from '../src/index.js';
import { native } from '../src/native.js';
import { blockedIn, pendingSignals, procState, tracerPid, until } from './helpers.js';
import { SIG } from '../src/abi/linux.js';

let platform: Platform;
test.before(async () => {
  platform = await createPlatform({ tracerThreads: 2 });
});
test.after.always(async () => {
  await platform?.close();
});

test('attach/detach hand-off: one stub traced by two different tracer workers in turn', async (t) => {
  const a = await platform.newAddressSpace();
  const b = await platform.newAddressSpace();
  const tracers = new Set<number>();
  // A long transaction on b keeps one worker busy, so a's next transaction runs on the other;
  // alone, a's transactions go to whichever worker is free. Each one attaches anew and leaves a
  // detached, so whatever worker comes next can attach.
  for (let i = 0; i < 4 && tracers.size < 2; i++) {
    const alone = await a.injectSyscall(SYS.getpid);
    t.is(alone.ret, BigInt(a.pid));
    tracers.add(alone.tracerTid);
    const busy = b.injectSyscall(SYS.nanosleep, 0n, 0n); // EFAULT at once if no timespec…
    const beside = await a.injectSyscall(SYS.getpid);
    t.is(beside.ret, BigInt(a.pid));
    tracers.add(beside.tracerTid);
    await busy;
  }
  t.is(tracers.size, 2, `tracer threads seen: ${[...tracers].join(', ')}`);
  for (const tid of tracers) t.not(tid, native.gettid());
  // Between transactions the stub is untraced and serving its loop: no tracer, and once done
  // spinning for more work (it spins a little before its futex wait) asleep, not stopped.
  t.is(await a.syscall(SYS.getpid), BigInt(a.pid));
  t.is(tracerPid(a.pid), 0);
  t.true(await until(() => procState(a.pid) === 'S'), `the stub is ${procState(a.pid)}`);
  t.is(tracerPid(a.pid), 0);
  await a.release();
  await b.release();
});

test('an injected syscall interrupted by signals is restarted (ERESTART path)', async (t) => {
  const as = await platform.newAddressSpace();
  // ppoll(NULL, 0, &{0, 400ms}, NULL, 8): blocks 400 ms; a signal interrupts it with
  // -ERESTARTNOHAND, the tracer swallows the signal and the call resumes with the time left.
  const range = platform.memoryFile.allocate(4096);
  const ts = new DataView(platform.memoryFile.view(range).buffer);
  ts.setBigInt64(0, 0n, true);
  ts.setBigInt64(8, 400_000_000n, true);
  const addr = 0x40000n;
  await as.mapFile(addr, range, 'rw');
  const start = Date.now();
  const call = as.injectSyscall(SYS.ppoll, 0n, 0n, addr, 0n, 8n);
  // Each signal must find the stub asleep in ppoll: the previous one taken (no SIGUSR1 pending:
  // its signal stop came and went) and the call restarted, not merely entered once.
  const usr1 = 1n << BigInt(SIG.SIGUSR1 - 1);
  for (let i = 0; i < 3; i++) {
    const ready = await until(() => (pendingSignals(as.pid) & usr1) === 0n && blockedIn(as.pid, SYS.ppoll), 2000);
    t.true(ready, `signal ${i + 1}: the stub is blocked in ppoll`);
    if (!ready) break; // a stub back in its loop would die of SIGUSR1: the failure above says enough
    process.kill(as.pid, 'SIGUSR1'); // default action would kill it: only a tracer can swallow it
  }
  const res = await call;
  t.is(res.ret, 0n, 'ppoll timed out normally');
  t.true(res.signalStops >= 3, `signal stops: ${res.signalStops}`);
  t.true(res.restarts >= 1, `restarts: ${res.restarts}`);
  t.true(Date.now() - start >= 390);
  t.is(await as.syscall(SYS.getpid), BigInt(as.pid), 'the stub is alive and back in its loop');
  await as.release();
  platform.memoryFile.free(range);
});
