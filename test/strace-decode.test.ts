import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SYS } from '../src/abi/syscalls.js';
import { syscallArgCount } from '../src/abi/argCounts.js';
import { errnoDescription, errnoFromName, errnoSymbol } from '../src/sentry/strace/decode/errno.js';
import { formatSigmask, signalFromName, signalName } from '../src/sentry/strace/decode/signals.js';
import { quoteBytes } from '../src/sentry/strace/decode/strings.js';
import { formatIpv6 } from '../src/sentry/strace/decode/structs/socket.js';
import type { MemoryReader } from '../src/sentry/strace/decode/umove.js';
import { readCString } from '../src/sentry/strace/decode/umove.js';
import {
  alignResult, decodeAtEntry, formatCall, formatExit, formatReturn, formatSignalDelivery, formatSyscall, returnErrno,
} from '../src/sentry/strace/decoder.js';
import { oneLineError, requireTool } from './helpers.js';

/** A fake address space: a few regions, each readable exactly over its bytes. */
class FakeMemory implements MemoryReader {
  readonly #regions = new Map<bigint, Uint8Array>();
  #next = 0x10000n;

  /** Place `bytes` (at `at`, or at the next free address) and return the address. */
  put(bytes: Uint8Array, at?: bigint): bigint {
    const addr = at ?? this.#next;
    this.#regions.set(addr, bytes);
    this.#next = ((addr + BigInt(bytes.length) + 0x1000n) / 0x1000n) * 0x1000n;
    return addr;
  }

  /** A NUL-terminated string. */
  str(s: string): bigint {
    return this.put(new TextEncoder().encode(s + '\0'));
  }

  /** Bytes of a string, without a NUL. */
  bytes(s: string | Uint8Array): bigint {
    return this.put(typeof s === 'string' ? new TextEncoder().encode(s) : s);
  }

  /** Little-endian 64-bit words. */
  u64(...words: bigint[]): bigint {
    const b = new Uint8Array(words.length * 8);
    const v = new DataView(b.buffer);
    words.forEach((w, i) => v.setBigUint64(i * 8, BigInt.asUintN(64, w), true));
    return this.put(b);
  }

  /** A zeroed struct of `size` bytes filled in by `fill`. */
  struct(size: number, fill: (v: DataView) => void): bigint {
    const b = new Uint8Array(size);
    fill(new DataView(b.buffer));
    return this.put(b);
  }

  read(addr: bigint, len: number): Uint8Array | null {
    for (const [base, bytes] of this.#regions) {
      if (addr >= base && addr + BigInt(len) <= base + BigInt(bytes.length)) {
        const o = Number(addr - base);
        return bytes.slice(o, o + len);
      }
    }
    return null;
  }
}

const err = (errno: number): bigint => BigInt(-errno);
const AT_FDCWD = -100n;

test('openat / read / write / close, strace style', (t) => {
  const m = new FakeMemory();
  const path = m.str('/etc/passwd');
  t.is(formatSyscall(SYS.openat, [AT_FDCWD, path, 0x80000n, 0n, 0n, 0n], 3n, m), 'openat(AT_FDCWD, "/etc/passwd", O_RDONLY|O_CLOEXEC) = 3');
  const data = m.bytes('root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n');
  t.is(formatSyscall(SYS.read, [3n, data, 4096n], 1234n, m), 'read(3, "root:x:0:0:root:/root:/bin/bash\\n"..., 4096) = 1234');
  t.is(formatSyscall(SYS.read, [3n, data, 4096n], 0n, m), 'read(3, "", 4096) = 0');
  const hello = m.bytes('hello\n');
  t.is(formatSyscall(SYS.write, [1n, hello, 6n], 6n, m), 'write(1, "hello\\n", 6) = 6');
  t.is(formatSyscall(SYS.close, [3n], 0n, m), 'close(3) = 0');
  t.is(formatSyscall(SYS.close, [99n], err(9), m), 'close(99) = -1 EBADF (Bad file descriptor)');
});

test('failures: errno names and descriptions; output buffers print as addresses', (t) => {
  const m = new FakeMemory();
  const path = m.str('/nonexistent');
  t.is(formatSyscall(SYS.openat, [AT_FDCWD, path, 0n], err(2), m), 'openat(AT_FDCWD, "/nonexistent", O_RDONLY) = -1 ENOENT (No such file or directory)');
  t.is(formatSyscall(SYS.read, [99n, 0x7ffd0000n, 10n], err(9), m), 'read(99, 0x7ffd0000, 10) = -1 EBADF (Bad file descriptor)');
  t.is(formatSyscall(SYS.read, [99n, 0n, 10n], err(9), m), 'read(99, NULL, 10) = -1 EBADF (Bad file descriptor)');
  t.is(formatSyscall(SYS.write, [1n, 8n, 10n], err(14), m), 'write(1, 0x8, 10) = -1 EFAULT (Bad address)');
  t.is(formatSyscall(SYS.newfstatat, [AT_FDCWD, path, 0x7ffc1000n, 0n], err(2), m), 'newfstatat(AT_FDCWD, "/nonexistent", 0x7ffc1000, 0) = -1 ENOENT (No such file or directory)');
  t.is(formatSyscall(SYS.accept4, [3n, 0n, 0n, 0x800n], err(512), m), 'accept4(3, NULL, NULL, SOCK_NONBLOCK) = ? ERESTARTSYS (To be restarted if SA_RESTART is set)');
  t.is(errnoDescription(13), 'Permission denied');
  t.is(errnoDescription(4000), 'Unknown error 4000');
  t.is(returnErrno(-4095n), 4095);
  t.is(returnErrno(-4096n), undefined);
  t.is(returnErrno(0xfffffffffffffffen), 2);
});

test('calls that do not return print = ?', (t) => {
  const m = new FakeMemory();
  t.is(formatSyscall(SYS.exit_group, [0n], undefined, m), 'exit_group(0) = ?');
  t.is(formatSyscall(SYS.exit, [7n], undefined, m), 'exit(7) = ?');
  t.is(formatSyscall(SYS.getpid, [], undefined, m), 'getpid() = ?');
});

