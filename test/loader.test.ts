import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPlatform, REGISTER_NAMES, SYS, SystrapError, type AddressSpace, type Platform, type Registers } from '../src/index.js';
import { native } from '../src/native.js';
import { parseElf, parseElfHeader, readElf, type ElfInfo } from '../src/sentry/exec/elf.js';
import { EM, ET, PF, PT } from '../src/sentry/exec/elfFormat.js';
import { AT, hostAuxv, parseAuxv } from '../src/sentry/exec/auxv.js';
import { buildStackImage, decodeStackImage } from '../src/sentry/exec/stack.js';
import { ELF_ET_DYN_BASE } from '../src/sentry/exec/layout.js';
import { loadProgram, type LoadedProgram } from '../src/sentry/exec/loader.js';
import { LoaderError } from '../src/sentry/exec/loaderErrors.js';
import { buildFixture } from './fixtures/build.js';
import { childPids, fdTable, maps, requireTool, until } from './helpers.js';

// Static and static-pie programs: the layout fixture (it prints the stub's C layouts as JSON),
// linked both ways. Any C program would do; this one is already there and prints something.
const staticExe = () => buildFixture('layout', ['-static']);
const staticPieExe = () => buildFixture('layout', ['-static-pie']);

const tmp = mkdtempSync(join(tmpdir(), 'systrap-loader-'));
test.after.always(() => rmSync(tmp, { recursive: true, force: true }));

/** A fresh platform and address space, both gone when the test ends. */
async function setup(t: ExecutionContext): Promise<{ platform: Platform; as: AddressSpace }> {
  const platform = await createPlatform();
  let as: AddressSpace | undefined;
  t.teardown(async () => {
    if (as && !as.released) await as.release().catch(() => undefined);
    await platform.close();
  });
  as = await platform.newAddressSpace();
  return { platform, as };
}

/**
 * A non-PIE dynamic program on this machine: ET_EXEC with a PT_INTERP, and a PT_LOAD with bss
 * (memsz beyond filesz), which the tests below rely on. Debian's python3 is one, whatever its
 * version; checked by reading the ELF header directly rather than with the parser under test.
 * The real path: that is the name /proc/PID/maps shows.
 */
let nonPie: string | undefined;
function nonPieDynamic(): string {
  nonPie ??= realpathSync(requireTool('python3', 'python3', { what: 'a non-PIE dynamic ELF with bss, as Debian builds it', test: (p) => isNonPieDynamic(readFileSync(p)) }));
  return nonPie;
}

function isNonPieDynamic(b: Buffer): boolean {
  if (b.length < 64 || b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2 || b.readUInt16LE(16) !== 2) return false;
  const phoff = Number(b.readBigUInt64LE(32));
  const phentsize = b.readUInt16LE(54);
  let interp = false;
  let bss = false;
  for (let i = 0; i < b.readUInt16LE(56); i++) {
    const ph = phoff + i * phentsize;
    if (ph + 56 > b.length) return false;
    const type = b.readUInt32LE(ph);
    if (type === 3) interp = true; // PT_INTERP
    if (type === 1 && b.readBigUInt64LE(ph + 40) > b.readBigUInt64LE(ph + 32)) bss = true; // PT_LOAD, memsz > filesz
  }
  return interp && bss;
}

/** The program headers as readelf prints them: an independent parser to compare with. */
function readelf(path: string): { entry: bigint; type: string; loads: Array<Record<string, bigint | string>>; interp?: string; count: number } {
  const out = execFileSync(requireTool('readelf', 'binutils'), ['-lW', path], { encoding: 'utf8' });
  const loads: Array<Record<string, bigint | string>> = [];
  for (const m of out.matchAll(/^\s+LOAD\s+(0x[0-9a-f]+) (0x[0-9a-f]+) 0x[0-9a-f]+ (0x[0-9a-f]+) (0x[0-9a-f]+) ([RWE ]{3}) (0x[0-9a-f]+)$/gm))
    loads.push({ offset: BigInt(m[1]), vaddr: BigInt(m[2]), filesz: BigInt(m[3]), memsz: BigInt(m[4]), flags: m[5].trim(), align: BigInt(m[6]) });
  return {
    entry: BigInt(/Entry point (0x[0-9a-f]+)/.exec(out)![1]),
    type: /Elf file type is (\w+)/.exec(out)![1],
    loads,
    interp: /Requesting program interpreter: ([^\]]+)\]/.exec(out)?.[1],
    count: Number(/There are (\d+) program headers/.exec(out)![1]),
  };
}

