import { native } from '../native.js';

/**
 * The observe-only trace ring's layouts (native/stub/sysmsg.h `struct trace_ring`,
 * `trace_record`, `trace_capture`, `trace_spec`; test/layout.test.ts checks them against the C).
 * The stub makes an observed call itself and appends a record of it; the sentry drains the ring
 * (src/sentry/kernel/traceRing.ts) and decodes the records as if the calls had trapped.
 *
 * @example
 * ```ts
 * const ringAddr = region.start + BigInt(TRACE_RING.offset);
 * ```
 */
export const TRACE_RING = {
  /** Offset of the header page in the stub region (right after the ThreadContext slots). */
  offset: native.stubAbi.STUB_TRACE_RING_OFFSET,
  /** Bytes of the data area (records), after the header page. */
  dataSize: native.stubAbi.STUB_TRACE_RING_DATA,
  /** Header page plus data. */
  size: native.stubAbi.STUB_TRACE_RING_SIZE,
  head: 0,
  tail: 64,
  waiters: 128,
  fullWaits: 132,
  records: 136,
  faults: 140,
  /** Calls not recorded because head or tail was out of line (the program wrote over them). */
  lost: 144,
  /** Where the data area starts, from the header. */
  data: 4096,
} as const;

/** `struct trace_record`: a record's header; captures follow it. */
export const TRACE_RECORD = {
  size: 0,
  kind: 4,
  context: 8,
  sysno: 12,
  args: 16,
  ret: 64,
  entryNs: 72,
  exitNs: 80,
  /** The program's rip past its `syscall` when the call came by a signal, 0 from a patched site. */
  site: 88,
  /** Bytes of the header. */
  headerSize: 96,
} as const;

/** TRACE_RECORD.kind values: 0 while the stub writes the record. */
export const TraceRecordKind = { Writing: 0, Call: 1, Pad: 2 } as const;

/** `struct trace_capture`: an argument's bytes follow it (`room` of them). */
export const TRACE_CAPTURE = { addr: 0, len: 8, room: 12, headerSize: 16 } as const;

/** `struct trace_spec`, the rules area's last 2 KiB (read-only in the stub). */
export const TRACE_SPEC = {
  /** Offset in the rules area. */
  offset: native.stubAbi.STUB_TRACE_SPEC_OFFSET,
  magic: 0,
  flags: 4,
  dataSize: 8,
  calls: 16,
  /** Entries in `calls`: the syscall numbers the ring can take. */
  count: 508,
  size: 2048,
  /** The value of `magic` that turns the ring on. */
  MAGIC: 0x474e5254,
  /** flags: record entry and exit times (CLOCK_MONOTONIC). */
  TIMES: 1,
} as const;

/** What the stub copies of an argument (a spec entry's 4 bits per argument). */
export const TraceCapture = { None: 0, Str: 1, OutRet: 2, Stat: 3, Statx: 4, Utsname: 5, Statfs: 6, Fds: 7, Sysinfo: 8 } as const;

/** When a call goes through the ring (a spec entry's bits 24..27; the argument looked at in 28..30). */
export const TraceWhen = { Never: 0, Always: 1, NonblockingOpen: 2, PlainFcntl: 3, Clear: 4, Mmap: 5 } as const;
