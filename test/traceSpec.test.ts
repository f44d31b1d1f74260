import test from 'ava';
import { SYS } from '../src/abi/syscalls.js';
import { SYSCALL_CLASSES, TRACE_DESC, TRACE_FILE, TRACE_MEMORY, TRACE_NETWORK, TRACE_PROCESS, TRACE_SIGNAL } from '../src/sentry/strace/syscallClasses.js';
import { injectApplies, parseDeny, parseErrno, parseInject } from '../src/sentry/strace/inject.js';
import { parseQualifier } from '../src/sentry/strace/qualifier.js';
import { SyscallSelection, combineTraceSpecs, parseTraceSelection, parseTraceSet } from '../src/sentry/strace/traceSpec.js';

const allNamed = new Set(Object.values(SYS) as number[]);
/** A set's members in ascending order (sets compare by insertion order). */
const sorted = (s: Iterable<number>): number[] => [...s].sort((a, b) => a - b);
/** An inject spec with its syscalls sorted. */
const norm = <T extends { syscalls: Set<number> }>(spec: T): Omit<T, 'syscalls'> & { syscalls: number[] } => ({ ...spec, syscalls: sorted(spec.syscalls) });

test('names, numbers, all and none', (t) => {
  t.deepEqual(sorted(parseTraceSet('openat,close')), sorted([SYS.openat, SYS.close]));
  t.deepEqual(sorted(parseTraceSet('39')), sorted([SYS.getpid]));
  t.deepEqual(sorted(parseTraceSet('all')), sorted(allNamed));
  t.deepEqual(sorted(parseTraceSet('none')), sorted([]));
  t.deepEqual(sorted(parseTraceSet('openat,')), sorted([SYS.openat]), 'a trailing comma is ignored, as in strace');
  t.true(parseTraceSelection('all').has(999), 'all includes numbers without a name');
  t.false(parseTraceSelection('openat').has(999));
});

test('classes, with and without %', (t) => {
  t.deepEqual(sorted(parseTraceSet('%file')), sorted(TRACE_FILE));
  t.deepEqual(sorted(parseTraceSet('file')), sorted(TRACE_FILE), 'the old spelling');
  t.deepEqual(sorted(parseTraceSet('network')), sorted(TRACE_NETWORK));
  t.deepEqual(sorted(parseTraceSet('%net')), sorted(TRACE_NETWORK));
  t.deepEqual(sorted(parseTraceSet('%memory,read')), sorted([...TRACE_MEMORY, SYS.read]));
  t.deepEqual(sorted(parseTraceSet('%%stat')), sorted([SYS.stat, SYS.lstat, SYS.fstat, SYS.newfstatat, SYS.statx]));
  t.deepEqual(sorted(parseTraceSet('%stat')), sorted([SYS.stat]));
  t.deepEqual(sorted(parseTraceSet('stat')), sorted([SYS.stat]), 'bare stat is the syscall');
  t.throws(() => parseTraceSet('creds'), { message: "systrap: invalid system call 'creds'" }, 'creds only with %');
  t.true(parseTraceSet('%creds').has(SYS.setuid));
  t.true(parseTraceSet('%pure').has(SYS.getpid));
});

test('class membership follows strace', (t) => {
  for (const n of ['open', 'openat', 'stat', 'lstat', 'newfstatat', 'statx', 'access', 'faccessat', 'faccessat2', 'execve', 'execveat',
    'chdir', 'mkdir', 'unlink', 'unlinkat', 'readlink', 'readlinkat', 'rename', 'renameat', 'renameat2', 'chmod', 'chown', 'truncate', 'utimensat'] as const) {
    t.true(TRACE_FILE.has(SYS[n]), `%file has ${n}`);
  }
  t.false(TRACE_FILE.has(SYS.read));
  t.false(TRACE_FILE.has(SYS.fstat), 'fstat takes no name');
  for (const n of ['fork', 'vfork', 'clone', 'clone3', 'execve', 'execveat', 'exit', 'exit_group', 'wait4', 'waitid', 'kill', 'tkill', 'tgkill'] as const) {
    t.true(TRACE_PROCESS.has(SYS[n]), `%process has ${n}`);
  }
  for (const n of ['socket', 'connect', 'accept', 'accept4', 'bind', 'listen', 'sendto', 'recvfrom', 'sendmsg', 'recvmsg', 'sendmmsg',
    'recvmmsg', 'shutdown', 'getsockname', 'getpeername', 'socketpair', 'setsockopt', 'getsockopt'] as const) {
    t.true(TRACE_NETWORK.has(SYS[n]), `%network has ${n}`);
  }
  for (const n of ['mmap', 'munmap', 'mprotect', 'mremap', 'brk', 'madvise', 'mlock', 'munlock', 'mlockall', 'msync', 'mincore'] as const) {
    t.true(TRACE_MEMORY.has(SYS[n]), `%memory has ${n}`);
  }
  for (const n of ['rt_sigaction', 'rt_sigprocmask', 'rt_sigreturn', 'sigaltstack', 'kill', 'pause'] as const) t.true(TRACE_SIGNAL.has(SYS[n]));
  for (const n of ['read', 'write', 'close', 'dup', 'fcntl', 'ioctl', 'mmap', 'poll', 'fstat'] as const) t.true(TRACE_DESC.has(SYS[n]));
  t.false(TRACE_DESC.has(SYS.socket), 'as in strace, socket calls are %network only');
  for (const [, set] of SYSCALL_CLASSES) t.true(set.size > 0);
});

