/**
 * Requests over one DEALER to the broker's client endpoint (section 8.1):
 * each carries a fresh `rid`, waits `timeoutMs` for its answer, and is resent
 * with the same bytes up to `retries` times. Many requests may be in flight;
 * answers are matched by `rid`, and the first answer to a `rid` wins.
 */
import { randomInt } from 'node:crypto';
import { Dealer } from 'zeromq';
import { JobqError } from './errors';
import { Cmd, Limits, encodeBody, frames, parseMessage, type Body, type Message } from './protocol';

/** How long one receive waits before the loop looks whether anything is still awaited. */
const RECEIVE_SLICE_MS = 250;

type Settle = (answer: Message | undefined) => void;

export class Requester {
  readonly endpoint: string;
  readonly #timeoutMs: number;
  readonly #retries: number;
  readonly #socket: Dealer;
  readonly #waiting = new Map<number, Settle>();
  // Request ids start at a random point, so that answers meant for an
  // earlier process are not taken as ours (kept below 2^53 to stay exact).
  #nextRid = randomInt(1, 2 ** 40) * 1024;
  #sending: Promise<void> = Promise.resolve();
  #receiving = false;
  #closed = false;

  constructor(endpoint: string, timeoutMs: number, retries: number) {
    this.endpoint = endpoint;
    this.#timeoutMs = timeoutMs;
    this.#retries = retries;
    this.#socket = new Dealer({
      linger: 0,
      maxMessageSize: Limits.frameBytes,
      sendTimeout: timeoutMs,
      receiveTimeout: RECEIVE_SLICE_MS,
    });
    this.#socket.connect(endpoint);
  }

  /** The rid the next request will carry (made-up idempotency keys use it). */
  peekRid(): number {
    return this.#nextRid;
  }

  /**
   * Send cmd with fields (its `rid` is added first) and resolve with the
   * REPLY body; reject with the broker's ERROR as a JobqError, or with
   * `unavailable` when no answer came in any try.
   */
  async call(cmd: number, fields: Body): Promise<Body> {
    if (this.#closed) throw new JobqError('unavailable', 'the client is closed');
    const rid = this.#nextRid++;
    const body = encodeBody({ rid, ...fields });
    if (body.length > Limits.frameBytes) {
      throw new JobqError('too_large', `request too large (limit ${Limits.frameBytes} bytes)`);
    }
    for (let attempt = 0; attempt <= this.#retries; attempt++) {
      const answer = await this.#try(rid, cmd, body);
      if (this.#closed) throw new JobqError('unavailable', 'the client is closed');
      if (!answer) continue;
      if (answer.cmd === Cmd.ERROR) throw JobqError.fromWire(answer.body.code, answer.body.message);
      return answer.body;
    }
    throw new JobqError(
      'unavailable',
      `no reply from the broker at ${this.endpoint} within ${this.#timeoutMs} ms (${this.#retries + 1} tries)`,
    );
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.close();
    for (const settle of [...this.#waiting.values()]) settle(undefined);
  }

  /** One try: the answer, or undefined after the timeout. */
  #try(rid: number, cmd: number, body: Buffer): Promise<Message | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.#waiting.get(rid)?.(undefined), this.#timeoutMs);
      this.#waiting.set(rid, (answer) => {
        clearTimeout(timer);
        this.#waiting.delete(rid);
        resolve(answer);
      });
      // A send that fails (no room within the timeout) is a lost try: the
      // timer settles it.
      this.#sending = this.#sending.then(() => this.#socket.send(frames(cmd, body))).catch(() => undefined);
      void this.#receive();
    });
  }

  /** Read answers while any request waits for one, then stop (an idle client keeps no handle open). */
  async #receive(): Promise<void> {
    if (this.#receiving) return;
    this.#receiving = true;
    try {
      while (this.#waiting.size > 0 && !this.#closed) {
        let parts: Buffer[];
        try {
          parts = await this.#socket.receive();
        } catch {
          continue; // the slice ran out (or the socket closed: the loop ends)
        }
        const answer = parseMessage(parts);
        if (!answer || (answer.cmd !== Cmd.REPLY && answer.cmd !== Cmd.ERROR)) continue;
        const rid = answer.body.rid;
        const settle = typeof rid === 'number' ? this.#waiting.get(rid) : undefined;
        if (settle) {
          settle(answer);
        } else if (rid === 0 && answer.cmd === Cmd.ERROR && this.#waiting.size === 1) {
          // "A request of yours could not be read": with one in flight, it is that one.
          this.#waiting.values().next().value!(answer);
        }
      }
    } finally {
      this.#receiving = false;
    }
  }
}
