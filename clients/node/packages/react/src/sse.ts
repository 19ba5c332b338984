/**
 * A parser of the text/event-stream format (the HTML standard's "Server-sent
 * events" section): feed it text as it arrives, in chunks of any size.
 */
export interface SseEvent {
  /** The `event:` field, or "message". */
  type: string;
  /** The `data:` lines, joined with "\n". */
  data: string;
  /** The last `id:` seen on the stream so far. */
  lastEventId: string;
}

export class SseParser {
  readonly #onEvent: (event: SseEvent) => void;
  readonly #onRetry: (ms: number) => void;
  #buffer = '';
  #started = false;
  #afterCR = false;
  #type = '';
  #data: string[] = [];
  #lastEventId: string;

  constructor(onEvent: (event: SseEvent) => void, onRetry: (ms: number) => void = () => undefined, lastEventId = '') {
    this.#onEvent = onEvent;
    this.#onRetry = onRetry;
    this.#lastEventId = lastEventId;
  }

  /** Take the next chunk of the stream. */
  push(chunk: string): void {
    let text = chunk;
    if (!this.#started && text.length > 0) {
      this.#started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    // A CR that ended the last chunk may be the first half of a CRLF.
    if (this.#afterCR && text.startsWith('\n')) text = text.slice(1);
    this.#afterCR = false;
    this.#buffer += text;
    for (;;) {
      const end = this.#buffer.search(/[\r\n]/);
      if (end < 0) break;
      const line = this.#buffer.slice(0, end);
      let next = end + 1;
      if (this.#buffer[end] === '\r') {
        if (next === this.#buffer.length) this.#afterCR = true;
        else if (this.#buffer[next] === '\n') next++;
      }
      this.#buffer = this.#buffer.slice(next);
      this.#line(line);
    }
  }

  #line(line: string): void {
    if (line === '') {
      this.#dispatch();
      return;
    }
    if (line.startsWith(':')) return; // a comment, such as ": keep-alive"
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.#type = value;
        break;
      case 'data':
        this.#data.push(value);
        break;
      case 'id':
        if (!value.includes('\0')) this.#lastEventId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.#onRetry(Number(value));
        break;
      default:
        break; // unknown fields are ignored
    }
  }

  #dispatch(): void {
    const data = this.#data;
    const type = this.#type || 'message';
    this.#data = [];
    this.#type = '';
    if (data.length === 0) return;
    this.#onEvent({ type, data: data.join('\n'), lastEventId: this.#lastEventId });
  }
}