function flagString(flags: number): string {
  return `${flags & PF.R ? 'R' : ' '}${flags & PF.W ? 'W' : ' '}${flags & PF.X ? 'E' : ' '}`.trim();
}

/** Checks our parse of `path` against readelf's. */
function sameAsReadelf(t: ExecutionContext, info: ElfInfo, path: string): void {
  const r = readelf(path);
  t.is(info.header.entry, r.entry, `${path}: entry`);
  t.is(info.header.type, r.type === 'EXEC' ? ET.EXEC : ET.DYN, `${path}: type`);
  t.is(info.programHeaders.length, r.count, `${path}: program header count`);
  t.is(info.interp, r.interp, `${path}: interpreter`);
  t.deepEqual(
    info.loads.map((p) => ({ offset: p.offset, vaddr: p.vaddr, filesz: p.filesz, memsz: p.memsz, flags: flagString(p.flags), align: p.align })),
    r.loads,
    `${path}: PT_LOAD segments`,
  );
}

test('parses /bin/ls (a dynamic PIE) exactly as readelf does', async (t) => {
  const info = parseElf(readFileSync('/bin/ls'), '/bin/ls');
  sameAsReadelf(t, info, '/bin/ls');
  t.is(info.kind, 'dynamic');
  t.is(info.header.type, ET.DYN);
  t.is(info.header.machine, EM.X86_64);
  t.is(info.interp, '/lib64/ld-linux-x86-64.so.2');
  t.false(info.execStack);
  t.is(info.span.start, 0n);
  const phdr = info.programHeaders.find((p) => p.type === PT.PHDR)!;
  t.is(info.phdrVaddr, phdr.vaddr);
  // readElf reads only what it needs through fs; it must agree with a parse of the whole file.
  t.deepEqual(await readElf('/bin/ls'), info);
});

test('parses a static, a static-pie and a non-PIE dynamic binary (python3)', async (t) => {
  const s = await readElf(staticExe());
  sameAsReadelf(t, s, staticExe());
  t.is(s.kind, 'static');
  t.is(s.header.type, ET.EXEC);
  t.is(s.interp, undefined);
  t.true(s.span.start >= 0x400000n);
  // No PT_PHDR in a static binary: the table is found through the PT_LOAD holding its bytes.
  t.is(s.programHeaders.find((p) => p.type === PT.PHDR), undefined);
  t.is(s.phdrVaddr, s.loads[0].vaddr + s.header.phoff - s.loads[0].offset);

  const sp = await readElf(staticPieExe());
  sameAsReadelf(t, sp, staticPieExe());
  t.is(sp.kind, 'static-pie');
  t.is(sp.header.type, ET.DYN);
  t.is(sp.span.start, 0n);

  const python = nonPieDynamic();
  const py = await readElf(python);
  sameAsReadelf(t, py, python);
  t.is(py.header.type, ET.EXEC);
  t.is(py.kind, 'dynamic');
  t.is(py.interp, '/lib64/ld-linux-x86-64.so.2');
  // A PT_LOAD with bss: memsz beyond filesz.
  t.true(py.loads.some((p) => p.memsz > p.filesz));
});

test('a non-ELF file is ENOEXEC; a #! script says so; a short or empty file too', async (t) => {
  const e = t.throws(() => parseElf(readFileSync('/etc/passwd'), '/etc/passwd'), { instanceOf: LoaderError });
  t.is(e.code, 'ENOEXEC');
  t.is(e.errno, -8);
  t.is(e.message, 'ENOEXEC: /etc/passwd is not an ELF file');
  t.regex(t.throws(() => parseElf(Buffer.from('#!/bin/sh\necho hi\n'), 'x.sh')).message, /'#!' script/);
  t.is(t.throws<LoaderError>(() => parseElf(Buffer.alloc(0))).code, 'ENOEXEC');
  t.is(t.throws<LoaderError>(() => parseElf(Buffer.from('\x7fELF'))).code, 'ENOEXEC');
  // The whole file but cut inside the program headers.
  const ls = readFileSync('/bin/ls');
  t.regex(t.throws(() => parseElf(ls.subarray(0, 100), '/bin/ls')).message, /file ends inside the program headers/);
  const err = await t.throwsAsync<LoaderError>(readElf(join(tmp, 'missing')));
  t.is(err.code, 'ENOENT');
});

