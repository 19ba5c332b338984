/**
 * JobqClient: the client commands of docs/PROTOCOL.md section 8, and watch
 * (section 10.2).
 */
import { randomBytes } from 'node:crypto';
import { resolveCurve, type CurveKeys } from './curve';
import { JobqError } from './errors';
import { isFinal, toJob, type Job, type JobData, type JobState } from './job';
import { Cmd, Limits, dataProblem, encodeData, isJobId, type Body, type Problem } from './protocol';
import { Requester } from './requester';
import { toStats, type Stats } from './stats';
import { watch, type WatchOptions } from './watch';

export interface JobqClientOptions {
  /** The broker's client endpoint; default `$JOBQ_BROKER`, else tcp://127.0.0.1:5555. */
  broker?: string;
  /** The broker's event endpoint (for watchJob); default `$JOBQ_EVENTS`, else tcp://127.0.0.1:5557. */
  events?: string;
  /** How long one try of a request waits for its answer, in ms (default 3000). */
  timeoutMs?: number;
  /** Tries after the first when no answer comes in time (default 1). */
  retries?: number;
  /**
   * CURVE keys for a broker started with `--keys` (PROTOCOL.md section 13),
   * used on the client and the event endpoint: default from `$JOBQ_CERT`
   * and `$JOBQ_BROKER_KEY` when set (see `curveKeysFromFiles`), none if null.
   */
  curve?: CurveKeys | null;
}

export interface EnqueueOptions {
  /** -1000 to 1000, higher runs first (default 0). */
  priority?: number;
  /** Milliseconds before the job may run (default 0). */
  delayMs?: number;
  /** 1 to 100 (default 3). */
  maxAttempts?: number;
  /** Milliseconds one attempt may run, 0 for no limit (default). */
  timeoutMs?: number;
  /**
   * Idempotency key (1 to 255 bytes): the same key in the same shop within 24
   * hours names the same job. Without one the client makes one up for the
   * request, so that its resends never make two jobs.
   */
  key?: string;
}

export interface EnqueueRequest<TInput = JobData> extends EnqueueOptions {
  type: string;
  shopId: string;
  input?: TInput;
}

export interface EnqueueResult {
  id: string;
  /** False when the key named an existing job. */
  created: boolean;
  /** True when no connected worker runs the type: the job waits for one. */
  unserved: boolean;
}

export interface BatchResult {
  /** One id per job, in request order. */
  ids: string[];
  created: boolean[];
  /** The types no connected worker runs. */
  unserved: string[];
}

export interface ListFilter {
  shopId?: string;
  type?: string;
  status?: JobState;
  /** Jobs per page, 1 to 1000 (default 50). */
  limit?: number;
}

export interface JobPage<TInput = JobData, TOutput = JobData> {
  /** Newest first, without input, output and errors. May be short, even empty, before the end. */
  jobs: Job<TInput, TOutput>[];
  /** The cursor of the next page; null on the last page. */
  next: string | null;
}

function asProblem(encoded: Buffer | Problem): Problem | undefined {
  return Buffer.isBuffer(encoded) ? undefined : encoded;
}

const DEFAULT_BROKER = 'tcp://127.0.0.1:5555';
const DEFAULT_EVENTS = 'tcp://127.0.0.1:5557';

function checkId(id: string, what = 'job id'): void {
  if (!isJobId(id)) throw new JobqError('bad_request', `'${String(id)}' is not a ${what} (16 lowercase hex digits)`);
}

const TYPE_NAME = /^[a-z0-9_.-]+$/;
const SHOP_ID = /^[A-Za-z0-9_.:-]+$/;
const STATES: readonly string[] = ['pending', 'running', 'completed', 'failed', 'cancelled'];

/**
 * The checks of sections 5.3 and 11 that need no broker, with the codes the
 * broker would answer: a request that would be refused is not sent.
 */
function checkName(value: unknown, field: string, pattern: RegExp, maxBytes: number, prefix = ''): void {
  if (typeof value !== 'string') throw new JobqError('bad_request', `${prefix}field '${field}': expected a string`);
  if (Buffer.byteLength(value) > maxBytes) {
    throw new JobqError('too_large', `${prefix}field '${field}': longer than ${maxBytes} bytes`);
  }
  if (!pattern.test(value)) throw new JobqError('bad_request', `${prefix}field '${field}': malformed '${value}'`);
}

function checkInt(value: unknown, field: string, min: number, max: number, prefix = ''): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new JobqError('bad_request', `${prefix}field '${field}': expected an integer from ${min} to ${max}`);
  }
}

/**
 * One connection to a jobq broker. Every method may be called concurrently;
 * requests are matched to their answers by request id. Call `close()` when done.
 */
export class JobqClient {
  readonly broker: string;
  readonly events: string;
  readonly #curve: CurveKeys | undefined;
  readonly #requester: Requester;
  readonly #retries: number;
  // Names this client in made-up idempotency keys.
  readonly #nonce = randomBytes(8).toString('hex');
  // Watches running now: close() ends them.
  readonly #watches = new Set<AbortController>();