test('string quoting matches strace: escapes, octal, truncation at -s', (t) => {
  const enc = (s: string): Uint8Array => Uint8Array.from(s, (ch) => ch.charCodeAt(0));
  t.is(quoteBytes(enc('tab\there "q" back\\slash\r\v\f\x07\x08\x1b end')), '"tab\\there \\"q\\" back\\\\slash\\r\\v\\f\\7\\10\\33 end"');
  t.is(quoteBytes(enc('\x011\x00a\x009\x7f\x80\xff\x00')), '"\\0011\\0a\\09\\177\\200\\377\\0"');
  t.is(quoteBytes(Uint8Array.of(0xfd, 0x36), { hex: true }), '"\\xfd\\x36"');
  const m = new FakeMemory();
  const elf = m.bytes(Uint8Array.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 3, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0x3e, 0, 1, 0, 0, 0, 0x10, 0x74, 2, 0, 0, 0, 0, 0, 0x40, 0]));
  t.is(formatSyscall(SYS.read, [3n, elf, 832n], 832n, m), 'read(3, "\\177ELF\\2\\1\\1\\3\\0\\0\\0\\0\\0\\0\\0\\0\\3\\0>\\0\\1\\0\\0\\0\\20t\\2\\0\\0\\0\\0\\0"..., 832) = 832');
  const exactly32 = m.bytes('x'.repeat(32));
  t.is(formatSyscall(SYS.write, [1n, exactly32, 32n], 32n, m), `write(1, "${'x'.repeat(32)}", 32) = 32`);
  t.is(formatSyscall(SYS.write, [1n, exactly32, 32n], 32n, m, { stringLimit: 4 }), 'write(1, "xxxx"..., 32) = 32');
  const rnd = m.bytes(Uint8Array.of(0xfd, 0xcd, 0x36, 0xea, 0xe7, 0xd8, 0xbc, 0x78));
  t.is(formatSyscall(SYS.getrandom, [rnd, 8n, 1n], 8n, m), 'getrandom("\\xfd\\xcd\\x36\\xea\\xe7\\xd8\\xbc\\x78", 8, GRND_NONBLOCK) = 8');
  // Paths are not cut at -s; unreadable ones print as an address.
  const long = '/usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache';
  t.is(formatCall(SYS.open, [m.str(long), 0n], 3n, m), `open("${long}", O_RDONLY)`);
  t.is(formatCall(SYS.open, [0xdead0000n, 0n], err(14), m), 'open(0xdead0000, O_RDONLY)');
});

test('stat family', (t) => {
  const m = new FakeMemory();
  const st = (mode: number, size: bigint, rdev = 0n): bigint => m.struct(144, (v) => {
    v.setUint32(24, mode, true);
    v.setBigUint64(40, rdev, true);
    v.setBigInt64(48, size, true);
  });
  t.is(formatSyscall(SYS.fstat, [3n, st(0o100644, 1234n)], 0n, m), 'fstat(3, {st_mode=S_IFREG|0644, st_size=1234, ...}) = 0');
  const empty = m.str('');
  t.is(formatSyscall(SYS.newfstatat, [3n, empty, st(0o100755, 1926232n), 0x1000n], 0n, m), 'newfstatat(3, "", {st_mode=S_IFREG|0755, st_size=1926232, ...}, AT_EMPTY_PATH) = 0');
  t.is(formatCall(SYS.lstat, [m.str('/dev/null'), st(0o20666, 0n, 0x103n)], 0n, m), 'lstat("/dev/null", {st_mode=S_IFCHR|0666, st_rdev=makedev(0x1, 0x3), ...})');
  t.is(formatCall(SYS.stat, [m.str('/tmp'), st(0o41777, 4096n)], 0n, m), 'stat("/tmp", {st_mode=S_IFDIR|S_ISVTX|0777, st_size=4096, ...})');
  const stx = m.struct(256, (v) => {
    v.setUint32(0, 0x17ff, true);
    v.setUint16(28, 0o100644, true);
    v.setBigUint64(40, 42n, true);
  });
  t.is(formatCall(SYS.statx, [AT_FDCWD, m.str('/f'), 0n, 0x7ffn, stx], 0n, m), 'statx(AT_FDCWD, "/f", AT_STATX_SYNC_AS_STAT, STATX_BASIC_STATS, {stx_mask=STATX_BASIC_STATS|STATX_MNT_ID, stx_attributes=0, stx_mode=S_IFREG|0644, stx_size=42, ...})');
  const sfs = m.struct(120, (v) => {
    v.setBigInt64(0, 0xef53n, true);
    v.setBigInt64(8, 4096n, true);
    v.setBigInt64(64, 255n, true);
    v.setBigInt64(72, 4096n, true);
    v.setBigInt64(80, 0x1020n, true);
  });
  t.is(formatCall(SYS.fstatfs, [3n, sfs], 0n, m), 'fstatfs(3, {f_type=EXT2_SUPER_MAGIC, f_bsize=4096, f_blocks=0, f_bfree=0, f_bavail=0, f_files=0, f_ffree=0, f_fsid={val=[0, 0]}, f_namelen=255, f_frsize=4096, f_flags=ST_VALID|ST_RELATIME})');
});

test('memory calls: pointers in hex, prot and map flags', (t) => {
  const m = new FakeMemory();
  t.is(formatSyscall(SYS.mmap, [0n, 8192n, 3n, 0x22n, 0xffffffffn, 0n], 0x7ff10ac3b000n, m), 'mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7ff10ac3b000');
  t.is(formatCall(SYS.mmap, [0x7ff10aa76000n, 1400832n, 5n, 0x812n, 3n, 0x26000n], 0x7ff10aa76000n, m), 'mmap(0x7ff10aa76000, 1400832, PROT_READ|PROT_EXEC, MAP_PRIVATE|MAP_FIXED|MAP_DENYWRITE, 3, 0x26000)');
  t.is(formatSyscall(SYS.mmap, [0n, 4096n, 1n, 0x22n, -1n, 0n], err(12), m), 'mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = -1 ENOMEM (Cannot allocate memory)');
  t.is(formatSyscall(SYS.mprotect, [0x7f0000001000n, 4096n, 0n], 0n, m), 'mprotect(0x7f0000001000, 4096, PROT_NONE) = 0');
  t.is(formatSyscall(SYS.mprotect, [0x1000n, 4096n, 0x105n], err(22), m), 'mprotect(0x1000, 4096, PROT_READ|PROT_EXEC|0x100) = -1 EINVAL (Invalid argument)');
  t.is(formatSyscall(SYS.munmap, [0x7f0000000000n, 34547n], 0n, m), 'munmap(0x7f0000000000, 34547) = 0');
  t.is(formatSyscall(SYS.brk, [0n], 0x56058028f000n, m), 'brk(NULL) = 0x56058028f000');
  t.is(formatSyscall(SYS.mremap, [0x1000n, 8192n, 16384n, 1n, 0n], 0x2000n, m), 'mremap(0x1000, 8192, 16384, MREMAP_MAYMOVE) = 0x2000');
  t.is(formatSyscall(SYS.madvise, [0x1000n, 4096n, 4n], 0n, m), 'madvise(0x1000, 4096, MADV_DONTNEED) = 0');
  t.is(formatCall(SYS.mmap, [0n, 4096n, 1n, 0n, -1n, 0n], 0n, m), 'mmap(NULL, 4096, PROT_READ, MAP_FILE, -1, 0)');
});

