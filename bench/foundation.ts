/**
 * Foundation benchmarks (issue 2), ratios measured in one run:
 *  1. a syscall into the stub through the syscall thread (shared memory + futex) vs through
 *     ptrace injection (one tracer transaction: attach, inject, detach);
 *  2. newAddressSpace() from the pool vs a fresh stub;
 *  3. as.syscall() vs the raw native round trip underneath (the cost of our actor layer);
 * with native getppid (C, built here) as the absolute reference.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createPlatform, SYS, type PlatformOptions } from '../src/index.js';
import { subprocessOf } from '../src/addressSpace.js';

const quick = process.argv.includes('--quick');
const N = quick ? 500 : 5000;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * µs per call over n sequential calls: the mean (tails included: what a loop pays) and the
 * median (the typical call).
 */
async function timeEach(n: number, fn: () => Promise<unknown> | unknown): Promise<{ mean: number; median: number }> {
  const samples: number[] = [];
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    await fn();
    samples.push(Number(process.hrtime.bigint() - t) / 1000);
  }
  return { mean: Number(process.hrtime.bigint() - t0) / 1000 / n, median: median(samples) };
}

/** Median µs of newAddressSpace() on a platform with these options (each space released). */
async function medianCreateUs(options: PlatformOptions, n: number): Promise<number> {
  const p = await createPlatform(options);
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    const a = await p.newAddressSpace();
    samples.push(Number(process.hrtime.bigint() - t0) / 1000);
    await a.release();
  }
  await p.close();
  return median(samples);
}

function nativeGetppidUs(): number {
  const dir = mkdtempSync(join(tmpdir(), 'systrap-bench-'));
  const exe = join(dir, 'getppid');
  execFileSync('gcc', ['-O2', '-o', exe, fileURLToPath(new URL('./ref/getppid.c', import.meta.url))]);
  return Number(execFileSync(exe, ['2000000'], { encoding: 'utf8' })) / 1000;
}

export async function runFoundation(): Promise<Record<string, number>> {
  const nativeUs = nativeGetppidUs();
  const platform = await createPlatform();
  const as = await platform.newAddressSpace();
  const sp = subprocessOf(as);
  const thread = sp.thread!;
  const msg = thread.msg!;
  const args = new BigUint64Array(6);

  // warm up
  for (let i = 0; i < 200; i++) await as.syscall(SYS.getppid);
  for (let i = 0; i < 20; i++) await as.injectSyscall(SYS.getppid);

  const viaThread = await timeEach(N, () => as.syscall(SYS.getppid));
  const viaInjection = await timeEach(Math.max(100, N / 10), () => as.injectSyscall(SYS.getppid));
  // The raw native round trip as.syscall() sits on, called synchronously (blocking this thread
  // is fine in a benchmark): the difference is our layer (queueing, actor checks, promises).
  const rawSync = await timeEach(N, () => platform.memoryFile.shared.syscallThreadCallSync(msg.range.start, as.pid, SYS.getppid, args, -1));
  await as.release();

  await platform.close();

  // newAddressSpace: pooled (release then reuse) vs fresh (pool disabled). Creation times are
  // medians: a few samples are slowed by GC.
  const fresh = await medianCreateUs({ pool: false }, quick ? 30 : 150);
  const pooledOnly = await medianCreateUs({}, quick ? 50 : 300);

  const r = {
    'native getppid (µs)': nativeUs,
    'as.syscall via syscall thread, mean (µs)': viaThread.mean,
    'as.syscall via syscall thread, median (µs)': viaThread.median,
    'as.injectSyscall via ptrace, mean (µs)': viaInjection.mean,
    'as.injectSyscall via ptrace, median (µs)': viaInjection.median,
    'raw native round trip, sync, mean (µs)': rawSync.mean,
    'raw native round trip, sync, median (µs)': rawSync.median,
    'newAddressSpace pooled (µs)': pooledOnly,
    'newAddressSpace fresh (µs)': fresh,
    'ratio: injection / syscall thread, means (target >= 3)': viaInjection.mean / viaThread.mean,
    'ratio: injection / syscall thread, medians': viaInjection.median / viaThread.median,
    'ratio: pooled / fresh (target <= 0.1)': pooledOnly / fresh,
    'ratio: as.syscall / raw sync, medians (our layer)': viaThread.median / rawSync.median,
    'ratio: as.syscall / native getppid, medians': viaThread.median / nativeUs,
  };
  return r;
}

