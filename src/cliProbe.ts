import { readdirSync, readFileSync } from 'node:fs';
import { SYS } from './abi/syscalls.js';
import { createPlatform } from './platform.js';

/**
 * `systrap probe`: creates the platform and a stub, runs getpid in it both ways (the syscall
 * thread, ptrace injection), prints the stub region, pids, fds and mappings. Returns 0.
 *
 * @example
 * ```ts
 * process.exitCode = await probe();
 * ```
 */
export async function probe(): Promise<number> {
  const t0 = performance.now();
  const platform = await createPlatform();
  const t1 = performance.now();
  try {
    const as = await platform.newAddressSpace();
    const t2 = performance.now();
    const viaThread = await as.syscall(SYS.getpid);
    const viaPtrace = await as.injectSyscall(SYS.getpid);
    const region = platform.stubRegion;
    console.log(`stub region     ${region.start.toString(16)}-${region.end.toString(16)} (in Node and every stub)`);
    console.log(`source stub     pid ${platform.sourcePid} (platform ready in ${(t1 - t0).toFixed(1)} ms)`);
    console.log(`address space   pid ${as.pid} (created in ${(t2 - t1).toFixed(1)} ms)`);
    console.log(`getpid          ${viaThread} via the syscall thread, ${viaPtrace.ret} via ptrace injection`);
    console.log(`stub fds        ${readdirSync(`/proc/${as.pid}/fd`).join(' ')}`);
    console.log('stub mappings');
    for (const line of readFileSync(`/proc/${as.pid}/maps`, 'utf8').trim().split('\n')) console.log(`  ${line}`);
    await as.release();
    return 0;
  } finally {
    await platform.close();
  }
}