test('lseek, access, faccessat, fadvise64, umask', (t) => {
  const m = new FakeMemory();
  t.is(formatSyscall(SYS.lseek, [3n, 0n, 0n], 0n, m), 'lseek(3, 0, SEEK_SET) = 0');
  t.is(formatSyscall(SYS.lseek, [3n, -5n, 2n], 95n, m), 'lseek(3, -5, SEEK_END) = 95');
  t.is(formatSyscall(SYS.lseek, [3n, 3n, 7n], err(22), m), 'lseek(3, 3, 0x7 /* SEEK_??? */) = -1 EINVAL (Invalid argument)');
  const p = m.str('/etc/ld.so.preload');
  t.is(formatSyscall(SYS.access, [p, 4n], err(2), m), 'access("/etc/ld.so.preload", R_OK) = -1 ENOENT (No such file or directory)');
  t.is(formatCall(SYS.access, [p, 0n], 0n, m), 'access("/etc/ld.so.preload", F_OK)');
  t.is(formatCall(SYS.access, [p, 6n], 0n, m), 'access("/etc/ld.so.preload", R_OK|W_OK)');
  t.is(formatCall(SYS.faccessat, [AT_FDCWD, p, 1n], 0n, m), 'faccessat(AT_FDCWD, "/etc/ld.so.preload", X_OK)');
  t.is(formatCall(SYS.faccessat2, [AT_FDCWD, p, 4n, 0x200n], 0n, m), 'faccessat2(AT_FDCWD, "/etc/ld.so.preload", R_OK, AT_EACCESS)');
  t.is(formatSyscall(SYS.fadvise64, [3n, 0n, 0n, 2n], 0n, m), 'fadvise64(3, 0, 0, POSIX_FADV_SEQUENTIAL) = 0');
  t.is(formatSyscall(SYS.umask, [0o22n], 0o22n, m), 'umask(022) = 022');
  t.is(formatSyscall(SYS.umask, [0n], 0o22n, m), 'umask(000) = 022');
});

test('open flags and modes', (t) => {
  const m = new FakeMemory();
  const p = m.str('/tmp/f');
  t.is(formatCall(SYS.openat, [AT_FDCWD, p, 0x80242n, 0o644n], 3n, m), 'openat(AT_FDCWD, "/tmp/f", O_RDWR|O_CREAT|O_TRUNC|O_CLOEXEC, 0644)');
  t.is(formatCall(SYS.open, [p, 0xcc1n, 0o600n], 4n, m), 'open("/tmp/f", O_WRONLY|O_CREAT|O_EXCL|O_APPEND|O_NONBLOCK, 0600)');
  t.is(formatCall(SYS.openat, [AT_FDCWD, p, 0x90800n], 3n, m), 'openat(AT_FDCWD, "/tmp/f", O_RDONLY|O_NONBLOCK|O_CLOEXEC|O_DIRECTORY)');
  t.is(formatCall(SYS.openat, [AT_FDCWD, p, 0x410002n, 0o600n], 3n, m), 'openat(AT_FDCWD, "/tmp/f", O_RDWR|O_TMPFILE, 0600)');
  t.is(formatCall(SYS.openat, [4n, p, 3n], err(21), m), 'openat(4, "/tmp/f", O_ACCMODE)');
  t.is(formatCall(SYS.openat, [-5n, p, 0x220000n], 3n, m), 'openat(-5, "/tmp/f", O_RDONLY|O_NOFOLLOW|O_PATH)');
});

test('readv / writev print iovecs, readv only what was read', (t) => {
  const m = new FakeMemory();
  const iov = m.u64(m.bytes('abc'), 3n, m.bytes('defg'), 4n);
  t.is(formatSyscall(SYS.writev, [3n, iov, 2n], 7n, m), 'writev(3, [{iov_base="abc", iov_len=3}, {iov_base="defg", iov_len=4}], 2) = 7');
  const riov = m.u64(m.bytes('wxyz'), 4n, m.bytes('0123456789'), 10n);
  t.is(formatSyscall(SYS.readv, [3n, riov, 2n], 6n, m), 'readv(3, [{iov_base="wxyz", iov_len=4}, {iov_base="01", iov_len=10}], 2) = 6');
  t.is(formatSyscall(SYS.readv, [3n, riov, 2n], err(9), m), `readv(3, ${'0x' + riov.toString(16)}, 2) = -1 EBADF (Bad file descriptor)`);
  t.is(formatCall(SYS.pread64, [3n, m.bytes('abcdefgh'), 8n, 100n], 8n, m), 'pread64(3, "abcdefgh", 8, 100)');
  t.is(formatCall(SYS.pwrite64, [3n, m.bytes('abcdefgh'), 8n, -1n], err(22), m), 'pwrite64(3, "abcdefgh", 8, -1)');
});

