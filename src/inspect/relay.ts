import { WebSocket } from 'ws';
import type { InspectionEvent } from 'xstate';
import { InspectionRecorder, type InspectRecord } from './record.js';

/**
 * Sends this process's inspection records to a running inspector (`systrap inspect`), so that
 * its viewer shows a platform living in another process. Records made before the socket opens
 * are kept and sent on open.
 *
 * @example
 * ```ts
 * const relay = connectInspector('ws://127.0.0.1:8090/events');
 * const platform = await createPlatform({ inspect: relay.observer });
 * // ...
 * await platform.close();
 * relay.close();
 * ```
 */
export function connectInspector(url: string): { observer: (e: InspectionEvent) => void; close(): void } {
  const ws = new WebSocket(url);
  const queue: string[] = [];
  ws.on('open', () => {
    for (const line of queue.splice(0)) ws.send(line);
  });
  ws.on('error', () => {
    // the viewer is optional: a missing inspector must not break the runtime
  });
  const send = (r: InspectRecord) => {
    const line = JSON.stringify(r);
    if (ws.readyState === ws.OPEN) ws.send(line);
    else if (ws.readyState === ws.CONNECTING) queue.push(line);
  };
  const rec = new InspectionRecorder(send);
  return {
    observer: rec.observer,
    close: () => {
      if (ws.readyState === ws.OPEN) ws.close();
      else ws.terminate();
    },
  };
}
