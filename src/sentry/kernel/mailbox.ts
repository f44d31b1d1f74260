import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import type { SentryMail, SentryRequest } from '../protocol.js';
import type { WatchedWord } from '../../shm/watchedWord.js';

/** What mail the kernel acts on at once (replies go to the callbacks of their requests). */
export interface MailHandler {
  /** The host tids of process `pid`'s sysmsg threads, by slot. */
  onThreads(pid: number, tids: Array<[number, number]>): void;
  /** A signal sent to the program from outside (the CLI forwarding SIGINT). */
  onSignal(signo: number): void;
  /** The main thread could not answer a request: the sentry cannot go on. */
  onFailedRequest(message: string): never;
  /** A request of process `pid` failed because its stub died under it. */
  onStubDead(pid: number): void;
}

/**
 * What the main thread hears of without anything here waiting for an answer or a deed: a
 * process's end or its actor's events, a context's first call or its end. Held for the host's
 * idle moment (see Mailbox.notice); everything else (requests, needThread, rootStopped) goes at once.
 */
const NOTICES: ReadonlySet<SentryRequest['type']> = new Set(['processExit', 'processEvent', 'contextEvent', 'contextExit', 'forkedHere', 'forkLost', 'firstThread']);
/** Longest a notice waits for the host's idle moment (see Mailbox.notice). */
const NOTICE_HOLD_MS = 2;
/** Most notices held at once. */
const NOTICE_HOLD_MAX = 64;

/** A request's reply, by the request's own type. */
export type Reply<T extends SentryMail['type']> = Extract<SentryMail, { type: T }>;

/** A request without its number (the mailbox numbers it). */
export type RequestBody = SentryRequest extends infer R ? (R extends { req: number } ? Omit<R, 'req'> : never) : never;

/**
 * The sentry's side of its link with the main thread (src/sentry/sentryLink.ts): requests that
 * need the actor system or the syscall thread, and mail the main thread posts (replies, signals,
 * sysmsg thread tids). Nothing here blocks: a request's reply comes back as mail, to the
 * callback given with it, on a later turn of the kernel (a sentry host runs several programs'
 * kernels on one thread). The main thread bumps a shared counter with each post and rings the
 * stub's doorbell, so the waiting host notices mail without a message event loop.
 *
 * @example
 * ```ts
 * mb.request({ type: 'newContext', pid }, 'context', (r) => bind(r.id, r.slot));
 * ```
 */
export class Mailbox {
  /** The mail counter as a watched word (see waitForTrap): ready once it moves past `value`. */
  readonly counter: WatchedWord;
  #req = 0;
  readonly #waiting = new Map<number, (r: SentryMail) => void>();

  constructor(
    private readonly port: MessagePort,
    mail: SharedArrayBuffer,
    private readonly handler: MailHandler,
  ) {
    this.counter = { words: new Int32Array(mail), index: 0, value: 0 };
  }

  /** Notices held for {@link flushNotices}, in order; when the oldest was held (performance.now). */
  #notices: SentryRequest[] = [];
  #noticesSince = 0;

  /**
   * Posts `msg`: a notice is held (see {@link notice}); anything else goes now, then the notices
   * held so far: the main thread takes it up before them (a fork's request waits for none of
   * the actor work a child's end brings). Nothing it asks for depends on a notice: a notice
   * tells of an end (a process's, a context's: its id is free a little later) or of an event
   * for the actors' timelines.
   */
  post(msg: SentryRequest): void {
    if (NOTICES.has(msg.type)) return this.notice(msg);
    // A fork child the main thread has not heard of yet may be what `msg` names: in order then.
    if (this.#notices.some((m) => m.type === 'forkedHere')) this.flushNotices();
    this.port.postMessage(msg);
    this.flushNotices();
  }

  /**
   * Holds `msg`, a notice nothing here waits for (a process's end, a context's first call, a
   * fork child the main thread is to take over), for the next {@link flushNotices}: before the
   * host sleeps. Why: each post wakes the main thread, which then takes a CPU (on two, the
   * sentry's or a stub's) for its actors right in the middle of a hand-off (a fork to the
   * child's execve, a child's exit to its parent's wait); held, they go out together once the
   * program leaves the sentry nothing to do. Held at most {@link NOTICE_HOLD_MS}, or
   * {@link NOTICE_HOLD_MAX} notices.
   */
  notice(msg: SentryRequest): void {
    if (this.#notices.length === 0) this.#noticesSince = performance.now();
    this.#notices.push(msg);
    if (this.#notices.length >= NOTICE_HOLD_MAX || performance.now() - this.#noticesSince > NOTICE_HOLD_MS) this.flushNotices();
  }

  /** Posts the notices held (see {@link notice}). */
  flushNotices(): void {
    if (this.#notices.length === 0) return;
    const held = this.#notices;
    this.#notices = [];
    for (const m of held) this.port.postMessage(m);
  }

  /** Posts a request; `onReply` runs with its reply (of type `replyType`) when it arrives. */
  request<T extends SentryMail['type']>(body: RequestBody, replyType: T, onReply: (r: Reply<T>) => void): void {
    const req = ++this.#req;
    this.#waiting.set(req, (r) => {
      if (r.type === 'failed' && r.gone) return; // its process ended: nothing waits for it
      if (r.type === 'failed' && r.stubDead && 'pid' in body) return this.handler.onStubDead(body.pid);
      if (r.type === 'failed') this.handler.onFailedRequest(r.message);
      if (r.type !== replyType) this.handler.onFailedRequest(`a ${r.type} reply to a request for ${replyType}`);
      onReply(r as Reply<T>);
    });
    this.post({ ...body, req } as SentryRequest);
  }

  /** True while a request waits for its reply. */
  get awaiting(): boolean {
    return this.#waiting.size > 0;
  }

  /** Takes every message posted so far; true if there was any. */
  drain(): boolean {
    const now = Atomics.load(this.counter.words, 0);
    if (now === this.counter.value) return false;
    this.counter.value = now;
    for (let m = receiveMessageOnPort(this.port); m; m = receiveMessageOnPort(this.port)) {
      const mail = m.message as SentryMail;
      switch (mail.type) {
        case 'threads':
          this.handler.onThreads(mail.pid, mail.tids);
          break;
        case 'signal':
          this.handler.onSignal(mail.signo);
          break;
        default: {
          const reply = this.#waiting.get(mail.req);
          this.#waiting.delete(mail.req);
          reply?.(mail);
        }
      }
    }
    return true;
  }
}