test('ioctl: known requests, structs, _IOC for unknown ones', (t) => {
  const m = new FakeMemory();
  t.is(formatSyscall(SYS.ioctl, [1n, 0x5401n, 0x7ffc0000n], err(25), m), 'ioctl(1, TCGETS, 0x7ffc0000) = -1 ENOTTY (Inappropriate ioctl for device)');
  const ws = m.struct(8, (v) => {
    v.setUint16(0, 24, true);
    v.setUint16(2, 80, true);
  });
  t.is(formatCall(SYS.ioctl, [1n, 0x5413n, ws], 0n, m), 'ioctl(1, TIOCGWINSZ, {ws_row=24, ws_col=80, ws_xpixel=0, ws_ypixel=0})');
  const tio = m.struct(60, (v) => {
    v.setUint32(0, 0o2400, true);
    v.setUint32(4, 0o5, true);
    v.setUint32(8, 0o277, true);
    v.setUint32(12, 0o105073, true);
  });
  t.is(formatCall(SYS.ioctl, [0n, 0x5401n, tio], 0n, m), 'ioctl(0, TCGETS, {c_iflag=ICRNL|IXON, c_oflag=NL0|CR0|TAB0|BS0|VT0|FF0|OPOST|ONLCR, c_cflag=B38400|CS8|CREAD, c_lflag=ISIG|ICANON|ECHO|ECHOE|ECHOK|IEXTEN|ECHOCTL|ECHOKE, ...})');
  t.is(formatCall(SYS.ioctl, [0n, 0x541bn, m.struct(4, (v) => v.setInt32(0, 5, true))], 0n, m), 'ioctl(0, FIONREAD, [5])');
  t.is(formatCall(SYS.ioctl, [0n, 0x12345678n, 0n], err(25), m), 'ioctl(0, _IOC(_IOC_NONE, 0x56, 0x78, 0x1234), 0)');
  t.is(formatCall(SYS.ioctl, [0n, 0x5451n, 0n], 0n, m), 'ioctl(0, FIOCLEX)');
});

test('getdents64 counts entries', (t) => {
  const m = new FakeMemory();
  const rec = (name: string): Uint8Array => {
    const len = (19 + name.length + 1 + 7) & ~7;
    const b = new Uint8Array(len);
    const v = new DataView(b.buffer);
    v.setUint16(16, len, true);
    b.set(new TextEncoder().encode(name), 19);
    return b;
  };
  const recs = [rec('.'), rec('..'), rec('file.txt')];
  const total = recs.reduce((s, r) => s + r.length, 0);
  const buf = new Uint8Array(256);
  let o = 0;
  for (const r of recs) { buf.set(r, o); o += r.length; }
  const dirp = m.put(buf);
  t.is(formatSyscall(SYS.getdents64, [3n, dirp, 256n], BigInt(total), m), `getdents64(3, 0x${dirp.toString(16)} /* 3 entries */, 256) = ${total}`);
  t.is(formatSyscall(SYS.getdents64, [3n, dirp, 256n], 0n, m), `getdents64(3, 0x${dirp.toString(16)} /* 0 entries */, 256) = 0`);
});

test('execve: argv strings, env abbreviated; decoded at entry', (t) => {
  const m = new FakeMemory();
  const argv = m.u64(m.str('/bin/cat'), m.str('/etc/hostname'), m.str('a very long argument that is longer than 32 chars'), 0n);
  const envp = m.u64(m.str('A=1'), m.str('B=2'), 0n);
  t.true(decodeAtEntry(SYS.execve));
  t.false(decodeAtEntry(SYS.read));
  const call = formatCall(SYS.execve, [m.str('/bin/cat'), argv, envp], undefined, m);
  t.is(call, `execve("/bin/cat", ["/bin/cat", "/etc/hostname", "a very long argument that is lon"...], 0x${envp.toString(16)} /* 2 vars */)`);
  t.is(alignResult(call, formatReturn(SYS.execve, [], 0n, m)), `${call} = 0`);
  t.is(formatCall(SYS.execve, [m.str('/x'), 1n, 0n], err(14), m), 'execve("/x", 0x1, NULL)');
  const many = m.u64(...Array.from({ length: 40 }, () => m.str('x')), 0n);
  t.is(formatCall(SYS.execve, [m.str('/x'), many, 0n], err(2), m), `execve("/x", [${Array(32).fill('"x"').join(', ')}, ...], NULL)`);
});

test('process start-up calls: arch_prctl, set_tid_address, set_robust_list, rseq, prlimit64', (t) => {
  const m = new FakeMemory();
  t.is(formatSyscall(SYS.arch_prctl, [0x1002n, 0x7ff10aa4d740n], 0n, m), 'arch_prctl(ARCH_SET_FS, 0x7ff10aa4d740) = 0');
  t.is(formatCall(SYS.arch_prctl, [0x1003n, m.u64(0x7f0000000740n)], 0n, m), 'arch_prctl(ARCH_GET_FS, [0x7f0000000740])');
  t.is(formatSyscall(SYS.set_tid_address, [0x7ff10aa4da10n], 21697n, m), 'set_tid_address(0x7ff10aa4da10) = 21697');
  t.is(formatSyscall(SYS.set_robust_list, [0x7ff10aa4da20n, 24n], 0n, m), 'set_robust_list(0x7ff10aa4da20, 24) = 0');
  t.is(formatSyscall(SYS.rseq, [0x7ff10aa4e060n, 0x20n, 0n, 0x53053053n], 0n, m), 'rseq(0x7ff10aa4e060, 0x20, 0, 0x53053053) = 0');
  const rl = m.u64(8192n * 1024n, 0xffffffffffffffffn);
  t.is(formatSyscall(SYS.prlimit64, [0n, 3n, 0n, rl], 0n, m), 'prlimit64(0, RLIMIT_STACK, NULL, {rlim_cur=8192*1024, rlim_max=RLIM64_INFINITY}) = 0');
  t.is(formatCall(SYS.getrlimit, [7n, m.u64(20000n, 20000n)], 0n, m), 'getrlimit(RLIMIT_NOFILE, {rlim_cur=20000, rlim_max=20000})');
});

test('no-argument calls and the generic fallback', (t) => {
  const m = new FakeMemory();
  for (const name of ['getpid', 'getppid', 'getuid', 'geteuid', 'getgid', 'getegid', 'gettid'] as const) {
    t.is(formatSyscall(SYS[name], [], 42n, m), `${name}() = 42`);
  }
  t.is(formatSyscall(SYS.sched_yield, [], 0n, m), 'sched_yield() = 0');
  t.is(formatSyscall(SYS.io_uring_enter, [3n, 1n, 0n, 0n, 0n, 0n], 1n, m), 'io_uring_enter(0x3, 0x1, 0, 0, 0, 0) = 1');
  t.is(formatSyscall(999, [1n, 2n, 0n, 0n, 0n, 0n], err(38), m), 'syscall_999(0x1, 0x2, 0, 0, 0, 0) = -1 ENOSYS (Function not implemented)');
  t.is(syscallArgCount(SYS.read), 3);
  t.is(syscallArgCount(SYS.mmap), 6);
});