  constructor(options: JobqClientOptions = {}) {
    this.broker = options.broker ?? (process.env.JOBQ_BROKER || DEFAULT_BROKER);
    this.events = options.events ?? (process.env.JOBQ_EVENTS || DEFAULT_EVENTS);
    const timeoutMs = options.timeoutMs && options.timeoutMs > 0 ? options.timeoutMs : 3000;
    this.#retries = Math.max(0, options.retries ?? 1);
    this.#curve = resolveCurve(options.curve);
    this.#requester = new Requester(this.broker, timeoutMs, this.#retries, this.#curve);
  }

  /** Enqueue a job; resolves with its id once the job is durable. */
  async enqueueJob<TInput extends object = JobData>(
    type: string,
    shopId: string,
    input?: TInput,
    options: EnqueueOptions = {},
  ): Promise<string> {
    return (await this.enqueue({ ...options, type, shopId, input })).id;
  }

  /** Enqueue a job, and learn whether it was new and whether a worker runs its type. */
  async enqueue<TInput extends object = JobData>(request: EnqueueRequest<TInput>): Promise<EnqueueResult> {
    const reply = await this.#requester.call(Cmd.ENQUEUE, this.#enqueueFields(request, 0));
    const id = reply.id;
    if (!isJobId(id)) throw new JobqError('internal', 'malformed id in reply');
    return { id, created: reply.created !== false, unserved: reply.unserved === true };
  }

