import type { TraceOptions } from '../protocol.js';
import { fdPath } from '../strace/fdPath.js';
import { StracePrinter } from '../strace/printer.js';
import type { ProcessTable } from './processTable.js';
import type { ThreadGroup } from './threadGroup.js';

/**
 * The kernel's strace printer, answered from its process table: each thread's memory, pid and
 * fds (through its stub's /proc entries), how many threads are traced, the first process.
 *
 * @example
 * ```ts
 * this.strace = tracePrinter(spec.trace, this.table, () => this.root);
 * ```
 */
export function tracePrinter(trace: TraceOptions, table: ProcessTable<ThreadGroup>, root: () => ThreadGroup): StracePrinter {
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
