import test from 'ava';
import { openSync, readSync, closeSync } from 'node:fs';
import { createPlatform, SYS, type Platform } from '../src/index.js';
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