/** A minimal ELF header, filled by hand. */
function elfHeader(opts: { cls: number; data: number; machine: number; type: number }): Buffer {
  const b = Buffer.alloc(64);
  b.write('\x7fELF', 0, 'latin1');
  b[4] = opts.cls;
  b[5] = opts.data;
  b[6] = 1;
  b.writeUInt16LE(opts.type, 16);
  b.writeUInt16LE(opts.machine, 18);
  b.writeUInt32LE(1, 20);
  b.writeBigUInt64LE(64n, 32); // e_phoff
  b.writeUInt16LE(64, 52); // e_ehsize
  b.writeUInt16LE(56, 54); // e_phentsize
  b.writeUInt16LE(1, 56); // e_phnum
  return b;
}

test('a 32-bit, big-endian or foreign-machine ELF is a wrong-architecture error (EARCH)', async (t) => {
  const i386 = join(tmp, 'i386');
  writeFileSync(i386, elfHeader({ cls: 1, data: 1, machine: EM.I386, type: ET.EXEC }));
  const e = await t.throwsAsync<LoaderError>(readElf(i386));
  t.is(e.code, 'EARCH');
  t.is(e.errno, -8, 'execve answers ENOEXEC for a foreign ELF');
  t.regex(e.message, /32-bit.*i386.*wrong architecture/);
  const arm = t.throws<LoaderError>(() => parseElfHeader(elfHeader({ cls: 2, data: 1, machine: EM.AARCH64, type: ET.DYN }), 'arm'));
  t.is(arm.code, 'EARCH');
  t.regex(arm.message, /AArch64/);
  t.is(t.throws<LoaderError>(() => parseElfHeader(elfHeader({ cls: 2, data: 2, machine: EM.X86_64, type: ET.EXEC }))).code, 'EARCH');
  // Right machine, wrong type: an object file is not executable.
  const rel = t.throws<LoaderError>(() => parseElfHeader(elfHeader({ cls: 2, data: 1, machine: EM.X86_64, type: ET.REL })));
  t.is(rel.code, 'ENOEXEC');
  t.regex(rel.message, /relocatable/);
});

test('the stack image: argc at a 16-aligned sp, argv/envp pointers, auxv, strings above', (t) => {
  const random = Buffer.from('0123456789abcdef');
  const top = 0x7ff000000000n;
  const img = buildStackImage({
    stackTop: top,
    argv: ['prog', 'a b', ''],
    envp: ['HOME=/', 'X=ü'],
    execfn: '/bin/prog',
    auxv: [[AT.PAGESZ, 4096n], [AT.RANDOM, 0n], [AT.EXECFN, 0n], [AT.PLATFORM, 0n]],
    random,
  });
  t.is(img.sp % 16n, 0n);
  t.is(img.sp + BigInt(img.bytes.length), top);
  t.is(img.bytes.readBigUInt64LE(0), 3n, 'argc');
  const d = decodeStackImage(img.bytes, img.sp);
  t.deepEqual(d.argv, ['prog', 'a b', '']);
  t.deepEqual(d.envp, ['HOME=/', 'X=ü']);
  const aux = new Map(d.auxv);
  t.is(aux.get(AT.PAGESZ), 4096n);
  const at = (addr: bigint, len: number) => img.bytes.subarray(Number(addr - img.sp), Number(addr - img.sp) + len);
  t.deepEqual(at(aux.get(AT.RANDOM)!, 16), random);
  t.is(at(aux.get(AT.EXECFN)!, 10).toString(), '/bin/prog\0');
  t.is(at(aux.get(AT.PLATFORM)!, 7).toString(), 'x86_64\0');
  // Kernel order: argv strings lowest, then envp, then execfn, then an 8-byte zero end marker.
  t.true(img.argvAddrs[0] < img.envpAddrs[0] && img.envpAddrs[1] < img.execfnAddr);
  t.is(img.execfnAddr + 10n, top - 8n);
  t.deepEqual([...img.bytes.subarray(-8)], [0, 0, 0, 0, 0, 0, 0, 0]);
  // The tables end below the random bytes, and the random bytes below the strings.
  t.true(img.sp + BigInt(8 * (1 + 4 + 3 + 2 * 5)) <= img.randomAddr);
  t.true(img.randomAddr + 16n <= img.platformAddr && img.platformAddr + 7n <= img.argvAddrs[0]);

  t.is(t.throws<LoaderError>(() => buildStackImage({ stackTop: top, argv: ['x'.repeat(5000)], envp: [], execfn: 'x', auxv: [], random, maxSize: 4096 })).code, 'E2BIG');
  t.is(t.throws<SystrapError>(() => buildStackImage({ stackTop: top, argv: ['a\0b'], envp: [], execfn: 'x', auxv: [], random })).code, 'EINVALIDARG');
  t.is(t.throws<SystrapError>(() => buildStackImage({ stackTop: top + 8n, argv: [], envp: [], execfn: 'x', auxv: [], random })).code, 'EINVALIDARG');
});

