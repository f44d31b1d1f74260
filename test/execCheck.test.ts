/**
 * execve's checks before its point of no return (src/sentry/exec/check.ts), on real files: what
 * the sentry answers a program's execve with when it must fail, as Linux does (ENOENT, EACCES,
 * ENOEXEC, ELOOP), and that looking never blocks (a FIFO) nor misses headers past the probe.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ERRNO } from '../src/abi/linux.js';
import { native } from '../src/native.js';
import { checkExecutable } from '../src/sentry/exec/check.js';

const dir = mkdtempSync(join(tmpdir(), 'systrap-execcheck-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string | Uint8Array, mode = 0o755): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  chmodSync(p, mode);
  return p;
}

test('a program, a script and its interpreter pass; what Linux refuses is refused with its errno', async (t) => {
  t.is(await checkExecutable('/bin/true'), 0);
  t.is(await checkExecutable(file('ok.sh', '#!/bin/sh -e\necho\n')), 0);
  t.is(await checkExecutable(join(dir, 'missing')), ERRNO.ENOENT);
  t.is(await checkExecutable(join(dir, 'ok.sh', 'below')), constants.errno.ENOTDIR);
  mkdirSync(join(dir, 'adir'));
  t.is(await checkExecutable(join(dir, 'adir')), ERRNO.EACCES, 'a directory');
  t.is(await checkExecutable('/dev/null'), ERRNO.EACCES, 'a device');
  t.is(await checkExecutable(file('plain', '#!/bin/sh\n', 0o644)), ERRNO.EACCES, 'no execute permission');
  t.is(await checkExecutable(file('text', 'echo hi\n')), ERRNO.ENOEXEC, 'no #! and no ELF: left to libc');
  t.is(await checkExecutable(file('noint.sh', `#!${join(dir, 'missing')}\n`)), ERRNO.ENOENT, 'a missing interpreter');
  t.is(await checkExecutable(file('short', '\x7fELF\x02\x01\x01')), ERRNO.ENOEXEC, 'an ELF header cut short');
  // Scripts running scripts: Linux stops after five interpreters (ELOOP).
  let prev = '/bin/true';
  for (let i = 0; i < 6; i++) prev = file(`s${i}.sh`, `#!${prev}\n`);
  t.is(await checkExecutable(join(dir, 's4.sh')), 0);
  t.is(await checkExecutable(join(dir, 's5.sh')), constants.errno.ELOOP);
});

test("a FIFO is refused at once (never opened for reading, never waited on); a relative path goes through the caller's resolve", async (t) => {
  const fifo = join(dir, 'fifo');
  const r = spawnSync('mkfifo', ['-m', '755', fifo]);
  if (r.error) return t.fail('mkfifo (coreutils) is needed');
  t.is(await checkExecutable(fifo), ERRNO.EACCES);
  copyFileSync('/bin/true', join(dir, 'rel-true'));
  chmodSync(join(dir, 'rel-true'), 0o755);
  t.is(await checkExecutable('rel-true', (p) => join(dir, p)), 0);
});

test('program headers past the first 64 KiB are read too: the same answer as with them up front', async (t) => {
  // /bin/true with its program headers moved to 0x11000 (e_phoff at byte 32), the rest as it was.
  const orig = readFileSync('/bin/true');
  const dv = new DataView(orig.buffer, orig.byteOffset, orig.byteLength);
  const phoff = Number(dv.getBigUint64(32, true));
  const phnum = dv.getUint16(56, true);
  const at = 0x11000;
  const moved = Buffer.alloc(at + phnum * 56);
  orig.copy(moved);
  orig.copy(moved, at, phoff, phoff + phnum * 56);
  moved.writeBigUInt64LE(BigInt(at), 32);
  t.is(await checkExecutable(file('far-headers', moved)), 0);
  // The same headers cut off by the end of the file: ENOEXEC.
  t.is(await checkExecutable(file('cut-headers', moved.subarray(0, at + 20))), ERRNO.ENOEXEC);
});

test('execProbe: arguments checked, one look at a file, errors shaped like fs errors', async (t) => {
  t.throws(() => native.execProbe(1 as unknown as string, 10), { instanceOf: TypeError, message: 'path must be a string' });
  t.throws(() => native.execProbe('a\0b', 10), { instanceOf: TypeError, message: /without NUL/ });
  t.throws(() => native.execProbe('/bin/true', 0), { instanceOf: RangeError, message: /1\.\.65536/ });
  t.throws(() => native.execProbe('/bin/true', 65537), { instanceOf: RangeError });
  const p = await native.execProbe('/bin/true', 4);
  t.deepEqual([...p.head], [0x7f, 0x45, 0x4c, 0x46]);
  t.true(p.executable);
  t.is(p.size, readFileSync('/bin/true').length);
  const d = await native.execProbe(dir, 100);
  t.false(d.executable);
  t.is(d.head.length, 0, 'nothing read from a directory');
  const e = await t.throwsAsync(native.execProbe(join(dir, 'nothing-here'), 10));
  t.like(e, { code: 'ENOENT', errno: -ERRNO.ENOENT, syscall: 'open' });
});

test("execProbe with a program's credentials: files checked as that uid would see them, and the pool thread gets its own back", async (t) => {
  t.throws(() => native.execProbe('/bin/true', 10, 5 as unknown as { uid: number; gid: number; groups: number[] }), { instanceOf: TypeError, message: /creds must be an object/ });
  t.throws(() => native.execProbe('/bin/true', 10, { uid: 1, gid: 1, groups: ['x'] as unknown as number[] }), { instanceOf: TypeError, message: /groups must be an array of numbers/ });
  t.throws(() => native.execProbe('/bin/true', 10, { uid: 1, gid: 1, groups: new Array(257).fill(1) }), { instanceOf: RangeError, message: /256 groups/ });
  if (process.geteuid?.() !== 0) return t.pass('not root: no other credentials to take on');
  const rootOnly = join(dir, 'root-only');
  copyFileSync('/bin/true', rootOnly);
  chmodSync(rootOnly, 0o700);
  chmodSync(dir, 0o755);
  const nobody = { uid: 65534, gid: 65534, groups: [] };
  t.true((await native.execProbe(rootOnly, 4)).executable, 'root may');
  // Readable only by root: its open as uid 65534 is refused.
  const e = await t.throwsAsync(native.execProbe(rootOnly, 4, nobody));
  t.like(e, { code: 'EACCES', syscall: 'open' });
  t.true((await native.execProbe('/bin/true', 4, nobody)).executable, 'what anyone may run');
  // Many at once (every pool thread takes the credentials on and off), then root's reads still work.
  await Promise.allSettled(Array.from({ length: 16 }, () => native.execProbe(rootOnly, 4, nobody)));
  const reads = await Promise.all(Array.from({ length: 16 }, () => readFile(rootOnly)));
  t.true(reads.every((b) => b.length === readFileSync('/bin/true').length));
});

test("on the calling thread (a sentry's own exec): the same answers as off it, execProbeSync's arguments checked alike, and the thread's own credentials back after a program's", async (t) => {
  t.throws(() => native.execProbeSync(1 as unknown as string, 10), { instanceOf: TypeError, message: 'path must be a string' });
  t.throws(() => native.execProbeSync('/bin/true', 0), { instanceOf: RangeError, message: /1\.\.65536/ });
  t.throws(() => native.execProbeSync('/bin/true', 10, 5 as unknown as { uid: number; gid: number; groups: number[] }), { instanceOf: TypeError, message: /creds must be an object/ });
  t.like(native.execProbeSync('/bin/true', 4), { executable: true, size: readFileSync('/bin/true').length });
  t.like(t.throws(() => native.execProbeSync(join(dir, 'not-here'), 4)), { code: 'ENOENT', errno: -ERRNO.ENOENT, syscall: 'open' });
  const here = join(dir, 'here');
  mkdirSync(here, { recursive: true });
  const f = (name: string, content: string | Uint8Array, mode = 0o755) => {
    const p = join(here, name);
    writeFileSync(p, content);
    chmodSync(p, mode);
    return p;
  };
  const fifo = join(here, 'fifo');
  if (spawnSync('mkfifo', ['-m', '755', fifo]).error) return t.fail('mkfifo (coreutils) is needed');
  let prev = '/bin/true';
  for (let i = 0; i < 6; i++) prev = f(`s${i}.sh`, `#!${prev}\n`);
  const cases = [
    '/bin/true',
    f('ok.sh', '#!/bin/sh -e\necho\n'),
    join(here, 'missing'),
    join(here, 'ok.sh', 'below'),
    here,
    '/dev/null',
    fifo,
    f('plain', '#!/bin/sh\n', 0o644),
    f('text', 'echo hi\n'),
    f('noint.sh', `#!${join(here, 'missing')}\n`),
    f('short', '\x7fELF\x02\x01\x01'),
    join(here, 's4.sh'),
    join(here, 's5.sh'),
  ];
  const off = await Promise.all(cases.map((p) => checkExecutable(p)));
  const on = await Promise.all(cases.map((p) => checkExecutable(p, undefined, undefined, true)));
  t.deepEqual(on, off);
  t.deepEqual(off, [0, 0, ERRNO.ENOENT, constants.errno.ENOTDIR, ERRNO.EACCES, ERRNO.EACCES, ERRNO.EACCES, ERRNO.EACCES, ERRNO.ENOEXEC, ERRNO.ENOENT, ERRNO.ENOEXEC, 0, constants.errno.ELOOP]);
  if (process.geteuid?.() !== 0) return;
  const rootOnly = f('root-only', readFileSync('/bin/true'), 0o700);
  chmodSync(here, 0o755);
  const nobody = { uid: 65534, gid: 65534, groups: [] };
  t.is(await checkExecutable(rootOnly, undefined, nobody, true), ERRNO.EACCES, 'refused to uid 65534');
  t.is(await checkExecutable(rootOnly, undefined, undefined, true), 0, "this thread's own credentials are back");
  t.is(readFileSync(rootOnly).length, readFileSync('/bin/true').length);
});