test('clone, clone3, wait4, kill', (t) => {
  const m = new FakeMemory();
  t.is(formatSyscall(SYS.clone, [0x1200011n, 0n, 0n, 0x7f00n, 0n], 21926n, m), 'clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f00) = 21926');
  const ptid = m.struct(4, (v) => v.setInt32(0, 7239, true));
  t.is(formatCall(SYS.clone, [0x180300n, 0x1000n, ptid, 0n, 0x2000n], 7239n, m), 'clone(child_stack=0x1000, flags=CLONE_VM|CLONE_FS|CLONE_SETTLS|CLONE_PARENT_SETTID, parent_tid=[7239], tls=0x2000)');
  const args = m.struct(88, (v) => {
    v.setBigUint64(0, 0x4100n, true);
    v.setBigUint64(32, 17n, true);
  });
  t.is(formatCall(SYS.clone3, [args, 88n], 5n, m), 'clone3({flags=CLONE_VM|CLONE_VFORK, exit_signal=SIGCHLD, stack=NULL, stack_size=0}, 88)');
  const status = m.struct(4, (v) => v.setInt32(0, 7 << 8, true));
  t.is(formatSyscall(SYS.wait4, [-1n, status, 0x40000000n, 0n], 21927n, m), 'wait4(-1, [{WIFEXITED(s) && WEXITSTATUS(s) == 7}], __WALL, NULL) = 21927');
  const killed = m.struct(4, (v) => v.setInt32(0, 9, true));
  t.is(formatCall(SYS.wait4, [-1n, killed, 0n, 0n], 5n, m), 'wait4(-1, [{WIFSIGNALED(s) && WTERMSIG(s) == SIGKILL}], 0, NULL)');
  t.is(formatSyscall(SYS.wait4, [-1n, 0x7ffd0000n, 1n, 0n], err(10), m), 'wait4(-1, 0x7ffd0000, WNOHANG, NULL) = -1 ECHILD (No child processes)');
  t.is(formatSyscall(SYS.kill, [999999n, 15n], err(3), m), 'kill(999999, SIGTERM) = -1 ESRCH (No such process)');
  t.is(formatCall(SYS.kill, [12n, 0n], 0n, m), 'kill(12, 0)');
  t.is(formatCall(SYS.tgkill, [12n, 13n, 10n], 0n, m), 'tgkill(12, 13, SIGUSR1)');
  t.is(formatCall(SYS.tkill, [12n, 37n], 0n, m), 'tkill(12, SIGRT_5)');
});

test('futex operations', (t) => {
  const m = new FakeMemory();
  t.is(formatSyscall(SYS.futex, [0x7ff10ac24a4cn, 129n, 2147483647n, 0n, 0n, 0n], 0n, m), 'futex(0x7ff10ac24a4c, FUTEX_WAKE_PRIVATE, 2147483647) = 0');
  t.is(formatSyscall(SYS.futex, [0x1000n, 0n, 1n, 0n, 0n, 0n], err(11), m), 'futex(0x1000, FUTEX_WAIT, 1, NULL) = -1 EAGAIN (Resource temporarily unavailable)');
  const ts = m.u64(0n, 1000n);
  t.is(formatCall(SYS.futex, [0x1000n, 128n, 0n, ts, 0n, 0n], err(110), m), 'futex(0x1000, FUTEX_WAIT_PRIVATE, 0, {tv_sec=0, tv_nsec=1000})');
  t.is(formatCall(SYS.futex, [0x1000n, 393n, 0n, ts, 0n, 0xffffffffn], err(110), m), 'futex(0x1000, FUTEX_WAIT_BITSET_PRIVATE|FUTEX_CLOCK_REALTIME, 0, {tv_sec=0, tv_nsec=1000}, FUTEX_BITSET_MATCH_ANY)');
  t.is(formatCall(SYS.futex, [0x1000n, 77n, 0n, 0n, 0n, 0n], err(38), m), 'futex(0x1000, 0x4d /* FUTEX_??? */, 0, NULL, NULL, 0)');
});

test('signals: rt_sigaction, rt_sigprocmask, sigaltstack, rt_sigreturn', (t) => {
  const m = new FakeMemory();
  const sa = m.u64(0x55e99a841dc0n, 0x04000000n | 0x10000000n, 0x7f04ff577050n, (1n << 1n) | (1n << 14n));
  t.is(formatSyscall(SYS.rt_sigaction, [2n, sa, 0n, 8n], 0n, m), 'rt_sigaction(SIGINT, {sa_handler=0x55e99a841dc0, sa_mask=[INT TERM], sa_flags=SA_RESTORER|SA_RESTART, sa_restorer=0x7f04ff577050}, NULL, 8) = 0');
  const old = m.u64(0n, 0n, 0n, 0n);
  t.is(formatCall(SYS.rt_sigaction, [3n, 0n, old, 8n], 0n, m), 'rt_sigaction(SIGQUIT, NULL, {sa_handler=SIG_DFL, sa_mask=[], sa_flags=0}, 8)');
  const full = m.u64(~((1n << 31n) | (1n << 32n)));
  const empty = m.u64(0n);
  t.is(formatSyscall(SYS.rt_sigprocmask, [2n, full, empty, 8n], 0n, m), 'rt_sigprocmask(SIG_SETMASK, ~[RTMIN RT_1], [], 8) = 0');
  const chld = m.u64((1n << 16n) | (1n << 35n));
  t.is(formatCall(SYS.rt_sigprocmask, [0n, chld, 0n, 8n], 0n, m), 'rt_sigprocmask(SIG_BLOCK, [CHLD RT_4], NULL, 8)');
  t.is(formatCall(SYS.rt_sigprocmask, [7n, 0n, 0n, 8n], 0n, m), 'rt_sigprocmask(0x7 /* SIG_??? */, NULL, NULL, 8)');
  const ss = m.u64(0x55bc45c142a0n, 0n, 65536n);
  const oss = m.u64(0n, 2n, 0n);
  t.is(formatCall(SYS.sigaltstack, [ss, oss], 0n, m), 'sigaltstack({ss_sp=0x55bc45c142a0, ss_flags=0, ss_size=65536}, {ss_sp=NULL, ss_flags=SS_DISABLE, ss_size=0})');
  const frame = m.put(new Uint8Array(304));
  t.is(formatSyscall(SYS.rt_sigreturn, [], 21703n, m, { stackPointer: frame }), 'rt_sigreturn({mask=[]}) = 21703');
  t.is(formatSyscall(SYS.rt_sigreturn, [], 0n, m), 'rt_sigreturn() = 0');
});