test('negation: a leading ! negates the whole set, !name removes', (t) => {
  const sel = parseTraceSelection('!write,read');
  t.true(sel.inverted);
  t.false(sel.has(SYS.write));
  t.false(sel.has(SYS.read));
  t.true(sel.has(SYS.openat));
  t.true(sel.has(999));
  t.is(parseTraceSet('!write,read').size, allNamed.size - 2);
  const files = parseTraceSet('%file,!openat');
  t.true(files.has(SYS.stat));
  t.false(files.has(SYS.openat));
  t.deepEqual(sorted(parseTraceSet('all,!close')), sorted([...allNamed].filter((n) => n !== SYS.close)));
  t.deepEqual(sorted(parseTraceSet('!all')), sorted([]));
  t.deepEqual(sorted(parseTraceSet('!none')), sorted(allNamed));
  t.deepEqual(sorted(parseTraceSet('!%memory')), sorted([...allNamed].filter((n) => !TRACE_MEMORY.has(n))));
});

test('regular expressions and ? for optional entries', (t) => {
  t.deepEqual(sorted(parseTraceSet('/^getp.d$')), sorted([SYS.getpid]));
  t.true(parseTraceSet('/^epoll_').has(SYS.epoll_wait));
  t.deepEqual(sorted(parseTraceSet('?nosuchcall,read')), sorted([SYS.read]));
  t.throws(() => parseTraceSet('/['), { message: /^systrap: invalid regular expression '\['/ });
  t.throws(() => parseTraceSet('/zzzz'), { message: "systrap: invalid system call '/zzzz'" });
});

test('bad trace sets: one-line errors', (t) => {
  t.throws(() => parseTraceSet('foo'), { message: "systrap: invalid system call 'foo'" });
  t.throws(() => parseTraceSet('read,foo'), { message: "systrap: invalid system call 'foo'" });
  t.throws(() => parseTraceSet('%foo'), { message: "systrap: invalid system call '%foo'" });
  t.throws(() => parseTraceSet('!foo'), { message: "systrap: invalid system call 'foo'" });
  t.throws(() => parseTraceSet(''), { message: "systrap: invalid system call ''" });
  t.throws(() => parseTraceSet('!'), { message: "systrap: invalid system call '!'" });
  t.throws(() => parseTraceSet('99999'), { message: "systrap: invalid system call '99999'" });
  // Each must throw (a catch alone would pass silently if one did not), in one line.
  for (const bad of ['foo', '%foo', '', '!', '/[']) {
    const e = t.throws(() => parseTraceSet(bad), undefined, `'${bad}' is refused`);
    t.false(e?.message.includes('\n'), `'${bad}': one line`);
  }
});

test('several -e trace=: last wins, or union', (t) => {
  t.false(combineTraceSpecs(['openat', 'close']).has(SYS.openat));
  t.true(combineTraceSpecs(['openat', 'close']).has(SYS.close));
  const u = combineTraceSpecs(['openat', 'close'], 'union');
  t.true(u.has(SYS.openat) && u.has(SYS.close));
  t.false(u.has(SYS.read));
  const mixed = combineTraceSpecs(['!read,write', 'read'], 'union');
  t.true(mixed.has(SYS.read));
  t.false(mixed.has(SYS.write));
  t.true(mixed.has(999));
  const both = combineTraceSpecs(['!read,write', '!write,close'], 'union');
  t.true(both.has(SYS.read) && both.has(SYS.close));
  t.false(both.has(SYS.write));
  t.true(combineTraceSpecs([]).has(SYS.read), 'no -e trace=: everything');
  t.true(SyscallSelection.all().has(1) && !SyscallSelection.none().has(1));
  t.true(SyscallSelection.none().isEmpty);
});

test('inject: error=, retval=, when=', (t) => {
  t.deepEqual(norm(parseInject('openat:error=ENOENT')), { syscalls: [SYS.openat], error: 2 });
  t.deepEqual(norm(parseInject('openat,open:error=13')), { syscalls: sorted([SYS.openat, SYS.open]), error: 13 });
  t.deepEqual(norm(parseInject('getpid:retval=42')), { syscalls: [SYS.getpid], retval: 42n });
  t.deepEqual(parseInject('getpid:retval=-1').retval, -1n);
  t.deepEqual(parseInject('getpid:retval=0x10').retval, 16n);
  t.deepEqual(parseInject('read:error=EIO:when=3').when, { first: 3, step: 1, last: 3 });
  t.deepEqual(parseInject('read:error=EIO:when=3+').when, { first: 3, step: 1 });
  t.deepEqual(parseInject('read:error=EIO:when=2+2').when, { first: 2, step: 2 });
  t.deepEqual(parseInject('read:error=EIO:when=2..4').when, { first: 2, step: 1, last: 4 });
  t.deepEqual(sorted(parseInject('%network:error=EACCES').syscalls), sorted(TRACE_NETWORK));
  t.deepEqual(parseInject('read:error=ewouldblock').error, 11, 'names are case-insensitive; aliases work');
  t.deepEqual(norm(parseInject('openat', 38)), { syscalls: [SYS.openat], error: 38 }, 'fault= default');
});

