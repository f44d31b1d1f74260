/**
 * The sentry's mailbox (src/sentry/kernel/mailbox.ts): notices (a process's end, actor events)
 * wait for the host's idle moment, requests go at once and ahead of the notices held, so that
 * a fork's request never waits behind the actor work of a child's end on the main thread.
 */
import test from 'ava';
import { MessageChannel, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { Mailbox } from '../src/sentry/kernel/mailbox.js';
import type { SentryRequest } from '../src/sentry/protocol.js';

function mailbox() {
  const { port1, port2 } = new MessageChannel();
  const fail = (m: string): never => {
    throw new Error(m);
  };
  const mb = new Mailbox(port1, new SharedArrayBuffer(4), { onThreads: () => undefined, onSignal: () => undefined, onFailedRequest: fail, onStubDead: () => undefined });
  return { mb, port: port2, close: () => (port1.close(), port2.close()) };
}

/** Every message the main thread's side has received so far, by type (and pid). */
function received(port: MessagePort): string[] {
  const out: string[] = [];
  for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) {
    const r = m.message as SentryRequest;
    out.push('pid' in r ? `${r.type} ${r.pid}` : r.type);
  }
  return out;
}

test('notices wait for flushNotices; a request goes at once, then the notices held, in their order', (t) => {
  const { mb, port, close } = mailbox();
  try {
    mb.post({ type: 'processExit', pid: 5 });
    mb.post({ type: 'processEvent', pid: 5, parent: 2, event: 'EXIT', status: 0 });
    t.deepEqual(received(port), [], 'notices are held');
    mb.request({ type: 'fork', pid: 2 }, 'forked', () => undefined);
    t.deepEqual(received(port), ['fork 2', 'processExit 5', 'processEvent 5'], 'the request first, then the notices held');
    mb.post({ type: 'contextExit', pid: 7, id: 3 });
    mb.post({ type: 'needThread', pid: 7 });
    t.deepEqual(received(port), ['needThread 7', 'contextExit 7']);
    mb.post({ type: 'contextEvent', pid: 7, id: 4, event: 'syscall', sysno: 0 });
    mb.flushNotices();
    t.deepEqual(received(port), ['contextEvent 7'], 'the idle moment sends them');
    mb.flushNotices();
    t.deepEqual(received(port), [], 'each once');
  } finally {
    close();
  }
});

test('a host that never idles still sends its notices: at most 64 are held', (t) => {
  const { mb, port, close } = mailbox();
  try {
    for (let i = 1; i < 64; i++) mb.post({ type: 'processExit', pid: i });
    t.deepEqual(received(port), []);
    mb.post({ type: 'processExit', pid: 64 });
    const got = received(port);
    t.is(got.length, 64);
    t.deepEqual(got.slice(0, 2), ['processExit 1', 'processExit 2']);
    t.is(got[63], 'processExit 64');
  } finally {
    close();
  }
});

test("a fork child the main thread has not heard of yet: a request after it waits for it (the request may name the child)", (t) => {
  const { mb, port, close } = mailbox();
  try {
    mb.post({ type: 'processExit', pid: 5 });
    mb.post({ type: 'forkedHere', pid: 2, child: 9, hostPid: 1009, nsPid: 9, fd: 40, first: { slot: 1, state: 1 }, mainId: 0 });
    mb.post({ type: 'firstThread', pid: 9, ret: 1010n });
    t.deepEqual(received(port), [], 'held');
    mb.post({ type: 'needThread', pid: 9 });
    t.deepEqual(received(port), ['processExit 5', 'forkedHere 2', 'firstThread 9', 'needThread 9'], 'in order: the child first');
  } finally {
    close();
  }
});