test('uname, sysinfo, sched_getaffinity, getcwd, readlink, prctl', (t) => {
  const m = new FakeMemory();
  const uts = m.struct(390, (v) => {
    new Uint8Array(v.buffer).set(new TextEncoder().encode('Linux'), 0);
    new Uint8Array(v.buffer).set(new TextEncoder().encode('vm'), 65);
  });
  t.is(formatSyscall(SYS.uname, [uts], 0n, m), 'uname({sysname="Linux", nodename="vm", ...}) = 0');
  const si = m.struct(112, (v) => {
    v.setBigInt64(0, 8127n, true);
    v.setUint16(80, 84, true);
    v.setUint32(104, 1, true);
  });
  t.is(formatCall(SYS.sysinfo, [si], 0n, m), 'sysinfo({uptime=8127, loads=[0, 0, 0], totalram=0, freeram=0, sharedram=0, bufferram=0, totalswap=0, freeswap=0, procs=84, totalhigh=0, freehigh=0, mem_unit=1})');
  const mask = m.put(Uint8Array.of(3, 0, 0, 0, 0, 0, 0, 0));
  t.is(formatSyscall(SYS.sched_getaffinity, [0n, 128n, mask], 8n, m), 'sched_getaffinity(0, 128, [0 1]) = 8');
  const cwd = m.str('/tmp/ref');
  t.is(formatSyscall(SYS.getcwd, [cwd, 256n], 9n, m), 'getcwd("/tmp/ref", 256) = 9');
  const target = m.bytes('file.txt');
  t.is(formatSyscall(SYS.readlink, [m.str('/tmp/lnk'), target, 256n], 8n, m), 'readlink("/tmp/lnk", "file.txt", 256) = 8');
  t.is(formatCall(SYS.readlinkat, [AT_FDCWD, m.str('/proc/self/exe'), target, 4n], 4n, m), 'readlinkat(AT_FDCWD, "/proc/self/exe", "file", 4)');
  t.is(formatSyscall(SYS.prctl, [15n, m.str('myname'), 0n, 0n, 0n], 0n, m), 'prctl(PR_SET_NAME, "myname") = 0');
  t.is(formatSyscall(SYS.prctl, [3n, 0n, 0n, 0n, 0n], 1n, m), 'prctl(PR_GET_DUMPABLE) = 1 (SUID_DUMP_USER)');
  t.is(formatCall(SYS.prctl, [38n, 1n, 0n, 0n, 0n], 0n, m), 'prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)');
  t.is(formatCall(SYS.prctl, [1n, 9n, 0n, 0n, 0n], 0n, m), 'prctl(PR_SET_PDEATHSIG, SIGKILL)');
});

test('file system calls: chdir, mkdir, unlink, unlinkat, rename', (t) => {
  const m = new FakeMemory();
  const d = m.str('/tmp/ref/dd');
  t.is(formatSyscall(SYS.chdir, [m.str('/tmp')], 0n, m), 'chdir("/tmp") = 0');
  t.is(formatSyscall(SYS.mkdir, [d, 0o755n], 0n, m), 'mkdir("/tmp/ref/dd", 0755) = 0');
  t.is(formatSyscall(SYS.unlink, [d], err(21), m), 'unlink("/tmp/ref/dd") = -1 EISDIR (Is a directory)');
  t.is(formatSyscall(SYS.unlinkat, [AT_FDCWD, d, 0x200n], 0n, m), 'unlinkat(AT_FDCWD, "/tmp/ref/dd", AT_REMOVEDIR) = 0');
  t.is(formatCall(SYS.rename, [m.str('/a'), m.str('/b')], 0n, m), 'rename("/a", "/b")');
});

test('fcntl, dup, pipe', (t) => {
  const m = new FakeMemory();
  t.is(formatSyscall(SYS.fcntl, [1n, 1n, 0n], 0n, m), 'fcntl(1, F_GETFD) = 0');
  t.is(formatSyscall(SYS.fcntl, [6n, 1n, 0n], 1n, m), 'fcntl(6, F_GETFD) = 0x1 (flags FD_CLOEXEC)');
  t.is(formatSyscall(SYS.fcntl, [1n, 2n, 1n], 0n, m), 'fcntl(1, F_SETFD, FD_CLOEXEC) = 0');
  t.is(formatSyscall(SYS.fcntl, [1n, 3n, 0n], 0x8001n, m), 'fcntl(1, F_GETFL) = 0x8001 (flags O_WRONLY|O_LARGEFILE)');
  t.is(formatSyscall(SYS.fcntl, [1n, 4n, 0xc00n], 0n, m), 'fcntl(1, F_SETFL, O_RDONLY|O_APPEND|O_NONBLOCK) = 0');
  t.is(formatSyscall(SYS.fcntl, [1n, 1030n, 10n], 11n, m), 'fcntl(1, F_DUPFD_CLOEXEC, 10) = 11');
  t.is(formatSyscall(SYS.dup, [1n], 6n, m), 'dup(1) = 6');
  t.is(formatSyscall(SYS.dup2, [3n, 1n], 1n, m), 'dup2(3, 1) = 1');
  t.is(formatSyscall(SYS.dup3, [1n, 21n, 0x80000n], 21n, m), 'dup3(1, 21, O_CLOEXEC) = 21');
  const fds = m.struct(8, (v) => {
    v.setInt32(0, 3, true);
    v.setInt32(4, 4, true);
  });
  t.is(formatSyscall(SYS.pipe2, [fds, 0x80800n], 0n, m), 'pipe2([3, 4], O_NONBLOCK|O_CLOEXEC) = 0');
  t.is(formatSyscall(SYS.pipe, [fds], 0n, m), 'pipe([3, 4]) = 0');
});