/** Permission letters of a PROT_* value as /proc/PID/maps prints them (private mappings). */
function perms(prot: bigint): string {
  return `${prot & 1n ? 'r' : '-'}${prot & 2n ? 'w' : '-'}${prot & 4n ? 'x' : '-'}p`;
}

interface MapLine {
  start: bigint;
  end: bigint;
  perms: string;
  offset: bigint;
  name: string;
}

function mapLines(pid: number): MapLine[] {
  return maps(pid).map((l) => {
    const [range, p, off, , , ...name] = l.split(/\s+/);
    const [s, e] = range.split('-');
    return { start: BigInt('0x' + s), end: BigInt('0x' + e), perms: p, offset: BigInt('0x' + off), name: name.join(' ') };
  });
}

/** Mappings of the application part of the stub (below the stub region). */
function appMaps(pid: number, limit: bigint): MapLine[] {
  return mapLines(pid).filter((m) => m.end <= limit);
}

function readStack(as: AddressSpace, r: LoadedProgram) {
  const bytes = native.processVmReadv(as.pid, r.sp, Number(r.stackTop - r.sp));
  return { bytes, stack: decodeStackImage(bytes, r.sp) };
}

function cStringAt(pid: number, addr: bigint): string {
  const b = native.processVmReadv(pid, addr, 256);
  return b.toString('utf8', 0, b.indexOf(0));
}

