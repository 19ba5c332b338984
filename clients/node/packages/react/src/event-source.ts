/**
 * The part of the browser's EventSource that followJob uses, and
 * FetchEventSource: the same over fetch() and SseParser, for runtimes without
 * EventSource (Node.js) or requests that need headers (a bearer token).
 */
import { SseParser } from './sse';

export interface EventSourceLike {
  /** 0 connecting, 1 open, 2 closed (for good). */
  readonly readyState: number;
  addEventListener(type: string, listener: (event: Event) => void): void;
  close(): void;
}

/** Opens an event stream on url. */
export type EventSourceFactory = (url: string) => EventSourceLike;

export interface FetchEventSourceOptions {
  fetch?: typeof fetch;
  headers?: Record<string, string>;
}

const CONNECTING = 0;
const OPEN = 1;
const CLOSED = 2;

/**
 * An EventSource over fetch(): it reconnects after a dropped stream (with
 * Last-Event-ID, after the server's `retry:` or 1 s), and closes for good on
 * an answer that is not a 200 text/event-stream, as EventSource does.
 */
export class FetchEventSource extends EventTarget implements EventSourceLike {
  readonly url: string;
  readyState = CONNECTING;
  readonly #options: FetchEventSourceOptions;
  readonly #abort = new AbortController();
  #lastEventId = '';
  #retryMs = 1000;

  constructor(url: string, options: FetchEventSourceOptions = {}) {
    super();
    this.url = url;
    this.#options = options;
    void this.#run();
  }

  close(): void {
    this.readyState = CLOSED;
    this.#abort.abort();
  }

  async #run(): Promise<void> {
    while (this.readyState !== CLOSED) {
      if (!(await this.#connect())) return;
      if (this.readyState === CLOSED) return;
      this.readyState = CONNECTING;
      this.dispatchEvent(new Event('error'));
      await new Promise((resolve) => setTimeout(resolve, this.#retryMs));
    }
  }

  /** One connection, read to its end; false when the source is closed for good. */
  async #connect(): Promise<boolean> {
    const headers: Record<string, string> = { Accept: 'text/event-stream', ...this.#options.headers };
    if (this.#lastEventId) headers['Last-Event-ID'] = this.#lastEventId;
    try {
      const response = await (this.#options.fetch ?? fetch)(this.url, {
        headers,
        cache: 'no-store',
        signal: this.#abort.signal,
      });
      const type = response.headers.get('content-type') ?? '';
      if (response.status !== 200 || !type.startsWith('text/event-stream') || !response.body) {
        await response.body?.cancel();
        this.#fail();
        return false;
      }
      this.readyState = OPEN;
      this.dispatchEvent(new Event('open'));
      const parser = new SseParser(
        (event) => {
          this.#lastEventId = event.lastEventId;
          if (this.readyState === OPEN) {
            this.dispatchEvent(new MessageEvent(event.type, { data: event.data, lastEventId: event.lastEventId }));
          }
        },
        (ms) => {
          this.#retryMs = ms;
        },
        this.#lastEventId,
      );
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        parser.push(value);
      }
    } catch {
      // a dropped connection: reconnect, unless closed
    }
    return this.readyState !== CLOSED;
  }

  #fail(): void {
    this.readyState = CLOSED;
    this.dispatchEvent(new Event('error'));
  }
}
