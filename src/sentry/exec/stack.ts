import { Errors, SystrapError } from '../../errors.js';
import { hex, roundDown } from './addresses.js';
import { AT, type AuxEntry } from './auxv.js';
import { LoaderErrors } from './loaderErrors.js';

/**
 * The initial process stack, as Linux's create_elf_tables() lays it out (addresses descending):
 *
 * ```
 * stackTop        8 zero bytes (end marker)
 *                 execfn string                      <- AT_EXECFN
 *                 envp strings, envp[0] lowest
 *                 argv strings, argv[0] lowest
 *                 (align 16) "x86_64\0"             <- AT_PLATFORM
 *                 (align 16) 16 random bytes         <- AT_RANDOM
 *                 (padding)
 *                 auxv pairs …, AT_NULL 0
 *                 envp[0..n-1], NULL
 *                 argv[0..n-1], NULL
 * sp (16-aligned) argc
 * ```
 *
 * The System V x86-64 ABI wants %rsp 16-byte aligned at process entry with argc at (%rsp); the
 * C runtime's _start relies on it.
 */

/**
 * How many random bytes AT_RANDOM points to (glibc seeds its stack protector and pointer guard
 * with them).
 *
 * @example
 * ```ts
 * const random = randomBytes(RANDOM_SIZE);
 * ```
 */
export const RANDOM_SIZE = 16;

/** The System V x86-64 ABI's stack alignment at process entry. */
const STACK_ALIGN = 16n;

/** Bytes of one stack word (argc, a pointer, an auxv half). */
const WORD = 8;

/** The zero word at the very top of the stack, above the strings (Linux leaves it too). */
const END_MARKER_SIZE = 8n;

/** Linux's ELF_PLATFORM on x86-64, the default AT_PLATFORM string. */
const PLATFORM = 'x86_64';

/**
 * What {@link buildStackImage} lays out.
 *
 * @example
 * ```ts
 * const input: StackImageInput = { stackTop, argv: ['sh'], envp: [], execfn: '/bin/sh', auxv: [], random };
 * ```
 */
export interface StackImageInput {
  /** Exclusive end of the stack mapping; a multiple of 16. */
  stackTop: bigint;
  argv: readonly string[];
  envp: readonly string[];
  /** The AT_EXECFN string (the path given to execve). */
  execfn: string;
  /**
   * auxv in the order to write (AT_NULL is appended). Entries of type AT_RANDOM, AT_EXECFN and
   * AT_PLATFORM point into the image: their values are filled in here (pass 0n).
   */
  auxv: readonly AuxEntry[];
  /** The RANDOM_SIZE (16) bytes AT_RANDOM points to. */
  random: Uint8Array;
  /** The AT_PLATFORM string. Default 'x86_64'. */
  platform?: string;
  /** Largest image allowed, in bytes (E2BIG above). Default: no limit. */
  maxSize?: number;
}

/**
 * The stack image and where its parts landed.
 *
 * @example
 * ```ts
 * const { sp, bytes }: StackImage = buildStackImage(input);
 * ```
 */
export interface StackImage {
  /** Initial %rsp: 16-byte aligned, points to argc. */
  sp: bigint;
  /** The bytes of [sp, stackTop), ready to be written at sp. */
  bytes: Buffer;
  argvAddrs: bigint[];
  envpAddrs: bigint[];
  execfnAddr: bigint;
  platformAddr: bigint;
  randomAddr: bigint;
  /** The auxv as written (pointer entries resolved), AT_NULL excluded. */
  auxv: AuxEntry[];
}

function cString(s: string, what: string): Buffer {
  if (s.includes('\0')) throw Errors.InvalidArg(`${what} contains a NUL character`);
  return Buffer.from(s + '\0', 'utf8');
}