test('loads /bin/ls and ld.so into a stub: file mappings with their permissions, and the stack image', async (t) => {
  const { platform, as } = await setup(t);
  const random = Buffer.from('fedcba9876543210');
  const envp = ['PATH=/usr/bin:/bin', 'LANG=C'];
  const r = await loadProgram(as, { path: '/bin/ls', argv: ['ls', '-l', '/'], envp, random });
  const elf = parseElf(readFileSync('/bin/ls'));
  const ld = parseElf(readFileSync('/lib64/ld-linux-x86-64.so.2'));
  const limit = platform.stubRegion.start;

  t.is(r.loadBias, ELF_ET_DYN_BASE);
  t.is(r.interp, '/lib64/ld-linux-x86-64.so.2');
  t.true(r.interpBase > r.loadBias && r.interpBase % 4096n === 0n);
  t.is(r.entry, ld.header.entry + r.interpBase, 'starts in ld.so');
  t.is(r.programEntry, elf.header.entry + r.loadBias);
  t.is(r.sp % 16n, 0n);
  t.true(r.stackTop <= limit && r.stackTop - r.stackSize > r.interpBase);
  const lastLoad = elf.loads[elf.loads.length - 1];
  t.is(r.brkStart, (lastLoad.vaddr + lastLoad.memsz + r.loadBias + 4095n) & ~4095n);

  // /proc/PID/maps: every PT_LOAD of both files, file-backed, at the right offset and permissions.
  const lines = appMaps(as.pid, limit);
  // /proc/PID/maps names the file by its real path: /usr/bin/ls on a merged-/usr Debian.
  const ls = realpathSync('/bin/ls');
  for (const [file, info, bias] of [[ls, elf, r.loadBias], ['ld-linux-x86-64.so.2', ld, r.interpBase]] as const) {
    for (const p of info.loads) {
      const start = ((p.vaddr + bias) & ~4095n);
      const m = lines.find((l) => l.start === start);
      t.truthy(m, `${file}: a mapping at 0x${start.toString(16)}`);
      if (!m) continue;
      t.true(m.name.endsWith(file), `${m.name} is ${file}`);
      t.is(m.offset, p.offset & ~4095n);
      t.is(m.perms, perms((p.flags & PF.R ? 1n : 0n) | (p.flags & PF.W ? 2n : 0n) | (p.flags & PF.X ? 4n : 0n)));
    }
  }
  t.true(lines.some((l) => l.name.endsWith(ls) && l.perms === 'r-xp'));
  t.true(lines.some((l) => l.name.includes('ld-linux') && l.perms === 'r-xp'));
  const stack = lines.find((l) => l.end === r.stackTop)!;
  // Named [stack] as natively: the loader told the kernel where the stack is (PR_SET_MM_MAP).
  t.like(stack, { start: r.stackTop - r.stackSize, perms: 'rw-p', name: '[stack]' });
  // What the loader reports is what is there, and nothing else is (the scratch page is gone).
  t.deepEqual(
    lines.map((l) => [l.start, l.end, l.perms]),
    r.mappings.map((m) => [m.start, m.end, perms(m.prot)]),
  );
  // The loader's fds are closed again.
  t.false(Object.values(fdTable(as.pid)).some((f) => f.includes('ls') || f.includes('ld-linux')));

  // Memory holds the files' bytes: the ELF header at the load bias, the code at the entry point.
  t.deepEqual(native.processVmReadv(as.pid, r.loadBias, 4), Buffer.from('\x7fELF', 'latin1'));
  const entryOff = Number(elf.loads.find((p) => p.vaddr <= elf.header.entry && elf.header.entry < p.vaddr + p.filesz)!.offset +
    elf.header.entry - elf.loads.find((p) => p.vaddr <= elf.header.entry && elf.header.entry < p.vaddr + p.filesz)!.vaddr);
  t.deepEqual(native.processVmReadv(as.pid, r.programEntry, 32), readFileSync('/bin/ls').subarray(entryOff, entryOff + 32));

  // The stack image, read back from the stub.
  const { stack: s } = readStack(as, r);
  t.is(s.argc, 3);
  t.deepEqual(s.argv, ['ls', '-l', '/']);
  t.deepEqual(s.envp, envp);
  const aux = new Map(s.auxv);
  t.is(aux.get(AT.ENTRY), r.programEntry);
  t.is(aux.get(AT.BASE), r.interpBase);
  const phdrSeg = elf.programHeaders.find((p) => p.type === PT.PHDR)!;
  t.is(aux.get(AT.PHDR), phdrSeg.vaddr + r.loadBias);
  t.is(aux.get(AT.PHENT), 56n);
  t.is(aux.get(AT.PHNUM), BigInt(elf.header.phnum));
  t.is(aux.get(AT.PAGESZ), 4096n);
  t.is(aux.get(AT.FLAGS), 0n);
  t.is(aux.get(AT.SECURE), 0n);
  t.is(aux.get(AT.CLKTCK), 100n);
  t.is(aux.get(AT.UID), BigInt(process.getuid!()));
  t.is(aux.get(AT.EGID), BigInt(process.getegid!()));
  t.false(aux.has(AT.SYSINFO_EHDR), 'no vDSO is mapped, so none is announced');
  const node = new Map(parseAuxv(readFileSync('/proc/self/auxv')));
  t.is(aux.get(AT.HWCAP), node.get(AT.HWCAP));
  t.is(aux.get(AT.HWCAP2), node.get(AT.HWCAP2) ?? 0n);
  t.is(aux.get(AT.HWCAP), hostAuxv().hwcap);
  t.deepEqual(native.processVmReadv(as.pid, aux.get(AT.RANDOM)!, 16), random);
  t.is(cStringAt(as.pid, aux.get(AT.EXECFN)!), '/bin/ls');
  t.is(cStringAt(as.pid, aux.get(AT.PLATFORM)!), 'x86_64');
  // The header the program sees at AT_PHDR is its own program header table.
  const table = native.processVmReadv(as.pid, aux.get(AT.PHDR)!, 56);
  t.is(table.readUInt32LE(0), PT.PHDR);
});