test('sockets: socket, connect, sendto, recvfrom, getsockname', (t) => {
  const m = new FakeMemory();
  t.is(formatSyscall(SYS.socket, [2n, 0x80001n, 0n], 3n, m), 'socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_IP) = 3');
  t.is(formatSyscall(SYS.socket, [1n, 2n, 0n], 4n, m), 'socket(AF_UNIX, SOCK_DGRAM, 0) = 4');
  t.is(formatCall(SYS.socket, [16n, 3n, 0n], 5n, m), 'socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE)');
  const sin = m.put(Uint8Array.of(2, 0, 0, 80, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0));
  t.is(formatSyscall(SYS.connect, [3n, sin, 16n], err(111), m), 'connect(3, {sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("127.0.0.1")}, 16) = -1 ECONNREFUSED (Connection refused)');
  const sun = new Uint8Array(110);
  sun[0] = 1;
  sun.set(new TextEncoder().encode('/run/x.sock'), 2);
  t.is(formatCall(SYS.connect, [4n, m.put(sun), 110n], 0n, m), 'connect(4, {sa_family=AF_UNIX, sun_path="/run/x.sock"}, 110)');
  const s6 = new Uint8Array(28);
  s6[0] = 10;
  s6[3] = 53;
  s6[23] = 1;
  t.is(formatCall(SYS.sendto, [5n, m.bytes('ping'), 4n, 0x4040n, m.put(s6), 28n], 4n, m), 'sendto(5, "ping", 4, MSG_DONTWAIT|MSG_NOSIGNAL, {sa_family=AF_INET6, sin6_port=htons(53), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28)');
  t.is(formatSyscall(SYS.recvfrom, [5n, 0x7ffd0000n, 100n, 0x40n, 0n, 0n], err(11), m), 'recvfrom(5, 0x7ffd0000, 100, MSG_DONTWAIT, NULL, NULL) = -1 EAGAIN (Resource temporarily unavailable)');
  t.is(formatSyscall(SYS.recvfrom, [5n, m.bytes('pong'), 100n, 0n, 0n, 0n], 4n, m), 'recvfrom(5, "pong", 100, 0, NULL, NULL) = 4');
  const len = m.struct(4, (v) => v.setUint32(0, 16, true));
  t.is(formatCall(SYS.getsockname, [3n, sin, len], 0n, m), 'getsockname(3, {sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("127.0.0.1")}, [16])');
  const one = m.struct(4, (v) => v.setInt32(0, 1, true));
  t.is(formatCall(SYS.setsockopt, [3n, 1n, 2n, one, 4n], 0n, m), 'setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4)');
});

test('poll, ppoll, select', (t) => {
  const m = new FakeMemory();
  const fds = m.struct(16, (v) => {
    v.setInt32(0, 0, true);
    v.setUint16(4, 1, true);
    v.setUint16(6, 1, true);
    v.setInt32(8, 12, true);
    v.setUint16(12, 6, true);
    v.setUint16(14, 4, true);
  });
  t.is(formatSyscall(SYS.poll, [fds, 2n, 0n], 2n, m), 'poll([{fd=0, events=POLLIN}, {fd=12, events=POLLPRI|POLLOUT}], 2, 0) = 2 ([{fd=0, revents=POLLIN}, {fd=12, revents=POLLOUT}])');
  t.is(formatSyscall(SYS.poll, [fds, 2n, 100n], 0n, m), 'poll([{fd=0, events=POLLIN}, {fd=12, events=POLLPRI|POLLOUT}], 2, 100) = 0 (Timeout)');
  const ts = m.u64(0n, 0n);
  t.is(formatSyscall(SYS.ppoll, [fds, 2n, ts, 0n, 8n], 2n, m), 'ppoll([{fd=0, events=POLLIN}, {fd=12, events=POLLPRI|POLLOUT}], 2, {tv_sec=0, tv_nsec=0}, NULL, 8) = 2 ([{fd=0, revents=POLLIN}, {fd=12, revents=POLLOUT}], left {tv_sec=0, tv_nsec=0})');
  const rd = m.u64(1n);
  const tv = m.u64(0n, 0n);
  t.is(formatSyscall(SYS.select, [1n, rd, 0n, 0n, tv], 1n, m), 'select(1, [0], NULL, NULL, {tv_sec=0, tv_usec=0}) = 1 (in [0], left {tv_sec=0, tv_usec=0})');
});

test('sleeping and clocks', (t) => {
  const m = new FakeMemory();
  const req = m.u64(0n, 1000n);
  t.is(formatSyscall(SYS.nanosleep, [req, 0x7ffc0000n], 0n, m), 'nanosleep({tv_sec=0, tv_nsec=1000}, 0x7ffc0000) = 0');
  const rem = m.u64(0n, 500n);
  t.is(formatSyscall(SYS.nanosleep, [req, rem], err(516), m), 'nanosleep({tv_sec=0, tv_nsec=1000}, {tv_sec=0, tv_nsec=500}) = ? ERESTART_RESTARTBLOCK (Interrupted by signal)');
  t.is(formatSyscall(SYS.clock_nanosleep, [0n, 1n, req, 0n], 0n, m), 'clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, {tv_sec=0, tv_nsec=1000}, NULL) = 0');
  const now = m.u64(8126n, 155114570n);
  t.is(formatSyscall(SYS.clock_gettime, [1n, now], 0n, m), 'clock_gettime(CLOCK_MONOTONIC, {tv_sec=8126, tv_nsec=155114570}) = 0');
  t.is(formatCall(SYS.clock_gettime, [7n, now], 0n, m), 'clock_gettime(CLOCK_BOOTTIME, {tv_sec=8126, tv_nsec=155114570})');
});

test('alignment, prefix, injected results', (t) => {
  const m = new FakeMemory();
  t.is(formatSyscall(SYS.close, [3n], 0n, m, { align: 40 }), 'close(3)' + ' '.repeat(32) + '= 0');
  const long = formatSyscall(SYS.openat, [AT_FDCWD, m.str('/etc/ld.so.cache'), 0x80000n], 3n, m, { align: 40 });
  t.is(long, 'openat(AT_FDCWD, "/etc/ld.so.cache", O_RDONLY|O_CLOEXEC) = 3');
  t.is(formatSyscall(SYS.brk, [0n], 0x1000n, m, { align: 40, prefix: '21697 ' }), '21697 brk(NULL)' + ' '.repeat(25) + '= 0x1000');
  t.is(formatSyscall(SYS.openat, [AT_FDCWD, m.str('/x'), 0n], err(2), m, { injected: true }), 'openat(AT_FDCWD, "/x", O_RDONLY) = -1 ENOENT (No such file or directory) (INJECTED)');
});