/**
 * Builds the initial stack image of a new process. Pure: no kernel needed.
 *
 * Preconditions: `stackTop` is a multiple of 16; no string contains NUL; `random` is 16 bytes;
 * `auxv` holds no AT_NULL.
 *
 * @throws SystrapError `EINVALIDARG` when a precondition fails; LoaderError `E2BIG` when the
 * image is larger than `maxSize`.
 *
 * @example
 * ```ts
 * const img = buildStackImage({
 *   stackTop: 0x7ff000000000n, argv: ['ls', '-l'], envp: ['HOME=/'], execfn: '/bin/ls',
 *   auxv: [[AT.PAGESZ, 4096n], [AT.RANDOM, 0n]], random: randomBytes(16),
 * });
 * native.processVmWritev(pid, img.sp, img.bytes); // then start the thread with rsp = img.sp
 * ```
 */
export function buildStackImage(input: StackImageInput): StackImage {
  checkInput(input);
  const strings: ImageStrings = {
    argv: input.argv.map((s, i) => cString(s, `argv[${i}]`)),
    envp: input.envp.map((s, i) => cString(s, `envp[${i}]`)),
    execfn: cString(input.execfn, 'execfn'),
    platform: cString(input.platform ?? PLATFORM, 'platform'),
  };
  const at = placeStrings(input.stackTop, strings);
  const auxv: AuxEntry[] = input.auxv.map(([type, value]) => {
    if (type === AT.RANDOM) return [type, at.randomAddr];
    if (type === AT.EXECFN) return [type, at.execfnAddr];
    if (type === AT.PLATFORM) return [type, at.platformAddr];
    return [type, value];
  });
  // argc; argv and its NULL; envp and its NULL; the auxv pairs and the AT_NULL pair.
  const words = 1 + input.argv.length + 1 + input.envp.length + 1 + 2 * (auxv.length + 1);
  // The tables go below the random bytes, the lowest thing placed so far.
  const sp = roundDown(at.randomAddr - BigInt(words * WORD), STACK_ALIGN);
  const size = Number(input.stackTop - sp);
  if (input.maxSize !== undefined && size > input.maxSize) throw LoaderErrors.TooBig(size, input.maxSize);

  const bytes = Buffer.alloc(size);
  writeTables(bytes, at, auxv);
  const put = (addr: bigint, b: Uint8Array) => bytes.set(b, Number(addr - sp));
  strings.argv.forEach((b, i) => put(at.argvAddrs[i], b));
  strings.envp.forEach((b, i) => put(at.envpAddrs[i], b));
  put(at.execfnAddr, strings.execfn);
  put(at.platformAddr, strings.platform);
  put(at.randomAddr, input.random);
  return { sp, bytes, ...at, auxv };
}

function checkInput(input: StackImageInput): void {
  const { stackTop } = input;
  if (typeof stackTop !== 'bigint' || stackTop % STACK_ALIGN !== 0n || stackTop <= 0n)
    throw Errors.InvalidArg('stackTop must be a positive multiple of 16');
  if (!(input.random instanceof Uint8Array) || input.random.length !== RANDOM_SIZE)
    throw Errors.InvalidArg('random must be 16 bytes');
  for (const [type] of input.auxv) if (type === AT.NULL) throw Errors.InvalidArg('auxv must not contain AT_NULL');
}

/** The strings of the image, NUL-terminated. */
interface ImageStrings {
  argv: Buffer[];
  envp: Buffer[];
  execfn: Buffer;
  platform: Buffer;
}

/** Where the strings and the random bytes go. */
interface StringAddrs {
  argvAddrs: bigint[];
  envpAddrs: bigint[];
  execfnAddr: bigint;
  platformAddr: bigint;
  randomAddr: bigint;
}