test('a non-PIE dynamic program (python3) loads at its link address, ld.so above', async (t) => {
  const { platform, as } = await setup(t);
  const python = nonPieDynamic();
  const r = await loadProgram(as, { path: python, argv: ['python3'], envp: [] });
  const py = parseElf(readFileSync(python));
  t.is(r.loadBias, 0n);
  t.is(r.programEntry, py.header.entry);
  t.true(r.interpBase > 0n);
  const lines = appMaps(as.pid, platform.stubRegion.start);
  // The first segment at its link address, with its own permissions; the code segment r-x.
  const first = py.loads[0];
  const perms = `${first.flags & PF.R ? 'r' : '-'}${first.flags & PF.W ? 'w' : '-'}${first.flags & PF.X ? 'x' : '-'}p`;
  t.true(lines.some((l) => l.start === (first.vaddr & ~4095n) && l.name === python && l.perms === perms), `${python} at 0x${first.vaddr.toString(16)} ${perms}`);
  t.true(lines.some((l) => l.name === python && l.perms === 'r-xp'));
  // The data segment: file-backed up to filesz, zeros after it, anonymous pages for the rest.
  const data = py.loads.find((p) => p.memsz > p.filesz)!;
  const fileEnd = data.vaddr + data.filesz;
  const pageEnd = (fileEnd + 4095n) & ~4095n;
  t.deepEqual(native.processVmReadv(as.pid, fileEnd, Number(pageEnd - fileEnd)), Buffer.alloc(Number(pageEnd - fileEnd)));
  const bss = lines.find((l) => l.start === pageEnd)!;
  t.like(bss, { perms: 'rw-p', name: '' });
  t.is(bss.end, (data.vaddr + data.memsz + 4095n) & ~4095n);
  const file = readFileSync(python);
  t.deepEqual(native.processVmReadv(as.pid, data.vaddr, 4096), file.subarray(Number(data.offset), Number(data.offset) + 4096));
});

/**
 * A tiny sentry, enough for these programs to run to their exit: passes syscalls through to the
 * stub, emulates those that must act on the application thread (arch_prctl FS), the program break
 * (the stub's own brk is not the program's), and writes to fds 1 and 2 (the stub has none).
 */
