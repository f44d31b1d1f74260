import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { startInspectorServer } from './inspect/server.js';
import type { InspectRecord } from './inspect/record.js';
import { INSPECT_USAGE } from './cliUsage.js';

/**
 * `systrap inspect [--port N] [TRACE.jsonl]`: the inspector server alone, until SIGINT/SIGTERM.
 *
 * @example
 * ```ts
 * process.exitCode = await inspect(['--port', '9000', 'run.jsonl']);
 * ```
 */
export async function inspect(argv: string[]): Promise<number> {
  let port = 8090;
  let trace: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h' || a === '--help') {
      console.log(INSPECT_USAGE);
      return 0;
    }
    if (a === '--port' || a.startsWith('--port=')) {
      port = Number(a === '--port' ? argv[++i] : a.slice(7));
      if (!Number.isInteger(port) || port < 0 || port > 65535) {
        console.error("systrap: --port needs a port number\nTry 'systrap inspect --help' for more information.");
        return 1;
      }
    } else if (a.startsWith('-')) {
      console.error(`systrap: unrecognized option '${a}'\nTry 'systrap inspect --help' for more information.`);
      return 1;
    } else trace = a;
  }
  let records: InspectRecord[] = [];
  if (trace !== undefined) {
    try {
      records = readFileSync(trace, 'utf8')
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l) as InspectRecord);
    } catch (e) {
      console.error(`systrap: cannot read ${trace}: ${(e as Error).message}`);
      return 1;
    }
  }
  // A recording is not a running program: the page must not call it live.
  const server = await startInspectorServer({ port, ...(trace !== undefined ? { mode: 'replay' as const, source: basename(trace) } : {}) });
  for (const r of records) server.push(r);
  console.error(`systrap: inspector at ${server.url}${trace ? ` (replaying ${trace})` : ` (processes may send records to ws://127.0.0.1:${server.port}/events)`}`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
  return 0;
}
