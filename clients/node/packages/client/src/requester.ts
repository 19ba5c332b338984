/**
 * Requests over one DEALER to the broker's client endpoint (section 8.1):
 * each carries a fresh `rid`, waits `timeoutMs` for its answer, and is resent
 * with the same bytes up to `retries` times (a request that is not
 * idempotent is sent once and waited for as long). Many requests may be in
 * flight; answers are matched by `rid`, and the first answer to a `rid` wins.
 */
import { randomInt } from 'node:crypto';
import { Dealer } from 'zeromq';
import { curveSocketOptions, keyHint, type CurveKeys } from './curve';
import { JobqError } from './errors';
import { Cmd, Limits, encodeBody, frames, parseMessage, type Body, type Message } from './protocol';

/** How long one receive waits before the loop looks whether anything is still awaited. */
const RECEIVE_SLICE_MS = 250;
/**
 * Answers ZeroMQ may hold for us before the reader takes them (each up to a
 * 2 MiB frame): the reader takes them as they come, so few are ever held,
 * and a broker that floods us is held back by TCP rather than by our memory.
 */
const RECEIVE_HWM = 64;

export interface CallOptions {
  /**
   * Resend the request when no answer comes in time (default true). False
   * for a request that is not idempotent: it is sent once, and its answer
   * awaited as long as all the tries of others would take.
   */
  resend?: boolean;
  /** Set to true when the answer came to a resend (an earlier try may have been applied). */
  info?: { resent: boolean };
}

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
  // No answer came yet: a request that gets none may have failed its handshake.
  #answered = false;
  readonly #curve: CurveKeys | undefined;

  constructor(endpoint: string, timeoutMs: number, retries: number, curve?: CurveKeys) {
    this.#curve = curve;
    this.endpoint = endpoint;
    this.#timeoutMs = timeoutMs;
    this.#retries = retries;
    this.#socket = new Dealer({
      linger: 0,
      maxMessageSize: Limits.frameBytes,
      sendTimeout: timeoutMs,
      receiveTimeout: RECEIVE_SLICE_MS,
      receiveHighWaterMark: RECEIVE_HWM,
      ...curveSocketOptions(curve),
    });
    this.#socket.connect(endpoint);
  }

  /** The rid the next request will carry (made-up idempotency keys use it). */
  peekRid(): number {
    return this.#nextRid;
  }

  /**
   * Send cmd with fields (its `rid` is added first) and resolve with the
   * REPLY body; reject with the broker's ERROR as a JobqError, with
   * `internal` when the answer cannot be decoded, or with `unavailable` when
   * no answer came in any try.
   */
  async call(cmd: number, fields: Body, options: CallOptions = {}): Promise<Body> {
    if (this.#closed) throw new JobqError('unavailable', 'the client is closed');
    const rid = this.#nextRid++;
    let body: Buffer;
    try {
      body = encodeBody({ rid, ...fields });
    } catch (err) {
      throw new JobqError('bad_request', `request cannot be encoded: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (body.length > Limits.frameBytes) {
      throw new JobqError('too_large', `request too large (limit ${Limits.frameBytes} bytes)`);
    }
    const resend = options.resend ?? true;
    const tries = resend ? this.#retries + 1 : 1;
    const waitMs = resend ? this.#timeoutMs : this.#timeoutMs * (this.#retries + 1);
    for (let attempt = 0; attempt < tries; attempt++) {
      if (options.info) options.info.resent = attempt > 0;
      const answer = await this.#try(rid, cmd, body, waitMs);
      if (this.#closed) throw new JobqError('unavailable', 'the client is closed');
      if (!answer) continue;
      if (answer.problem !== undefined) {
        throw new JobqError('internal', `reply could not be decoded: ${answer.problem}`);
      }
      if (answer.cmd === Cmd.ERROR) throw JobqError.fromWire(answer.body.code, answer.body.message);
      return answer.body;
    }
    const hint = this.#answered ? '' : keyHint(this.#curve);
    if (!resend) {
      throw new JobqError(
        'unavailable',
        `no reply from the broker at ${this.endpoint} within ${waitMs} ms; the request may or may not have been applied${hint}`,
      );
    }
    throw new JobqError(
      'unavailable',
      `no reply from the broker at ${this.endpoint} within ${this.#timeoutMs} ms (${tries} tries)${hint}`,
    );
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.close();
    for (const settle of [...this.#waiting.values()]) settle(undefined);
  }

  /** One try: the answer, or undefined after the timeout. */
  #try(rid: number, cmd: number, body: Buffer, waitMs: number): Promise<Message | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.#waiting.get(rid)?.(undefined), waitMs);
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
        // An answer that cannot be decoded but names its rid settles that
        // request (as `internal`); one that names none is dropped.
        this.#answered = true;
        const answer = parseMessage(parts);
        if (!answer || (answer.cmd !== Cmd.REPLY && answer.cmd !== Cmd.ERROR)) continue;
        const rid = answer.body.rid;
        const settle = typeof rid === 'number' ? this.#waiting.get(rid) : undefined;
        if (settle) {
          settle(answer);
        } else if (rid === 0 && answer.cmd === Cmd.ERROR && !answer.problem && this.#waiting.size === 1) {
          // "A request of yours could not be read": with one in flight, it is that one.
          this.#waiting.values().next().value!(answer);
        }
      }
    } finally {
      this.#receiving = false;
    }
  }
}