  /** Enqueue 1 to 1000 jobs at once: all are made, in one commit, or none. */
  async enqueueBatch<TInput extends object = JobData>(jobs: EnqueueRequest<TInput>[]): Promise<BatchResult> {
    // The codes the broker would answer (section 8.8): empty is malformed, too many too large.
    if (jobs.length === 0) throw new JobqError('bad_request', "field 'jobs': empty");
    if (jobs.length > Limits.batchJobs) {
      throw new JobqError('too_large', `field 'jobs': more than ${Limits.batchJobs} jobs`);
    }
    const reply = await this.#requester.call(Cmd.ENQUEUE_BATCH, {
      jobs: jobs.map((job, i) => this.#enqueueFields(job, i, true)),
    });
    const ids = reply.ids;
    if (!Array.isArray(ids) || ids.length !== jobs.length || !ids.every(isJobId)) {
      throw new JobqError('internal', `reply does not list ${jobs.length} job ids`);
    }
    const created = Array.isArray(reply.created) ? reply.created : [];
    return {
      ids,
      created: ids.map((_, i) => created[i] !== false),
      unserved: Array.isArray(reply.unserved) ? reply.unserved.filter((t) => typeof t === 'string') : [],
    };
  }

  /** The job with its input, output and errors. `unknown_job` if there is none. */
  async getJobStatus<TInput = JobData, TOutput = JobData>(id: string): Promise<Job<TInput, TOutput>> {
    return this.#byId<TInput, TOutput>(Cmd.STATUS, id);
  }

  /**
   * Cancel a pending or running job; `invalid_state` if it has ended. Resolves with the job after.
   *
   * A CANCEL whose answer did not come in time is sent again. If the resend
   * gets `invalid_state`, the first one may have been applied and its answer
   * lost: the job is read, and if it is cancelled that state is the answer.
   */
  async cancelJob<TInput = JobData, TOutput = JobData>(id: string): Promise<Job<TInput, TOutput>> {
    checkId(id);
    const info = { resent: false };
    try {
      return toJob<TInput, TOutput>((await this.#requester.call(Cmd.CANCEL, { id }, { info })).job);
    } catch (err) {
      if (!(err instanceof JobqError && err.code === 'invalid_state' && info.resent)) throw err;
      const job = await this.getJobStatus<TInput, TOutput>(id);
      if (job.status === 'cancelled') return job;
      throw err;
    }
  }

  /**
   * Run a failed or cancelled job again, with fresh attempts; `invalid_state` otherwise.
   *
   * RETRY is not idempotent, so it is sent once, never resent: its answer is
   * awaited as long as all the tries of another request would take, and if
   * none comes it fails with `unavailable`, and the job may or may not have
   * been retried (read it with getJobStatus).
   */
  async retryJob<TInput = JobData, TOutput = JobData>(id: string): Promise<Job<TInput, TOutput>> {
    checkId(id);
    return toJob<TInput, TOutput>((await this.#requester.call(Cmd.RETRY, { id }, { resend: false })).job);
  }

  /** One page of jobs, newest first; pass `next` back as `cursor` for the following page. */
  async listJobsPage<TInput = JobData, TOutput = JobData>(
    filter: ListFilter & { cursor?: string | null } = {},
  ): Promise<JobPage<TInput, TOutput>> {
    if (filter.cursor) checkId(filter.cursor, 'cursor');
    if (filter.shopId !== undefined) checkName(filter.shopId, 'shop_id', SHOP_ID, Limits.shopBytes);
    if (filter.type !== undefined) checkName(filter.type, 'type', TYPE_NAME, Limits.typeBytes);
    if (filter.status !== undefined && !STATES.includes(filter.status)) {
      throw new JobqError('bad_request', `field 'status': unknown state '${String(filter.status)}'`);
    }
    checkInt(filter.limit, 'limit', 1, Limits.listLimit);
    const reply = await this.#requester.call(Cmd.LIST, {
      shop_id: filter.shopId,
      type: filter.type,
      status: filter.status,
      limit: filter.limit,
      cursor: filter.cursor ?? undefined,
    });
    if (!Array.isArray(reply.jobs)) throw new JobqError('internal', 'malformed job list');
    const next = reply.next;
    return { jobs: reply.jobs.map((j) => toJob<TInput, TOutput>(j)), next: isJobId(next) ? next : null };
  }

  /** Every job that matches, newest first, following the cursor page by page. */
  async *listJobs<TInput = JobData, TOutput = JobData>(filter: ListFilter = {}): AsyncGenerator<Job<TInput, TOutput>> {
    let cursor: string | null = null;
    do {
      const page: JobPage<TInput, TOutput> = await this.listJobsPage<TInput, TOutput>({ ...filter, cursor });
      yield* page.jobs;
      cursor = page.next;
    } while (cursor);
  }

  /** The broker's counters (section 8.7). */
  async stats(): Promise<Stats> {
    return toStats(await this.#requester.call(Cmd.STATS, {}));
  }

  /**
   * Follow a job until it ends: yields its state now and at every change, and
   * last its final state (with output and errors), then ends. It never misses
   * the ending, even one before the call, and goes on across broker restarts.
   */
  async *watchJob<TInput = JobData, TOutput = JobData>(
    id: string,
    options: WatchOptions = {},
  ): AsyncGenerator<Job<TInput, TOutput>, void, undefined> {
    checkId(id);
    const closing = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, closing.signal]) : closing.signal;
    this.#watches.add(closing);
    try {
      yield* watch<TInput, TOutput>(this.events, (jobId) => this.getJobStatus<TInput, TOutput>(jobId), id, {
        ...options,
        signal,
      }, this.#curve);
    } finally {
      this.#watches.delete(closing);
    }
  }

  /** Follow a job to its end and resolve with its final state. */
  async waitForJob<TInput = JobData, TOutput = JobData>(
    id: string,
    options: WatchOptions = {},
  ): Promise<Job<TInput, TOutput>> {
    let last: Job<TInput, TOutput> | undefined;
    for await (const job of this.watchJob<TInput, TOutput>(id, options)) last = job;
    if (!last || !isFinal(last.status)) throw new JobqError('internal', `watch of ${id} ended early`);
    return last;
  }

  /** Close the connection; requests and watches still running fail with `unavailable`. */
  close(): void {
    for (const watch of this.#watches) watch.abort(new JobqError('unavailable', 'the client is closed'));
    this.#requester.close();
  }

  async #byId<TInput, TOutput>(cmd: number, id: string): Promise<Job<TInput, TOutput>> {
    checkId(id);
    const reply = await this.#requester.call(cmd, { id });
    return toJob<TInput, TOutput>(reply.job);
  }

  /**
   * The ENQUEUE fields of request, checked as the broker would (sections 5.1,
   * 5.3, 8.2, 11); n tells apart the jobs of one batch in made-up keys and
   * messages, as the broker's `jobs[i]: ` does.
   */
  #enqueueFields(request: EnqueueRequest<object>, n: number, batch = false): Body {
    const prefix = batch ? `jobs[${n}]: ` : '';
    checkName(request.type, 'type', TYPE_NAME, Limits.typeBytes, prefix);
    checkName(request.shopId, 'shop_id', SHOP_ID, Limits.shopBytes, prefix);
    checkInt(request.priority, 'priority', -Limits.priority, Limits.priority, prefix);
    checkInt(request.delayMs, 'delay', 0, Limits.delayMs, prefix);
    checkInt(request.maxAttempts, 'max_attempts', 1, Limits.maxAttempts, prefix);
    checkInt(request.timeoutMs, 'timeout', 0, Limits.timeoutMs, prefix);
    if (request.key !== undefined) {
      if (typeof request.key !== 'string') throw new JobqError('bad_request', `${prefix}field 'key': expected a string`);
      if (request.key === '') throw new JobqError('bad_request', `${prefix}field 'key': empty`);
      if (Buffer.byteLength(request.key) > Limits.keyBytes) {
        throw new JobqError('too_large', `${prefix}field 'key': longer than ${Limits.keyBytes} bytes`);
      }
    }
    if (request.input !== undefined) {
      const problem =
        dataProblem(request.input, 'input', batch ? Limits.batchMapDepth : Limits.mapDepth) ??
        asProblem(encodeData(request.input as Body, 'input', Limits.inputBytes));
      if (problem) throw new JobqError(problem.code, prefix + problem.message);
    }
    let key = request.key;
    if (key === undefined && this.#retries > 0) {
      key = `auto-${this.#nonce}-${this.#requester.peekRid().toString(16)}-${n.toString(16)}`;
    }
    return {
      type: request.type,
      shop_id: request.shopId,
      input: request.input ?? {},
      priority: request.priority,
      delay: request.delayMs,
      max_attempts: request.maxAttempts,
      timeout: request.timeoutMs,
      key,
    };
  }
}
