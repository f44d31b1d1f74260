import test from 'ava';
import { native } from '../src/native.js';
import { stubRegion, abi } from '../src/abi/stub.js';
import { REGISTER_COUNT } from '../src/abi/registers.js';

test('the stub region sits above the application range and holds the stub code', (t) => {
  const r = stubRegion();
  t.true(r.start >= abi.STUB_MAX_USER_ADDRESS);
  t.true(r.end <= abi.STUB_TASK_SIZE);
  t.is(r.roEnd - r.start, BigInt(abi.STUB_RO_SIZE));
  t.is(r.start % 4096n, 0n);
  t.deepEqual(stubRegion(), r, 'mapped once per process');
  // The injection point is a `syscall` instruction (0f 05).
  const code = native.processVmReadv(process.pid, r.syscallAddr, 2);
  t.deepEqual([...code], [0x0f, 0x05]);
  // It is mapped r-x in Node, and the rest of the region is reserved (---p).
  const maps = require_maps();
  t.true(maps.some((l) => l.startsWith(r.start.toString(16) + '-') && l.includes(' r-xp ')));
});

test('native arguments are checked with precise TypeErrors', (t) => {
  t.throws(() => native.ptraceAttach('1' as unknown as number), { instanceOf: TypeError, message: 'tid must be a number' });
  t.throws(() => native.ptraceGetRegs(1, new BigUint64Array(3)), { instanceOf: TypeError, message: /at least 27/ });
  t.throws(() => native.ptraceSetRegs(1, new Uint8Array(216) as unknown as BigUint64Array), { instanceOf: TypeError, message: /BigUint64Array/ });
  t.throws(() => native.wait4(0, 0), { instanceOf: TypeError });
  t.throws(() => new native.MemoryFile('x', 1234), { instanceOf: TypeError, message: /multiple of 4096/ });
  t.throws(() => new native.ExitWatch(1, 5 as unknown as () => void), { instanceOf: TypeError, message: 'onExit must be a function' });
  t.throws(() => native.setExitWatchesKeepAlive(1 as unknown as boolean), { instanceOf: TypeError, message: 'on must be a boolean' });
  t.throws(() => native.isTerminal('0' as unknown as number), { instanceOf: TypeError, message: 'fd must be a number' });
  t.throws(() => native.isTerminal(-1), { instanceOf: RangeError });
  t.throws(() => native.getRandom(undefined as unknown as number), { instanceOf: TypeError, message: 'length must be a number' });
  for (const n of [0, 257, -5]) t.throws(() => native.getRandom(n), { instanceOf: RangeError, message: 'length must be in 1..256' });
});

test('isTerminal answers as isatty(3) (tty.isatty); getRandom gives fresh bytes of the length asked', async (t) => {
  const { isatty } = await import('node:tty');
  const { openSync, closeSync } = await import('node:fs');
  const fd = openSync('/dev/null', 'r');
  try {
    t.false(native.isTerminal(fd), '/dev/null is a character device, not a terminal');
    t.is(native.isTerminal(0), isatty(0));
    t.false(native.isTerminal(987654), 'a closed fd is no terminal');
  } finally {
    closeSync(fd);
  }
  const a = native.getRandom(16);
  const b = native.getRandom(16);
  t.is(a.length, 16);
  t.is(native.getRandom(256).length, 256);
  t.notDeepEqual(a, b, 'two draws of 128 bits differ');
});

test('host errors keep code, errno and syscall', (t) => {
  // Not our tracee: ptrace refuses with ESRCH.
  const e = t.throws(() => native.ptraceGetRegs(process.pid, new BigUint64Array(REGISTER_COUNT)));
  t.like(e, { code: 'ESRCH', errno: -3, syscall: 'ptrace' });
  const w = t.throws(() => native.wait4(1, 1));
  t.like(w, { code: 'ECHILD', syscall: 'wait4' });
});

import { readFileSync } from 'node:fs';
function require_maps(): string[] {
  return readFileSync('/proc/self/maps', 'utf8').split('\n');
}