async function run(platform: Platform, as: AddressSpace, r: LoadedProgram): Promise<{ status: bigint; out: string; calls: number }> {
  const regs = Object.fromEntries(REGISTER_NAMES.map((n) => [n, 0n])) as Registers;
  regs.rip = r.entry;
  regs.rsp = r.sp;
  regs.eflags = 0x202n;
  const ctx = platform.newContext();
  const out: Buffer[] = [];
  let brk = r.brkStart;
  // A broken load can leave the program spinning or blocked on a lock in garbage memory: after
  // 20 s interrupt it, and if that does not end the switch, kill this test's stub (by its pid).
  let killer: NodeJS.Timeout | undefined;
  const watchdog = setTimeout(() => {
    ctx.interrupt();
    killer = setTimeout(() => process.kill(as.pid, 'SIGKILL'), 1000);
  }, 20_000);
  try {
    let ev = await ctx.switchToApp(as, regs);
    for (let calls = 1; calls < 5000; calls++) {
      if (ev.kind !== 'syscall') throw new Error(`${ev.kind} at rip 0x${regs.rip.toString(16)}: ${JSON.stringify(ev, (_, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v))}`);
      const a = ev.args;
      let ret: bigint;
      switch (ev.sysno) {
        case SYS.exit:
        case SYS.exit_group:
          return { status: a[0], out: Buffer.concat(out).toString(), calls };
        case SYS.arch_prctl:
          if (a[0] !== 0x1002n) ret = -22n;
          else {
            regs.fs_base = a[1];
            ret = 0n;
          }
          break;
        case SYS.brk: {
          const lo = (brk + 4095n) & ~4095n;
          const hi = (a[0] + 4095n) & ~4095n;
          if (a[0] > brk && hi > lo) {
            const m = await as.syscall(SYS.mmap, lo, hi - lo, 3n, 0x2n | 0x20n | 0x100000n, -1n, 0n);
            if (m === lo) brk = a[0];
          } else if (a[0] >= r.brkStart && a[0] <= brk) brk = a[0];
          ret = brk;
          break;
        }
        case SYS.write:
          if (a[0] === 1n || a[0] === 2n) {
            out.push(native.processVmReadv(as.pid, a[1], Number(a[2])));
            ret = a[2];
          } else ret = await as.syscall(ev.sysno, ...a);
          break;
        case SYS.close:
          ret = a[0] <= 2n ? 0n : await as.syscall(ev.sysno, ...a);
          break;
        case SYS.rseq:
        case SYS.set_robust_list:
        case SYS.set_tid_address:
          ret = -38n; // ENOSYS: these would act on the stub's syscall thread, not the program's
          break;
        default:
          ret = await as.syscall(ev.sysno, ...a);
      }
      regs.rax = ret;
      ev = await ctx.switchToApp(as, regs);
    }
    throw new Error('the program made too many syscalls');
  } finally {
    clearTimeout(watchdog);
    clearTimeout(killer);
    ctx.release();
  }
}

test('a static binary loads at its link address and runs to exit with the right output', async (t) => {
  const exe = staticExe();
  const { platform, as } = await setup(t);
  const r = await loadProgram(as, { path: exe, argv: ['layout'], envp: ['A=1'] });
  t.is(r.loadBias, 0n);
  t.is(r.interpBase, 0n);
  t.is(r.interp, undefined);
  t.is(r.entry, r.programEntry);
  const info = parseElf(readFileSync(exe));
  t.is(r.entry, info.header.entry);
  const aux = new Map(readStack(as, r).stack.auxv);
  t.is(aux.get(AT.BASE), 0n);
  t.is(aux.get(AT.PHDR), info.phdrVaddr);
  const res = await run(platform, as, r);
  t.is(res.status, 0n);
  t.deepEqual(JSON.parse(res.out), JSON.parse(execFileSync(exe, { encoding: 'utf8' })));
});

test('a static-pie binary loads at the PIE base and runs to exit with the right output', async (t) => {
  const exe = staticPieExe();
  const { platform, as } = await setup(t);
  const r = await loadProgram(as, { path: exe, argv: ['layout'], envp: [] });
  t.is(r.loadBias, ELF_ET_DYN_BASE);
  t.is(r.interpBase, 0n);
  t.is(r.entry, parseElf(readFileSync(exe)).header.entry + ELF_ET_DYN_BASE);
  const res = await run(platform, as, r);
  t.is(res.status, 0n);
  t.deepEqual(JSON.parse(res.out), JSON.parse(execFileSync(exe, { encoding: 'utf8' })));
});

test('/bin/ls runs through ld.so and lists a directory', async (t) => {
  const dir = mkdtempSync(join(tmp, 'ls-'));
  for (const f of ['alpha', 'beta', 'gamma']) writeFileSync(join(dir, f), f);
  const { platform, as } = await setup(t);
  const r = await loadProgram(as, { path: '/bin/ls', argv: ['ls', dir], envp: ['LANG=C'] });
  const res = await run(platform, as, r);
  t.is(res.out, 'alpha\nbeta\ngamma\n');
  t.is(res.status, 0n);
});