test('signal and exit lines', (t) => {
  const info = new Uint8Array(128);
  const v = new DataView(info.buffer);
  v.setInt32(0, 17, true);
  v.setInt32(8, 1, true);
  v.setInt32(16, 8915, true);
  t.is(formatSignalDelivery(info), '--- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=8915, si_uid=0, si_status=0, si_utime=0, si_stime=0} ---');
  const segv = new Uint8Array(128);
  new DataView(segv.buffer).setInt32(0, 11, true);
  new DataView(segv.buffer).setInt32(8, 1, true);
  new DataView(segv.buffer).setBigUint64(16, 0x1000n, true);
  t.is(formatSignalDelivery(segv), '--- SIGSEGV {si_signo=SIGSEGV, si_code=SEGV_MAPERR, si_addr=0x1000} ---');
  t.is(formatExit({ code: 0 }), '+++ exited with 0 +++');
  t.is(formatExit({ signal: 9 }), '+++ killed by SIGKILL +++');
  t.is(formatExit({ signal: 11, coreDumped: true }), '+++ killed by SIGSEGV (core dumped) +++');
});

test('helpers: errno and signal names, IPv6, strings split over regions', (t) => {
  t.is(errnoSymbol(11), 'EAGAIN');
  t.is(errnoSymbol(95), 'EOPNOTSUPP');
  t.is(errnoFromName('EWOULDBLOCK'), 11);
  t.is(errnoFromName('ENOPE'), undefined);
  t.is(signalName(32), 'SIGRTMIN');
  t.is(signalName(64), 'SIGRT_32');
  t.is(signalName(99), '99');
  t.is(signalFromName('TERM'), 15);
  t.is(signalFromName('SIGRT_3'), 35);
  t.is(signalFromName('SIGNOPE'), undefined);
  t.is(formatSigmask(~0n), '~[]');
  const v6 = (...groups: number[]): string => formatIpv6(Uint8Array.from(groups.flatMap((g) => [g >> 8, g & 0xff])));
  t.is(v6(0, 0, 0, 0, 0, 0, 0, 0), '::');
  t.is(v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), '2001:db8::1');
  t.is(v6(0xfe80, 0, 0, 1, 0, 0, 0, 1), 'fe80:0:0:1::1');
  t.is(v6(1, 0, 0, 2, 0, 0, 3, 4), '1::2:0:0:3:4');
  t.is(v6(1, 0, 2, 0, 3, 0, 4, 0), '1:0:2:0:3:0:4:0');
  t.is(v6(0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304), '::ffff:1.2.3.4');
  // A string whose bytes sit in two adjacent regions still reads whole.
  const m = new FakeMemory();
  m.put(new TextEncoder().encode('/usr/'), 0x50000n);
  m.put(new TextEncoder().encode('bin\0'), 0x50005n);
  t.deepEqual(readCString(m, 0x50000n, 4096), { bytes: new TextEncoder().encode('/usr/bin'), complete: true });
  t.is(readCString(m, 0x60000n, 10), null);
  t.deepEqual(readCString(m, 0x50000n, 3), { bytes: new TextEncoder().encode('/us'), complete: false });
});

/**
 * Real strace on `cat FILE`: the openat / read / write / close lines for FILE
 * are rebuilt from what strace printed (numbers only) plus the file's bytes,
 * and must come out the same.
 */
test('agrees with the real strace on cat', (t) => {
  const strace = requireTool('strace', 'strace');
  const cat = requireTool('cat', 'coreutils');
  const dir = mkdtempSync(join(tmpdir(), 'systrap-strace-'));
  try {
    const file = join(dir, 'data.bin');
    const content = Uint8Array.from([...new TextEncoder().encode('hello\tworld\n"quoted" \\ back'), 0, 1, 0x31, 0x7f, 0x80, 0xff, ...new TextEncoder().encode(' and some more text to pass 32 bytes')]);
    writeFileSync(file, content);
    const out = join(dir, 'trace.txt');
    const r = spawnSync(strace, ['-qq', '-e', 'trace=openat,read,write,close', '-o', out, cat, file], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
    // A strace that cannot trace here fails the test too: there is nothing to compare with.
    if (r.status !== 0) {
      const why = (r.error?.message ?? r.stderr).trim().split('\n')[0];
      throw oneLineError(`strace could not trace cat here (${why}): needs a working strace (apt-get install strace) and ptrace allowed`);
    }
    const lines = readFileSync(out, 'utf8').split('\n');
    const m = new FakeMemory();
    const pathAddr = m.str(file);
    const dataAddr = m.put(content);
    const at = lines.findIndex((l) => l.startsWith('openat(') && l.includes(file));
    t.true(at >= 0, 'strace shows the openat of the file');
    const open = lines[at]!;
    const after = lines.slice(at + 1);
    const fd = BigInt(/= (\d+)$/.exec(open)![1]!);
    t.is(formatSyscall(SYS.openat, [AT_FDCWD, pathAddr, 0n], fd, m, { align: 40 }), open);
    const read = after.find((l) => l.startsWith(`read(${fd}, `) && !l.endsWith('= 0')) ?? '';
    const [, count, ret] = /, (\d+)\)\s+= (\d+)$/.exec(read)!;
    t.is(Number(ret), content.length);
    t.is(formatSyscall(SYS.read, [fd, dataAddr, BigInt(count!)], BigInt(ret!), m, { align: 40 }), read);
    const eof = after.find((l) => l.startsWith(`read(${fd}, `) && l.endsWith('= 0')) ?? '';
    t.is(formatSyscall(SYS.read, [fd, dataAddr, BigInt(count!)], 0n, m, { align: 40 }), eof);
    const write = after.find((l) => l.startsWith('write(1, ')) ?? '';
    t.is(formatSyscall(SYS.write, [1n, dataAddr, BigInt(content.length)], BigInt(content.length), m, { align: 40 }), write);
    const close = after.find((l) => l.startsWith(`close(${fd})`)) ?? '';
    t.is(formatSyscall(SYS.close, [fd], 0n, m, { align: 40 }), close);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