test('injectApplies counts calls from 1', (t) => {
  const on = (spec: string): boolean[] => [1, 2, 3, 4, 5].map((n) => injectApplies(parseInject(`read:error=EIO${spec}`).when, n));
  t.deepEqual(on(''), [true, true, true, true, true]);
  t.deepEqual(on(':when=2'), [false, true, false, false, false]);
  t.deepEqual(on(':when=2+'), [false, true, true, true, true]);
  t.deepEqual(on(':when=1+2'), [true, false, true, false, true]);
  t.deepEqual(on(':when=2..3'), [false, true, true, false, false]);
});

test('bad inject values: one-line errors', (t) => {
  t.throws(() => parseInject('openat'), { message: "systrap: invalid inject argument 'openat': needs error= or retval=" });
  t.throws(() => parseInject('openat:error=FOO'), { message: "systrap: invalid inject argument 'openat:error=FOO': unknown errno 'FOO'" });
  t.throws(() => parseInject('openat:error=4096'), { message: /errno 4096 is out of range/ });
  t.throws(() => parseInject('openat:error=0'), { message: /out of range/ });
  t.throws(() => parseInject('openat:retval=5:error=EPERM'), { message: /error= and retval= exclude each other/ });
  t.throws(() => parseInject('openat:error=EPERM:error=ENOENT'), { message: /error= given twice/ });
  t.throws(() => parseInject('openat:error=EPERM:when=0'), { message: /first call must be in 1\.\.65535/ });
  t.throws(() => parseInject('openat:error=EPERM:when=65536'), { message: /first call/ });
  t.throws(() => parseInject('openat:error=EPERM:when=2..1'), { message: /last call/ });
  t.throws(() => parseInject('openat:error=EPERM:when=2+0'), { message: /step/ });
  t.throws(() => parseInject('openat:error=EPERM:when=x'), { message: /bad when=x/ });
  t.throws(() => parseInject('openat:retval=abc'), { message: /retval=abc is not an integer/ });
  t.throws(() => parseInject('openat:signal=SIGKILL'), { message: /signal= is not supported/ });
  t.throws(() => parseInject('openat:frob=1'), { message: /unknown option 'frob=1'/ });
  t.throws(() => parseInject('foo:error=EPERM'), { message: "systrap: invalid system call 'foo'" });
  t.throws(() => parseInject(':error=EPERM'), { message: /no syscall given/ });
});

test('--deny SYSCALL[:ERRNO]', (t) => {
  t.deepEqual(parseDeny('socket'), { sysno: SYS.socket, errno: 1 });
  t.deepEqual(parseDeny('openat:EACCES'), { sysno: SYS.openat, errno: 13 });
  t.deepEqual(parseDeny('openat:2'), { sysno: SYS.openat, errno: 2 });
  t.deepEqual(parseDeny('41'), { sysno: SYS.socket, errno: 1 });
  t.throws(() => parseDeny('nosuch'), { message: "systrap: invalid --deny value 'nosuch': invalid system call 'nosuch'" });
  t.throws(() => parseDeny('openat:ENOPE'), { message: "systrap: invalid --deny value 'openat:ENOPE': unknown errno 'ENOPE'" });
  t.throws(() => parseDeny('a:b:c'), { message: /use SYSCALL\[:ERRNO\]/ });
  t.throws(() => parseDeny(''), { message: /use SYSCALL\[:ERRNO\]/ });
  t.is(parseErrno('EPERM'), 1);
});

test('parseQualifier: trace=, t=, bare sets, inject=, fault=', (t) => {
  const q = parseQualifier('trace=%file');
  t.is(q.kind, 'trace');
  t.true(q.kind === 'trace' && q.selection.has(SYS.openat));
  const bare = parseQualifier('openat');
  t.true(bare.kind === 'trace' && bare.selection.has(SYS.openat) && !bare.selection.has(SYS.read));
  t.true(parseQualifier('t=read').kind === 'trace');
  const inj = parseQualifier('inject=read:error=EIO');
  t.true(inj.kind === 'inject' && inj.spec.error === 5);
  const fault = parseQualifier('fault=read');
  t.true(fault.kind === 'inject' && fault.spec.error === 38);
  t.throws(() => parseQualifier('verbose=all'), { message: 'systrap: -e verbose= is not supported (trace=, inject= and fault= are)' });
  t.throws(() => parseQualifier('frob=1'), { message: "systrap: invalid -e qualifier 'frob'" });
});