test('loader errors: ENOENT, EACCES, ENOEXEC, EINTERP, E2BIG, ENOMEM — and nothing is left mapped', async (t) => {
  const { platform, as } = await setup(t);
  const limit = platform.stubRegion.start;
  const before = appMaps(as.pid, limit);
  const fdsBefore = fdTable(as.pid);
  const load = (path: string, extra: object = {}) => loadProgram(as, { path, argv: [path], envp: [], ...extra });
  const expectClean = (what: string) => {
    t.deepEqual(appMaps(as.pid, limit), before, `${what}: no mapping left behind`);
    t.deepEqual(fdTable(as.pid), fdsBefore, `${what}: no fd left open`);
  };

  let e = await t.throwsAsync<LoaderError>(load(join(tmp, 'nope')));
  t.like(e, { code: 'ENOENT', errno: -2 });
  t.is(e.message, `ENOENT: no such file: ${join(tmp, 'nope')}`);
  expectClean('ENOENT');

  const noexec = join(tmp, 'ls-noexec');
  copyFileSync('/bin/ls', noexec);
  chmodSync(noexec, 0o644);
  e = await t.throwsAsync<LoaderError>(load(noexec));
  t.like(e, { code: 'EACCES', errno: -13 });
  t.regex(e.message, /not executable/);
  e = await t.throwsAsync<LoaderError>(load(tmp));
  t.like(e, { code: 'EACCES' });
  t.regex(e.message, /not a regular file/);
  expectClean('EACCES');

  // A script is followed to its interpreter (shebang.test.ts); one that is missing is ENOENT.
  const script = join(tmp, 'script.sh');
  writeFileSync(script, `#!${join(tmp, 'nope')}\necho hi\n`);
  chmodSync(script, 0o755);
  e = await t.throwsAsync<LoaderError>(load(script));
  t.like(e, { code: 'ENOENT', errno: -2 });
  t.regex(e.message, /'#!' interpreter/);
  const badLine = join(tmp, 'bad-line.sh');
  writeFileSync(badLine, '#!\necho hi\n');
  chmodSync(badLine, 0o755);
  t.like(await t.throwsAsync<LoaderError>(load(badLine)), { code: 'ENOEXEC', errno: -8 });
  const notElf = join(tmp, 'text');
  writeFileSync(notElf, 'hello world, not a program\n');
  chmodSync(notElf, 0o755);
  t.like(await t.throwsAsync<LoaderError>(load(notElf)), { code: 'ENOEXEC' });
  const i386 = join(tmp, 'i386-exe');
  writeFileSync(i386, elfHeader({ cls: 1, data: 1, machine: EM.I386, type: ET.EXEC }));
  chmodSync(i386, 0o755);
  t.like(await t.throwsAsync<LoaderError>(load(i386)), { code: 'EARCH' });
  expectClean('ENOEXEC');

  // A PIE whose interpreter does not exist (same length path, last letter changed).
  const badInterp = join(tmp, 'ls-badinterp');
  const bytes = readFileSync('/bin/ls');
  const at = bytes.indexOf('/lib64/ld-linux-x86-64.so.2\0', 0, 'latin1');
  bytes.write('9', at + '/lib64/ld-linux-x86-64.so.'.length, 'latin1');
  writeFileSync(badInterp, bytes, { mode: 0o755 });
  e = await t.throwsAsync<LoaderError>(load(badInterp));
  t.like(e, { code: 'EINTERP', errno: -2 });
  t.regex(e.message, /interpreter \/lib64\/ld-linux-x86-64\.so\.9/);
  t.is((e.cause as LoaderError).code, 'ENOENT');
  expectClean('EINTERP');

  // Everything is mapped by the time the stack image is built: E2BIG must undo it all.
  e = await t.throwsAsync<LoaderError>(load('/bin/ls', { stackSize: 128n * 1024n, envp: ['X='.padEnd(40000, 'x')] }));
  t.like(e, { code: 'E2BIG', errno: -7 });
  expectClean('E2BIG');

  // A PIE base that would put the program on the stack.
  e = await t.throwsAsync<LoaderError>(load('/bin/ls', { mainBase: limit - (4n << 20n) }));
  t.like(e, { code: 'ENOMEM' });
  expectClean('ENOMEM');

  // After all that the address space still takes a program.
  const r = await load('/bin/ls');
  t.is(r.loadBias, ELF_ET_DYN_BASE);
  // And loading a second program over the first refuses to clobber it.
  t.like(await t.throwsAsync<LoaderError>(load('/bin/ls')), { code: 'ENOMEM' });
});

test('nothing is left running', async (t) => {
  t.true(await until(() => childPids().length === 0, 5000), `children: ${childPids().join(',')}`);
});
