// TEMPORARY placeholder until the decoder lands.
import { syscallName } from '../abi/syscalls.js';
export interface MemoryReader { read(addr: bigint, len: number): Uint8Array | null }
export function formatSyscall(sysno: number, args: readonly bigint[], ret: bigint | undefined, _mem: MemoryReader): string {
  return `${syscallName(sysno)}(${args.map((a) => '0x' + a.toString(16)).join(', ')}) = ${ret === undefined ? '?' : ret}`;
}
