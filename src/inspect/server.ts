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
  /**
   * What the records are, as the page's badge says: `live` (a running program, default),
   * `replay` (a recording read from a file: nothing more will come), `ended` (the program is
   * over; the server stays for the page). Changed later with {@link InspectorServer.setMode}.
   */
  mode?: InspectorMode;
  /** With `replay`: what is replayed (a file name), shown in the page's header. */
  source?: string;
}

/**
 * What an inspector server serves: see {@link InspectorServerOptions.mode}.
 *
 * @example
 * ```ts
 * const server = await startInspectorServer({ port: 0, mode: 'replay', source: 'run.jsonl' });
 * ```
 */
export type InspectorMode = 'live' | 'replay' | 'ended';

/**
 * The server's first message on every WebSocket, and its message when its mode changes. Not a
 * record: it is not kept, nor part of `/trace.jsonl`.
 *
 * @example
 * ```ts
 * ws.on('message', (d) => { const m = JSON.parse(String(d)); if (m.kind === 'hello') badge(m.mode); });
 * ```
 */
export interface InspectorHello {
  kind: 'hello';
  mode: InspectorMode;
  source?: string;
}

/** A running inspector server. */
export interface InspectorServer {
  /** `http://host:port/`: the viewer page. */
  readonly url: string;
  readonly port: number;
  /** Adds a record: kept (for late viewers and `/trace.jsonl`) and sent to every viewer. */
  push(r: InspectRecord): void;
  /** Tells every page what the records are now (a program that ended: `ended`). */
  setMode(mode: InspectorMode): void;
  /** WebSocket clients connected so far (viewers, and processes relaying records). */
  readonly connections: number;
  /** Resolves when a WebSocket client has connected (at once if one already has). */
  connected(): Promise<void>;
  /**
   * Stops serving. Open pages get a WebSocket close after the records already sent (they keep
   * them on screen); one that does not answer within a second is cut.
   */
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
  let hello: InspectorHello = { kind: 'hello', mode: options.mode ?? 'live', ...(options.source !== undefined ? { source: options.source } : {}) };
  let connections = 0;
  let onConnection: (() => void) | undefined;
  const firstConnection = new Promise<void>((resolve) => (onConnection = resolve));
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
    connections++;
    onConnection?.();
    ws.send(JSON.stringify(hello));
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
    setMode: (mode) => {
      hello = { ...hello, mode };
      const line = JSON.stringify(hello);
      for (const c of wss.clients) if (c.readyState === c.OPEN) c.send(line);
    },
    get connections() {
      return connections;
    },
    connected: () => firstConnection,
    close: () => closeServer(http, wss),
  };
}

/**
 * Closes the WebSocket clients politely (a close frame after the records already queued, so a
 * page of a short run still gets them all), then the HTTP server.
 */
async function closeServer(http: Server, wss: WebSocketServer): Promise<void> {
  const clients = [...wss.clients];
  await Promise.all(
    clients.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.readyState === c.CLOSED) return resolve();
          const cut = setTimeout(() => (c.terminate(), resolve()), 1000);
          c.once('close', () => (clearTimeout(cut), resolve()));
          c.close(1001, 'inspector closing');
        }),
    ),
  );
  wss.close();
  await new Promise<void>((resolve) => {
    http.close(() => resolve());
    http.closeAllConnections?.();
  });
}
