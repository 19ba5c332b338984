/**
 * Watching one job to its end, as docs/PROTOCOL.md section 10.2 says: a
 * STATUS snapshot and a subscription to the job's topic, applying only newer
 * versions; the ending read with STATUS (events carry no output); a fresh
 * STATUS after a gap in versions and after every second of silence, which
 * bounds how late an ending is seen whatever happens to the event stream
 * (a subscription on its way, dropped events, a broker restart).
 */
import { Subscriber } from 'zeromq';
import { curveSocketOptions, type CurveKeys } from './curve';
import { JobqError } from './errors';
import { isFinal, toJob, type Job } from './job';
import { Limits, SIGNATURE, decodeValue } from './protocol';

export interface WatchOptions {
  /**
   * The job's shop, when the caller knows it: the watch then subscribes
   * before its first STATUS. Without it the first STATUS tells the shop, and
   * the subscription follows (section 10.2 allows either order).
   */
  shopId?: string;
  /** Fail with a `timeout` JobqError if the job has not ended within this many ms (default: no limit). */
  timeoutMs?: number;
  /** Stop watching: the iteration then throws the signal's reason. */
  signal?: AbortSignal;
}

/** Silence after which a watch takes a STATUS (jobq's own library uses 1 s). */
const SILENCE_MS = 1000;
/**
 * Events kept while the watch is busy (a STATUS, or the caller between two
 * states); older ones are dropped, and the gap in versions brings a STATUS.
 */
const MAX_QUEUED = 100;
/** Events ZeroMQ holds for the reader (which takes them at once): few, each up to a 2 MiB frame. */
const RECEIVE_HWM = 100;

type Status<TInput, TOutput> = (id: string) => Promise<Job<TInput, TOutput>>;

/** The events of one topic, read into a queue that the watch takes from with a timeout. */
class TopicQueue {
  readonly #socket: Subscriber;
  readonly #topic: Buffer;
  readonly #items: Buffer[] = [];
  #wake: (() => void) | undefined;

  constructor(endpoint: string, topic: string, curve: CurveKeys | undefined) {
    this.#topic = Buffer.from(topic);
    this.#socket = new Subscriber({
      linger: 0,
      maxMessageSize: Limits.frameBytes,
      receiveHighWaterMark: RECEIVE_HWM,
      ...curveSocketOptions(curve),
    });
    this.#socket.subscribe(topic);
    this.#socket.connect(endpoint);
    void this.#read();
  }

  /** The next event body, or undefined once ms pass or signal aborts. */
  async next(ms: number, signal: AbortSignal | undefined): Promise<Buffer | undefined> {
    if (this.#items.length === 0 && ms > 0 && !signal?.aborted) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', done);
          this.#wake = undefined;
          resolve();
        };
        const timer = setTimeout(done, ms);
        signal?.addEventListener('abort', done);
        this.#wake = done;
      });
    }
    return this.#items.shift();
  }

  /** Close the subscription (more than once is fine). */
  close(): void {
    if (!this.#socket.closed) this.#socket.close();
    this.#wake?.();
  }

  async #read(): Promise<void> {
    try {
      for await (const parts of this.#socket) {
        const [topic, sig, body] = parts as Buffer[];
        if (parts.length !== 3 || !topic!.equals(this.#topic) || !sig!.equals(SIGNATURE)) continue;
        if (this.#items.push(body!) > MAX_QUEUED) this.#items.shift();
        this.#wake?.();
      }
    } catch {
      // closed
    }
  }
}

/** What the watch reported last: a state is news if newer, or if only why it waits changed. */
class Applied {
  version = 0;
  #wait = '';

  isNews(job: Job<unknown, unknown>): boolean {
    const wait = job.wait ? `${job.wait.reason}@${job.wait.until?.getTime() ?? 0}` : '';
    const news = job.version > this.version || (job.version === this.version && wait !== this.#wait);
    if (news) {
      this.version = job.version;
      this.#wait = wait;
    }
    return news;
  }
}

export async function* watch<TInput, TOutput>(
  events: string,
  status: Status<TInput, TOutput>,
  id: string,
  options: WatchOptions,
  curve?: CurveKeys,
): AsyncGenerator<Job<TInput, TOutput>, void, undefined> {
  const { signal } = options;
  const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
  const applied = new Applied();
  // A STATUS that the broker does not answer (it is restarting) is not the
  // end of the watch: the next silence asks again.
  const snapshot = async (): Promise<Job<TInput, TOutput> | undefined> => {
    try {
      return await status(id);
    } catch (err) {
      if (err instanceof JobqError && err.code === 'unavailable') return undefined;
      throw err;
    }
  };
  let queue: TopicQueue | undefined;
  // An abort closes the subscription at once, even while the caller holds
  // the watch paused at a yield (and may never ask for more): nothing is
  // left open to keep the process alive.
  const onAbort = (): void => queue?.close();
  signal?.addEventListener('abort', onAbort);
  try {
    signal?.throwIfAborted();
    if (options.shopId) queue = new TopicQueue(events, `${options.shopId}/${id}`, curve);
    const first = await status(id);
    applied.isNews(first);
    yield first;
    if (isFinal(first.status)) return;
    signal?.throwIfAborted();
    queue ??= new TopicQueue(events, `${first.shopId}/${id}`, curve);
    let quietSince = Date.now();
    for (;;) {
      signal?.throwIfAborted();
      const now = Date.now();
      if (now >= deadline) throw new JobqError('timeout', `job ${id} did not end within ${options.timeoutMs} ms`);
      const body = await queue.next(Math.min(SILENCE_MS - (now - quietSince), deadline - now), signal);
      let ask = false;
      if (body) {
        let job: Job<TInput, TOutput>;
        try {
          job = toJob<TInput, TOutput>(decodeValue(body));
        } catch {
          continue; // not ours to judge: the snapshots still come (silence is counted from the last good event)
        }
        if (job.id !== id || job.version < applied.version) continue;
        quietSince = Date.now();
        if (isFinal(job.status)) {
          // The ending is read with STATUS, which has the output and errors.
          ask = job.version > applied.version;
        } else {
          const gap = job.version > applied.version + 1;
          if (applied.isNews(job)) yield job;
          ask = gap;
        }
      } else if (Date.now() - quietSince >= SILENCE_MS) {
        quietSince = Date.now();
        ask = true;
      }
      if (!ask) continue;
      const snap = await snapshot();
      if (snap && applied.isNews(snap)) {
        yield snap;
        if (isFinal(snap.status)) return;
      }
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    queue?.close();
  }
}
