import test from 'ava';
import { readlinkSync } from 'node:fs';
import { MemoryFile } from '../src/index.js';

test('allocate returns page-aligned, disjoint, zeroed ranges; free coalesces and reuses', (t) => {
  const mf = new MemoryFile({ growBy: 1 << 20, maxSize: 4 << 20 });
  try {
    t.regex(readlinkSync(`/proc/self/fd/${mf.fd}`), /^\/memfd:systrap-memory/);
    const a = mf.allocate(1);
    const b = mf.allocate(8192);
    t.deepEqual(a, { start: 0, end: 4096 });
    t.deepEqual(b, { start: 4096, end: 12288 });
    t.is(mf.allocated, 12288);
    mf.view(b).fill(0xab);
    mf.free(b);
    const c = mf.allocate(8192);
    t.deepEqual(c, b, 'first fit reuses the freed range');
    t.true(mf.view(c).every((x) => x === 0), 'a freed range is zero again (hole punched)');
    mf.free(a);
    mf.free(c);
    t.is(mf.allocated, 0);
    t.deepEqual(mf.allocate(12288), { start: 0, end: 12288 }, 'neighbours coalesced');
  } finally {
    mf.close();
  }
});

test('the file grows on demand, up to maxSize, then refuses', (t) => {
  const mf = new MemoryFile({ growBy: 1 << 20, maxSize: 3 << 20 });
  try {
    const big = mf.allocate(2 << 20);
    t.is(mf.size, 2 << 20);
    const views = [mf.view(big)];
    views[0][(2 << 20) - 1] = 7;
    const more = mf.allocate(1 << 20);
    t.is(mf.size, 3 << 20);
    t.is(views[0][(2 << 20) - 1], 7, 'growing does not move earlier views');
    t.throws(() => mf.allocate(4096), { code: 'ENOMEMFILE' });
    mf.free(more);
    t.notThrows(() => mf.allocate(4096));
  } finally {
    mf.close();
  }
});

test('bad ranges and double frees are refused', (t) => {
  const mf = new MemoryFile({ maxSize: 1 << 20, growBy: 1 << 20 });
  try {
    const a = mf.allocate(4096);
    t.throws(() => mf.view({ start: 1, end: 4097 }), { code: 'EINVALIDARG' });
    t.throws(() => mf.view({ start: 0, end: 2 << 20 }), { code: 'EINVALIDARG' });
    mf.free(a);
    t.throws(() => mf.free(a), { code: 'EINVALIDARG' });
    t.throws(() => mf.allocate(0), { code: 'EINVALIDARG' });
    t.throws(() => new MemoryFile({ maxSize: 1000 }), { code: 'EINVALIDARG' });
  } finally {
    mf.close();
  }
});

test('a view kept past close() reads zeros instead of crashing Node', (t) => {
  const mf = new MemoryFile({ maxSize: 1 << 20, growBy: 1 << 20 });
  const v = mf.view(mf.allocate(4096));
  v[0] = 42;
  mf.close();
  t.is(v[0], 0);
  // Writable and harmless: private zero pages now back the view, no longer the file.
  v[1] = 1;
  t.is(v[1], 1);
  t.is(v.length, 4096);
});
