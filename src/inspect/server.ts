import { createServer, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer, type WebSocket } from 'ws';
import type { InspectRecord } from './record.js';

/** The viewer's static files, shipped in the package (nothing from a CDN). */
const VIEWER_DIR = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '../../viewer/' : '../../../viewer/', import.meta.url));

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml' };

/** Options of {@link startInspectorServer}. */
export interface InspectorServerOptions {
  /** Port (0: any free one). Default 8090. */
  port?: number;
  /** Interface. Default 127.0.0.1 (the inspector shows process details: loopback only). */
  host?: string;
}

/** A running inspector server. */
export interface InspectorServer {
  /** `http://host:port/`: the viewer page. */
  readonly url: string;
  readonly port: number;
  /** Adds a record: kept (for late viewers and `/trace.jsonl`) and sent to every viewer. */
  push(r: InspectRecord): void;
  close(): Promise<void>;
}

/**
 * Serves the offline viewer (`viewer/`), the records so far as `/trace.jsonl`, and a WebSocket
 * (`/events`) that sends every record, past ones first. Processes may also connect to
 * `/events` and *send* records (a relay: `systrap inspect` shows another process's runtime).
 *
 * @example
 * ```ts
 * const server = await startInspectorServer({ port: 0 });
 * const rec = new InspectionRecorder((r) => server.push(r));
 * const platform = await createPlatform({ inspect: rec.observer });
 * console.log(`open ${server.url}`);
 * ```
 */
export async function startInspectorServer(options: InspectorServerOptions = {}): Promise<InspectorServer> {
  const host = options.host ?? '127.0.0.1';
  const records: string[] = [];
  const http: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/trace.jsonl') {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.end(records.join('\n') + (records.length ? '\n' : ''));
      return;
    }
    const file = normalize(join(VIEWER_DIR, path === '/' ? 'index.html' : path));
    if (!file.startsWith(VIEWER_DIR)) {
      res.writeHead(403).end();
      return;
    }
    readFile(file).then(
      (body) => {
        res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
        res.end(body);
      },
      () => res.writeHead(404).end('not found'),
    );
  });
  // Listen first: a WebSocketServer attached earlier re-emits the server's 'error' (a port in
  // use) as its own, which nobody handles.
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(options.port ?? 8090, host, () => resolve());
  });
  const wss = new WebSocketServer({ server: http, path: '/events' });
  const push = (line: string, except?: WebSocket) => {
    records.push(line);
    for (const c of wss.clients) if (c !== except && c.readyState === c.OPEN) c.send(line);
  };
  wss.on('connection', (ws) => {
    for (const line of records) ws.send(line);
    // A process relaying its records (one JSON record per message).
    ws.on('message', (data) => {
      const line = data.toString();
      try {
        const r = JSON.parse(line) as { kind?: string };
        if (typeof r.kind === 'string') push(line, ws);
      } catch {
        // not a record: ignored
      }
    });
  });
  const addr = http.address();
  const port = typeof addr === 'object' && addr ? addr.port : (options.port ?? 8090);
  return {
    url: `http://${host}:${port}/`,
    port,
    push: (r) => push(JSON.stringify(r)),
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        http.close(() => resolve());
        http.closeAllConnections?.();
      }),
  };
}
