import type { TraceOptions } from '../protocol.js';
import { fdPath } from '../strace/fdPath.js';
import type { StracePrinter } from '../strace/printer.js';
import type { ProcessTable } from './processTable.js';
import type { ThreadGroup } from './threadGroup.js';
import { silentPrinter } from './silentPrinter.js';

export { silentPrinter };

/**
 * The kernel's strace printer, answered from its process table: each thread's memory, pid and
 * fds (through its stub's /proc entries), how many threads are traced, the first process. The
 * printer and its decoders are loaded here, only for a run that traces or counts: most runs do
 * neither, and loading them is a good part of the sentry worker's start.
 *
 * @example
 * ```ts
 * this.strace = await tracePrinter(spec.trace, this.table, () => this.root);
 * ```
 */
export async function tracePrinter(trace: TraceOptions, table: ProcessTable<ThreadGroup>, root: () => ThreadGroup): Promise<StracePrinter> {
  if (trace.trace.length === 0 && !trace.summary && !trace.style?.on) return silentPrinter();
  const { StracePrinter } = await import('../strace/printer.js');
  const processOf = (tid: number | undefined): ThreadGroup => table.thread(tid ?? root().tgid)?.process ?? root();
  return new StracePrinter(trace, {
    memOf: (tid) => processOf(tid).mem,
    pidOf: (tid) => table.thread(tid)?.process.tgid ?? tid,
    tracees: () => {
      let n = 0;
      for (const p of table.live()) n += p.tasks.size;
      return n;
    },
    root: () => root().tgid,
    fdPath: (tid, fd) => fdPath(processOf(tid).hostPid, fd),
  });
}
