import test from 'ava';
import { openSync, readSync, closeSync } from 'node:fs';
import { AddressSpace, createPlatform, SYS, type Platform } from '../src/index.js';
import { hasMappingAt } from './helpers.js';

let platform: Platform;
test.before(async () => {
  platform = await createPlatform();
});
test.after.always(async () => {
  await platform?.close();
});

test('as.syscall(getpid) runs in the stub and returns as.pid', async (t) => {
  const as = await platform.newAddressSpace();
  t.is(await as.syscall(SYS.getpid), BigInt(as.pid));
  t.not(as.pid, process.pid);
  // getppid: stubs are Node's children (CLONE_PARENT from the source stub).
  t.is(await as.syscall(SYS.getppid), BigInt(process.pid));
  await as.release();
});

test('an errno comes back as a negative result', async (t) => {
  const as = await platform.newAddressSpace();
  // close(12345): EBADF, the stub has no such fd.
  t.is(await as.syscall(SYS.close, 12345n), -9n);
  await as.release();
});

test('as.syscalls runs a batch in order in one request; a call whose expected result does not come stops it there', async (t) => {
  const as = await platform.newAddressSpace();
  const addr = 0x1240000n;
  const map = { sysno: SYS.mmap, args: [addr, 4096n, 3n, 0x100022n /* MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE */, -1n, 0n], expect: addr };
  const unmap = { sysno: SYS.munmap, args: [addr, 4096n], expect: 0n };
  // The second mmap finds the first's page (EEXIST): the munmap after it must not run.
  const got = await as.syscalls([{ sysno: SYS.getpid }, map, map, unmap]);
  t.deepEqual(got, [BigInt(as.pid), addr, -17n]);
  t.true(hasMappingAt(as.pid, addr), 'the batch stopped before the munmap');
  // Without `expect` a failure does not stop it.
  t.deepEqual(await as.syscalls([{ sysno: SYS.close, args: [12345n] }, unmap, { sysno: SYS.getppid }]), [-9n, 0n, BigInt(process.pid)]);
  t.false(hasMappingAt(as.pid, addr));
  t.deepEqual(await as.syscalls([]), []);
  await as.release();
});

test('as.syscalls: a full batch, and what a careless caller passes is refused before anything runs', async (t) => {
  const as = await platform.newAddressSpace();
  const full = Array.from({ length: 32 }, () => ({ sysno: SYS.getpid }));
  t.is((await as.syscalls(full)).length, 32);
  t.is(AddressSpace.MAX_BATCH, 32);
  const tooMany = [...full, { sysno: SYS.getpid }];
  t.like(await t.throwsAsync(as.syscalls(tooMany)), { code: 'EINVALIDARG' });
  t.like(await t.throwsAsync(as.syscalls([{ sysno: 5000 }])), { code: 'EINVALIDARG' });
  t.like(await t.throwsAsync(as.syscalls([{ sysno: SYS.getpid, args: [1n, 2n, 3n, 4n, 5n, 6n, 7n] }])), { code: 'EINVALIDARG' });
  t.like(await t.throwsAsync(as.syscalls([{ sysno: SYS.getpid, args: [1 as unknown as bigint] }])), { code: 'EINVALIDARG' });
  t.like(await t.throwsAsync(as.syscalls([null as unknown as { sysno: number }])), { code: 'EINVALIDARG' });
  t.like(await t.throwsAsync(as.syscalls([{ sysno: SYS.getpid, expect: 0 as unknown as bigint }])), { code: 'EINVALIDARG' });
  t.like(await t.throwsAsync(as.syscalls('getpid' as unknown as [])), { code: 'EINVALIDARG' });
  // Batches and single calls from several callers at once: serialised, each its own answers.
  const [a, b, c] = await Promise.all([as.syscalls(full), as.syscall(SYS.getppid), as.syscalls([{ sysno: SYS.close, args: [777n] }])]);
  t.true(a.every((r) => r === BigInt(as.pid)));
  t.is(b, BigInt(process.pid));
  t.deepEqual(c, [-9n]);
  await as.release();
  t.like(await t.throwsAsync(as.syscalls([{ sysno: SYS.getpid }])), { code: 'ERELEASED' });
});

test('bytes written through memoryFile.view() are seen inside the stub after mapFile', async (t) => {
  const as = await platform.newAddressSpace();
  const range = platform.memoryFile.allocate(8192);
  const view = platform.memoryFile.view(range);
  const text = Buffer.from(`written by node ${process.pid}`);
  view.set(text, 4096 + 100);
  const addr = 0x1230000n;
  await as.mapFile(addr, range, 'rw');
  t.true(hasMappingAt(as.pid, addr));

  // Read the stub's own memory through /proc/PID/mem.
  const fd = openSync(`/proc/${as.pid}/mem`, 'r');
  const got = Buffer.alloc(text.length);
  readSync(fd, got, 0, got.length, Number(addr) + 4096 + 100);
  closeSync(fd);
  t.deepEqual(got, text);

  // And the other way: the stub writes (a read() into the mapping from its memory file fd).
  view.set(Buffer.from('PING'), 0);
  const n = await as.syscall(SYS.pread64, 1000n, addr + 64n, 4n, BigInt(range.start));
  t.is(n, 4n);
  t.is(Buffer.from(view.subarray(64, 68)).toString(), 'PING');

  await as.unmap(addr, 8192n);
  t.false(hasMappingAt(as.pid, addr));
  platform.memoryFile.free(range);
  await as.release();
});

test('mapFile refuses ranges that would touch the stub region', async (t) => {
  const as = await platform.newAddressSpace();
  const range = platform.memoryFile.allocate(4096);
  await t.throwsAsync(as.mapFile(platform.stubRegion.start, range, 'rw'), { code: 'EINVALIDARG' });
  await t.throwsAsync(as.mapFile(0x1001n, range, 'rw'), { code: 'EINVALIDARG' });
  // @ts-expect-error: a wrong access string is refused at run time too
  await t.throwsAsync(as.mapFile(0x10000n, range, 'w'), { code: 'EINVALIDARG' });
  platform.memoryFile.free(range);
  await as.release();
});

test('a released address space refuses further use', async (t) => {
  const as = await platform.newAddressSpace();
  await as.release();
  await t.throwsAsync(as.syscall(SYS.getpid), { code: 'ERELEASED' });
  await t.throwsAsync(as.release(), { code: 'ERELEASED' });
});
