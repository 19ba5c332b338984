/**
 * Test helpers that stand in for the broker, or between a client and it:
 * a ROUTER that a test drives message by message, and a proxy that loses
 * chosen replies.
 */
import { Dealer, Router } from 'zeromq';
import { freePort } from '@jobq/testkit';
import { decodeMsgpack } from '../src/decode';
import { SIGNATURE } from '../src/protocol';

/** One message a FakeRouter received: who sent it, its command and its body (decoded when it can be). */
export interface Received {
  from: Buffer;
  cmd: number;
  body: Record<string, unknown>;
}

/** A ROUTER on a free port whose messages a test reads and answers itself. */
export class FakeRouter {
  readonly endpoint: string;
  readonly socket: Router;
  readonly received: Received[] = [];
  #waiters: Array<() => void> = [];
  #closed = false;

  private constructor(endpoint: string) {
    this.endpoint = endpoint;
    this.socket = new Router({ linger: 0, sendHighWaterMark: 10000 });
  }

  static async start(): Promise<FakeRouter> {
    const router = new FakeRouter(`tcp://127.0.0.1:${await freePort()}`);
    await router.socket.bind(router.endpoint);
    void router.#read();
    return router;
  }

  async #read(): Promise<void> {
    try {
      for await (const [from, , cmd, body] of this.socket) {
        let decoded: Record<string, unknown> = {};
        try {
          decoded = decodeMsgpack(body!, 1 << 20) as Record<string, unknown>;
        } catch {
          // kept undecoded
        }
        this.received.push({ from: from!, cmd: cmd![0]!, body: decoded });
        for (const wake of this.#waiters.splice(0)) wake();
      }
    } catch {
      // closed
    }
  }

  /** The first message (from index on) that matches, waiting up to timeoutMs for it. */
  async next(match: (m: Received) => boolean, from = 0, timeoutMs = 5000): Promise<Received> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.received.slice(from).find(match);
      if (found) return found;
      const left = deadline - Date.now();
      if (this.#closed) throw new Error('the fake broker is closed');
      if (left <= 0) throw new Error('timed out waiting for a message at the fake broker');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  send(to: Buffer, cmd: number, body: Uint8Array): Promise<void> {
    return this.socket.send([to, SIGNATURE, Buffer.from([cmd]), Buffer.from(body)]);
  }

  close(): void {
    this.#closed = true;
    this.socket.close();
    for (const wake of this.#waiters.splice(0)) wake();
  }
}

/**
 * A proxy between one client and a broker's client endpoint. `loseReplyTo`
 * holds command codes: the first reply to a request of each is lost (the
 * request itself reaches the broker). `requests` counts the requests seen
 * per command.
 */
export class LossyProxy {
  readonly endpoint: string;
  readonly requests = new Map<number, number>();
  readonly loseReplyTo = new Set<number>();
  readonly #front = new Router({ linger: 0 });
  readonly #back = new Dealer({ linger: 0 });
  readonly #ridCmd = new Map<number, number>();
  #client: Buffer | undefined;

  private constructor(endpoint: string) {
    this.endpoint = endpoint;
  }

  static async start(upstream: string): Promise<LossyProxy> {
    const proxy = new LossyProxy(`tcp://127.0.0.1:${await freePort()}`);
    await proxy.#front.bind(proxy.endpoint);
    proxy.#back.connect(upstream);
    void proxy.#forward();
    void proxy.#backward();
    return proxy;
  }

  async #forward(): Promise<void> {
    try {
      for await (const [from, sig, cmd, body] of this.#front) {
        this.#client = from;
        const code = cmd![0]!;
        this.requests.set(code, (this.requests.get(code) ?? 0) + 1);
        const rid = (decodeMsgpack(body!) as { rid?: unknown }).rid;
        if (typeof rid === 'number') this.#ridCmd.set(rid, code);
        await this.#back.send([sig!, cmd!, body!]);
      }
    } catch {
      // closed
    }
  }

  async #backward(): Promise<void> {
    try {
      for await (const parts of this.#back) {
        const rid = (decodeMsgpack(parts[2]!, 1 << 20) as { rid?: unknown }).rid;
        const cmd = typeof rid === 'number' ? this.#ridCmd.get(rid) : undefined;
        if (cmd !== undefined && this.loseReplyTo.delete(cmd)) continue;
        if (this.#client) await this.#front.send([this.#client, ...parts]);
      }
    } catch {
      // closed
    }
  }

  close(): void {
    this.#front.close();
    this.#back.close();
  }
}