/** Places the strings and the random bytes top-down below `stackTop`, as the kernel does. */
function placeStrings(stackTop: bigint, strings: ImageStrings): StringAddrs {
  // End marker, execfn, envp strings, argv strings.
  let p = stackTop - END_MARKER_SIZE;
  p -= BigInt(strings.execfn.length);
  const execfnAddr = p;
  const place = (strs: Buffer[]): bigint[] => {
    const total = strs.reduce((n, b) => n + b.length, 0);
    p -= BigInt(total);
    let a = p;
    return strs.map((b) => {
      const at = a;
      a += BigInt(b.length);
      return at;
    });
  };
  const envpAddrs = place(strings.envp);
  const argvAddrs = place(strings.argv);
  p = roundDown(p, STACK_ALIGN);
  p -= BigInt(strings.platform.length);
  const platformAddr = p;
  p = roundDown(p - BigInt(RANDOM_SIZE), STACK_ALIGN);
  return { argvAddrs, envpAddrs, execfnAddr, platformAddr, randomAddr: p };
}

/** Writes argc, argv, envp and the auxv (with its AT_NULL) from the start of `bytes` (at sp). */
function writeTables(bytes: Buffer, at: StringAddrs, auxv: readonly AuxEntry[]): void {
  let w = 0;
  const word = (v: bigint) => {
    bytes.writeBigUInt64LE(v, w);
    w += WORD;
  };
  word(BigInt(at.argvAddrs.length));
  for (const a of at.argvAddrs) word(a);
  word(0n);
  for (const a of at.envpAddrs) word(a);
  word(0n);
  for (const [type, value] of auxv) {
    word(BigInt(type));
    word(value);
  }
  word(BigInt(AT.NULL));
  word(0n);
}

/**
 * A decoded initial stack.
 *
 * @example
 * ```ts
 * const { argc, argv, envp, auxv }: DecodedStack = decodeStackImage(bytes, sp);
 * ```
 */
export interface DecodedStack {
  argc: number;
  argv: string[];
  envp: string[];
  /** AT_NULL excluded. */
  auxv: AuxEntry[];
  argvAddrs: bigint[];
  envpAddrs: bigint[];
}

/**
 * Decodes an initial stack image (the inverse of {@link buildStackImage}), e.g. read back from a
 * stub with processVmReadv. Every pointer is checked against the buffer: the memory came from a
 * process that may have scribbled on it.
 *
 * Preconditions: `bytes` are the memory from `sp` upwards (to the stack top, or at least past
 * the last string).
 *
 * @throws SystrapError `ECORRUPT` when a count, pointer or string leaves the buffer.
 *
 * @example
 * ```ts
 * const bytes = native.processVmReadv(as.pid, r.sp, Number(r.stackTop - r.sp));
 * const { argv, auxv } = decodeStackImage(bytes, r.sp);
 * ```
 */
export function decodeStackImage(bytes: Uint8Array, sp: bigint): DecodedStack {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const corrupt = (why: string) => new SystrapError('ECORRUPT', `initial stack at ${hex(sp)}: ${why}`);
  let o = 0;
  const word = (): bigint => {
    if (o + WORD > buf.length) throw corrupt('tables run past the buffer');
    const v = buf.readBigUInt64LE(o);
    o += WORD;
    return v;
  };
  const str = (addr: bigint): string => {
    const at = addr - sp;
    if (at < 0n || at >= BigInt(buf.length)) throw corrupt(`string pointer ${hex(addr)} is outside the image`);
    const start = Number(at);
    const end = buf.indexOf(0, start);
    if (end < 0) throw corrupt('unterminated string');
    return buf.toString('utf8', start, end);
  };
  const argc64 = word();
  if (argc64 > BigInt(buf.length / WORD)) throw corrupt(`argc ${argc64} is impossible`);
  const argc = Number(argc64);
  const argvAddrs: bigint[] = [];
  for (let i = 0; i < argc; i++) argvAddrs.push(word());
  if (word() !== 0n) throw corrupt('argv is not NULL-terminated');
  const envpAddrs: bigint[] = [];
  for (let v = word(); v !== 0n; v = word()) envpAddrs.push(v);
  const auxv: AuxEntry[] = [];
  for (;;) {
    const type = word();
    const value = word();
    if (type === BigInt(AT.NULL)) break;
    auxv.push([Number(type), value]);
  }
  return { argc, argv: argvAddrs.map(str), envp: envpAddrs.map(str), auxv, argvAddrs, envpAddrs };
}
