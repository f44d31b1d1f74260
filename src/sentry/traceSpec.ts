// TEMPORARY placeholder until the trace-spec parser lands.
import { SYS } from '../abi/syscalls.js';
const nr = (n: string): number => { const v = (SYS as Record<string, number>)[n]; if (v === undefined) throw new Error(`invalid system call '${n}'`); return v; };
export function parseTraceSet(v: string): Set<number> { if (v === 'all') return new Set(Object.values(SYS)); return new Set(v.split(',').filter(Boolean).map(nr)); }
export function parseInject(v: string): { syscalls: Set<number>; error?: number; retval?: bigint } {
  const [names, ...rest] = v.split(':'); const out: { syscalls: Set<number>; error?: number; retval?: bigint } = { syscalls: new Set(names.split(',').map(nr)) };
  for (const r of rest) { const [k, x] = r.split('='); if (k === 'error') out.error = Number(x) || 13; if (k === 'retval') out.retval = BigInt(x); }
  return out;
}
export function parseDeny(v: string): { sysno: number; errno: number } { const [n, e] = v.split(':'); return { sysno: nr(n), errno: e ? Number(e) || 13 : 1 }; }
