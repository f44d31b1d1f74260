import { abi } from '../abi/stub.js';
import { Errors } from '../errors.js';

/**
 * One call of a STUB_REQUEST_BATCH: a syscall, and optionally the result without which the
 * batch stops there.
 *
 * @example
 * ```ts
 * const call: BatchCall = { sysno: SYS.munmap, args: [addr, len], expect: 0n };
 * ```
 */
export interface BatchCall {
  sysno: number;
  /** Up to six arguments (missing ones are 0). */
  args?: readonly bigint[];
  /** The batch goes on past this call only if it returns this. */
  expect?: bigint;
}

/**
 * Writes a batch's entries into the request page of a syscall thread's message (`msg`: a view
 * of its two pages), where the loop reads them (see stub_abi.h). Precondition: the writer holds
 * the loop (see SyscallThreadLock) and 1..SYSMSG_BATCH_MAX calls.
 *
 * @example
 * ```ts
 * writeBatch(msg, calls); const ran = call(abi.STUB_REQUEST_BATCH, [BigInt(calls.length)]);
 * ```
 */
export function writeBatch(msg: DataView, calls: readonly BatchCall[]): void {
  calls.forEach((c, i) => {
    const at = abi.SYSMSG_BATCH + i * abi.SYSMSG_BATCH_ENTRY;
    msg.setUint32(at, c.sysno, true);
    msg.setUint32(at + 4, c.expect === undefined ? 0 : abi.SYSMSG_BATCH_STOP, true);
    for (let a = 0; a < 6; a++) msg.setBigUint64(at + 8 + a * 8, BigInt.asUintN(64, c.args?.[a] ?? 0n), true);
    msg.setBigUint64(at + 56, BigInt.asUintN(64, c.expect ?? 0n), true);
  });
}

/**
 * The results of the `ran` calls the loop says it ran of a batch of `count` (written by the
 * stub: untrusted; a count it could not have run is EPROTOCOL for stub `pid`).
 *
 * @example
 * ```ts
 * const results = readBatch(msg, ran, calls.length, pid);
 * ```
 */
export function readBatch(msg: DataView, ran: bigint, count: number, pid: number): bigint[] {
  if (ran < 1n || ran > BigInt(count)) throw Errors.ForgedReply('batch', ran, `a count of 1..${count}`, pid);
  const out: bigint[] = [];
  for (let i = 0; i < Number(ran); i++) out.push(msg.getBigInt64(abi.SYSMSG_BATCH_RESULTS + i * 8, true));
  return out;
}
