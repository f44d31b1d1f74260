import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import type { SentryMail, SentryRequest } from '../protocol.js';
import type { WatchedWord } from '../../shm/watchedWord.js';

/** What mail the kernel acts on at once (the rest are replies to its requests). */
export interface MailHandler {
  /** The host tids of the stub's sysmsg threads, by slot. */
  onThreads(tids: Array<[number, number]>): void;
  /** A signal sent to the program from outside (the CLI forwarding SIGINT). */
  onSignal(signo: number): void;
  /** The main thread could not answer a request: the sentry cannot go on. */
  onFailedRequest(message: string): never;
}

/**
 * The sentry worker's side of its link with the main thread (src/sentry/sentryLink.ts):
 * requests that need the actor system or the syscall thread, blocking until answered, and mail
 * the main thread posts (signals, sysmsg thread tids). The main thread bumps a shared counter
 * with each post, so the worker notices mail without a message event loop (it never yields to
 * one while the program runs).
 *
 * @example
 * ```ts
 * const mb = new Mailbox(task.port, task.mail, kernel);
 * const r = mb.request<Extract<SentryMail, { type: 'context' }>>((req) => ({ type: 'newContext', req }));
 * ```
 */
export class Mailbox {
  readonly #mail: Int32Array;
  /** The mail counter as a watched word (see waitForTrap): ready once it moves past `value`. */
  readonly counter: WatchedWord;
  #req = 0;
  readonly #replies = new Map<number, SentryMail>();

  constructor(
    private readonly port: MessagePort,
    mail: SharedArrayBuffer,
    private readonly handler: MailHandler,
  ) {
    this.#mail = new Int32Array(mail);
    this.counter = { words: this.#mail, index: 0, value: 0 };
  }

  post(msg: SentryRequest): void {
    this.port.postMessage(msg);
  }

  /** A request the main thread answers; blocks this worker until it does. */
  request<T extends SentryMail>(make: (req: number) => SentryRequest): T {
    const req = ++this.#req;
    this.post(make(req));
    for (;;) {
      this.drain();
      const r = this.#replies.get(req);
      if (r) {
        this.#replies.delete(req);
        if (r.type === 'failed') this.handler.onFailedRequest(r.message);
        return r as T;
      }
      Atomics.wait(this.#mail, 0, this.counter.value, 50);
    }
  }

  /** Takes every message posted so far: acts on signals and tids, keeps replies. */
  drain(): void {
    const now = Atomics.load(this.#mail, 0);
    if (now === this.counter.value) return;
    this.counter.value = now;
    for (let m = receiveMessageOnPort(this.port); m; m = receiveMessageOnPort(this.port)) {
      const mail = m.message as SentryMail;
      switch (mail.type) {
        case 'threads':
          this.handler.onThreads(mail.tids);
          break;
        case 'signal':
          this.handler.onSignal(mail.signo);
          break;
        default:
          this.#replies.set(mail.req, mail);
      }
    }
  }
}
