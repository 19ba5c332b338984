/**
 * Worker: runs processors written in TypeScript for a jobq broker, as
 * docs/PROTOCOL.md section 9 and jobq's C worker runtime do: READY with the
 * attempts it holds, a heartbeat every second, JOBs up to its capacity,
 * PROGRESS, one COMPLETE or FAIL per attempt kept and resent until its ACK,
 * CANCEL_JOB as an AbortSignal, READY again after DISCONNECT or a silent
 * broker, and a graceful stop that hands queued jobs back and lets running
 * ones finish within a grace period.
 *
 * Processors run on the Node.js event loop: a processor that computes for
 * long without awaiting delays heartbeats (move such work to a worker thread).
 */
import { randomInt } from 'node:crypto';
import { hostname } from 'node:os';
import { Dealer } from 'zeromq';
import { curveSocketOptions, keyHint, resolveCurve, type CurveKeys } from './curve';
import { JobqError } from './errors';
import { JobFailure, RunningJob, type JobContext } from './job-context';
import type { JobData } from './job';
import {
  Cmd,
  Limits,
  asMap,
  dataProblem,
  encodeBody,
  encodeData,
  frames,
  isJobId,
  parseMessage,
  truncateUtf8,
  type Body,
} from './protocol';

export type Processor<TInput = JobData, TOutput extends object = JobData> = (
  job: JobContext<TInput>,
) => Promise<TOutput | void> | TOutput | void;

export type LogLevel = 'info' | 'warn' | 'error';

export interface WorkerOptions {
  /** The broker's worker endpoint (default tcp://127.0.0.1:5556). */
  broker?: string;
  /** A stable name, 1 to 64 printable ASCII characters, unique among the broker's workers (default: made up). */
  name?: string;
  /** Jobs run at once (default 4). */
  concurrency?: number;
  /** Jobs held waiting for a free slot (default 0). A held job's timeout runs from its dispatch. */
  prefetch?: number;
  /** Heartbeat interval in ms (default 1000). */
  heartbeatMs?: number;
  /** Reconnect after this much silence from the broker, in ms (default 5000). */
  brokerTimeoutMs?: number;
  /** On stop, how long running jobs get to finish before they are cancelled, in ms (default 10000). */
  graceMs?: number;
  /**
   * Signals that stop the worker while it runs: the first gracefully, a
   * second at once (default SIGTERM and SIGINT; [] for none).
   */
  stopSignals?: NodeJS.Signals[];
  /** Where the runtime's lines go (each job at info); default nowhere. */
  log?: (level: LogLevel, message: string) => void;
  /**
   * CURVE keys for a broker started with `--keys` (PROTOCOL.md section 13):
   * default from `$JOBQ_CERT` and `$JOBQ_BROKER_KEY` when set, none if null.
   */
  curve?: CurveKeys | null;
}

const TYPE_NAME = /^[a-z0-9_.-]{1,64}$/;
const WORKER_NAME = /^[\x21-\x7e]{1,64}$/;
/** How often the runtime looks at its timers, in ms. */
const TICK_MS = 100;
/**
 * Messages ZeroMQ holds for the reader (each up to a 2 MiB frame). The reader
 * takes them as they come, so few wait; past this TCP holds the broker back.
 */
const RECEIVE_HWM = 128;
/**
 * Results kept for their ACK, at most. Past this (only a broker that sends
 * JOBs without acknowledging anything gets here) a JOB that would add one
 * more is dropped unanswered: its lease brings it back.
 */
const MAX_RESULTS = 2 * Limits.heldJobs;

interface Held {
  id: string;
  attempt: number;
  /** The JOB's fields; undefined once it runs. */
  dispatch: { type: string; shopId: string; input: JobData; timeoutMs: number } | undefined;
  job: RunningJob<JobData> | undefined;
}

/** A result sent and not yet acknowledged. */
interface Result {
  id: string;
  attempt: number;
  cmd: number;
  body: Buffer;
  sentAt: number;
}

const key = (id: string, attempt: number): string => `${id}:${attempt}`;

/** An attempt number (section 11: 0 to 2^32-1). */
function isAttempt(attempt: unknown): attempt is number {
  return typeof attempt === 'number' && Number.isInteger(attempt) && attempt >= 0 && attempt <= 0xffffffff;
}

function madeUpName(): string {
  const host =
    hostname()
      .slice(0, 24)
      .replace(/[^\x21-\x7e]/g, '_') || 'host';
  return `w-${host}-${process.pid}-${randomInt(0x10000).toString(16).padStart(4, '0')}`;
}

function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  return err === undefined ? '' : String(err);
}

export class Worker {
  readonly name: string;
  readonly broker: string;
  readonly #options: Required<Omit<WorkerOptions, 'name' | 'broker' | 'log' | 'curve'>>;
  readonly #log: (level: LogLevel, message: string) => void;
  readonly #processors = new Map<string, Processor>();
  /** Attempts whose lease is ours and that have not ended: queued or running. */
  readonly #held = new Map<string, Held>();
  /** Keys of held attempts waiting for a slot, oldest first. */
  readonly #queue: string[] = [];
  /** Results waiting for their ACK. */
  readonly #results = new Map<string, Result>();
  #running = 0;
  #socket: Dealer | undefined;
  #sending: Promise<void> = Promise.resolve();
  #lastHeard = 0;
  #nextHeartbeat = 0;
  #ticker: NodeJS.Timeout | undefined;
  #state: 'idle' | 'running' | 'done' = 'idle';
  #finish: (err?: Error) => void = () => undefined;
  // Stopping: asked once (graceful) or twice (hard).
  #stopRequests = 0;
  #draining = false;
  #echo = 0;
  #echoed = false;
  #stopDeadline = 0;
  #ackDeadline = 0;
  #cancelledAll = false;
  #refused: string | undefined;

  readonly #curve: CurveKeys | undefined;
  // Something came on the current socket: its handshake succeeded.
  #heard = false;

  constructor(options: WorkerOptions = {}) {
    this.broker = options.broker ?? 'tcp://127.0.0.1:5556';
    this.name = options.name ?? madeUpName();
    if (!WORKER_NAME.test(this.name) || this.name.startsWith('0x')) {
      throw new JobqError(
        'bad_request',
        `worker name '${this.name}': use 1-64 printable characters, not starting with 0x`,
      );
    }
    this.#options = {
      concurrency: options.concurrency ?? 4,
      prefetch: options.prefetch ?? 0,
      heartbeatMs: options.heartbeatMs ?? 1000,
      brokerTimeoutMs: options.brokerTimeoutMs ?? 5000,
      graceMs: options.graceMs ?? 10000,
      stopSignals: options.stopSignals ?? ['SIGTERM', 'SIGINT'],
    };
    this.#curve = resolveCurve(options.curve);
    const { concurrency, prefetch } = this.#options;
    if (
      !Number.isInteger(concurrency) ||
      concurrency < 1 ||
      !Number.isInteger(prefetch) ||
      prefetch < 0 ||
      concurrency + prefetch > Limits.capacity
    ) {
      throw new JobqError(
        'bad_request',
        `concurrency (at least 1) and prefetch together may be at most ${Limits.capacity}`,
      );
    }
    this.#log = options.log ?? (() => undefined);
  }

  /** Run processor for jobs of type (before `run`). */
  processor<TInput = JobData, TOutput extends object = JobData>(
    type: string,
    processor: Processor<TInput, TOutput>,
  ): this {
    if (this.#state !== 'idle') throw new JobqError('invalid_state', 'register processors before run()');
    if (!TYPE_NAME.test(type)) throw new JobqError('bad_request', `job type '${type}': use 1-64 of [a-z0-9_.-]`);
    if (!this.#processors.has(type) && this.#processors.size === Limits.workerTypes) {
      throw new JobqError('too_large', `a worker runs at most ${Limits.workerTypes} types`);
    }
    this.#processors.set(type, processor as unknown as Processor);
    return this;
  }

  /**
   * Connect, register and run jobs until stopped (`stop()` or a stop signal).
   * Resolves once every held job has ended and its result was acknowledged (or
   * the time for that ran out); rejects with a `forbidden` JobqError if the
   * broker refuses this worker, and with `bad_request` at once if `broker`
   * is not an endpoint (no stop signal handler is left behind).
   */
  run(): Promise<void> {
    if (this.#state !== 'idle') return Promise.reject(new JobqError('invalid_state', 'a worker runs once'));
    if (this.#processors.size === 0) return Promise.reject(new JobqError('bad_request', 'no processor registered'));
    return new Promise<void>((resolve, reject) => {
      try {
        this.#connect();
      } catch (err) {
        // A bad endpoint: nothing was started, and no signal handler installed.
        this.#state = 'done';
        this.#socket = undefined;
        const why = err instanceof Error ? err.message : String(err);
        reject(new JobqError('bad_request', `cannot connect to ${this.broker}: ${why}`));
        return;
      }
      const onSignal = (): void => this.stop();
      for (const s of this.#options.stopSignals) process.on(s, onSignal);
      this.#state = 'running';
      this.#finish = (err) => {
        this.#state = 'done';
        clearInterval(this.#ticker);
        for (const s of this.#options.stopSignals) process.off(s, onSignal);
        if (this.#socket) {
          // Results already queued get a moment to leave.
          this.#socket.linger = 1000;
          this.#socket.close();
          this.#socket = undefined;
        }
        if (err) reject(err);
        else resolve();
      };
      this.#ticker = setInterval(() => this.#tick(), TICK_MS);
    });
  }

  /** Stop: the first call lets running jobs finish within the grace period; a second stops at once. */
  stop(): void {
    this.#stopRequests++;
    this.#tick();
  }

  // --- the connection -------------------------------------------------------

  /** Connect a new socket (closing the old one) and register; throws if the endpoint is not one. */
  #connect(): void {
    this.#socket?.close();
    this.#socket = undefined;
    const socket = new Dealer({
      routingId: this.name,
      linger: 0,
      maxMessageSize: Limits.frameBytes,
      sendTimeout: this.#options.brokerTimeoutMs,
      receiveHighWaterMark: RECEIVE_HWM,
      ...curveSocketOptions(this.#curve),
    });
    this.#heard = false;
    try {
      socket.connect(this.broker);
    } catch (err) {
      socket.close();
      throw err;
    }
    this.#socket = socket;
    this.#lastHeard = Date.now();
    void this.#receive(socket);
    this.#ready();
    this.#resend(Infinity);
  }

  async #receive(socket: Dealer): Promise<void> {
    try {
      for await (const parts of socket) {
        if (socket === this.#socket) this.#heard = true;
        const msg = parseMessage(parts as Buffer[]);
        if (!msg) {
          this.#log('warn', 'bad message from broker: dropped');
          continue;
        }
        if (msg.problem !== undefined) {
          this.#undecodable(msg.cmd, msg.body, msg.problem);
          continue;
        }
        this.#lastHeard = Date.now();
        this.#fromBroker(msg.cmd, msg.body);
      }
    } catch {
      // closed
    }
  }

  #send(cmd: number, body: Body): Promise<void> {
    return this.#sendBytes(cmd, encodeBody(body));
  }

  #sendBytes(cmd: number, body: Buffer): Promise<void> {
    const socket = this.#socket;
    if (!socket) return Promise.resolve();
    // One send at a time on a socket; one that fails is made good by the
    // heartbeats' job lists and the resends of results.
    this.#sending = this.#sending
      .then(() => (socket.closed ? undefined : socket.send(frames(cmd, body))))
      .catch(() => undefined);
    return this.#sending;
  }

  /**
   * The attempts we hold: queued, running, and finished with their result
   * not yet acknowledged; at most 1024, the protocol's limit (section 11),
   * those held first.
   */
  #heldList(): Body[] {
    const list: Body[] = [];
    for (const { id, attempt } of this.#held.values()) {
      if (list.length === Limits.heldJobs) return list;
      list.push({ id, attempt });
    }
    for (const [k, { id, attempt }] of this.#results) {
      if (list.length === Limits.heldJobs) return list;
      if (!this.#held.has(k)) list.push({ id, attempt });
    }
    return list;
  }

  #ready(): void {
    const { concurrency, prefetch } = this.#options;
    let echo: number | undefined;
    if (this.#draining) {
      // The broker sends the echo back after every JOB it sent before this
      // READY: until then a JOB may be on its way.
      echo = ++this.#echo;
      this.#echoed = false;
    }
    void this.#send(Cmd.READY, {
      types: [...this.#processors.keys()],
      capacity: this.#draining ? 0 : concurrency + prefetch,
      name: this.name,
      jobs: this.#heldList(),
      echo,
    });
  }

  /** Send again every result not acknowledged since before cutoff (ms since the epoch). */
  #resend(cutoff: number): void {
    const now = Date.now();
    for (const r of this.#results.values()) {
      if (r.sentAt > cutoff) continue;
      r.sentAt = now;
      void this.#sendBytes(r.cmd, r.body);
    }
  }

  /** Keep a result until its ACK, and send it. */
  #result(id: string, attempt: number, cmd: number, body: Body): void {
    const bytes = encodeBody({ id, attempt, ...body });
    this.#results.set(key(id, attempt), { id, attempt, cmd, body: bytes, sentAt: Date.now() });
    void this.#sendBytes(cmd, bytes);
  }

  // --- messages from the broker ---------------------------------------------

  #fromBroker(cmd: number, body: Body): void {
    switch (cmd) {
      case Cmd.JOB:
        this.#job(body);
        break;
      case Cmd.CANCEL_JOB:
        this.#cancelJob(body);
        break;
      case Cmd.ACK: {
        const k = key(String(body.id), Number(body.attempt));
        if (this.#results.delete(k) && body.taken !== true) {
          this.#log(
            'info',
            `job ${String(body.id)} attempt ${Number(body.attempt)}: result not taken (the attempt had ended, or its result was recorded before)`,
          );
        }
        break;
      }
      case Cmd.HEARTBEAT:
        if (this.#draining && body.echo === this.#echo) this.#echoed = true;
        break;
      case Cmd.DISCONNECT: {
        const reason = typeof body.reason === 'string' ? body.reason : '';
        if (reason.startsWith('forbidden:')) {
          // Asking again would be refused again: stop, and say why.
          this.#log('error', `the broker refuses this worker: ${reason}`);
          this.#refused = reason;
          this.#tick();
          break;
        }
        // The broker does not know us (it restarted, or dropped us after
        // silence): register again; running jobs go on, and results not
        // acknowledged go again.
        this.#ready();
        this.#resend(Infinity);
        break;
      }
      default:
        break;
    }
  }

  /**
   * A message whose body could not be decoded. A JOB that names its attempt
   * is answered with a permanent FAIL that says why (dropping it would only
   * have the broker send it again, attempt after attempt); others are dropped.
   */
  #undecodable(cmd: number, body: Body, problem: string): void {
    const { id, attempt } = body;
    if (cmd !== Cmd.JOB || !isJobId(id) || !isAttempt(attempt)) {
      this.#log('warn', `message 0x${cmd.toString(16)} from broker could not be decoded (${problem}): dropped`);
      return;
    }
    this.#lastHeard = Date.now();
    const k = key(id, attempt);
    if (this.#held.has(k) || this.#results.has(k)) return;
    this.#log('error', `job ${id} attempt ${attempt} could not be decoded (${problem}): failed for good`);
    this.#result(id, attempt, Cmd.FAIL, {
      error: truncateUtf8(`job could not be decoded: ${problem}`, Limits.errorBytes),
      permanent: true,
    });
  }

  #job(body: Body): void {
    const { id, attempt } = body;
    if (!isJobId(id) || !isAttempt(attempt) || typeof body.type !== 'string') {
      this.#log('warn', 'bad JOB from broker: dropped');
      return;
    }
    const k = key(id, attempt);
    if (this.#held.has(k)) return; // a repeat of a JOB we run or hold
    const done = this.#results.get(k);
    if (done) {
      // A repeat of a JOB whose attempt has ended here: not run again; its
      // result goes again instead.
      done.sentAt = Date.now();
      void this.#sendBytes(done.cmd, done.body);
      return;
    }
    if (this.#results.size >= MAX_RESULTS) {
      this.#log('warn', `job ${id} attempt ${attempt}: ${this.#results.size} results wait for their ACK: dropped`);
      return;
    }
    const { concurrency, prefetch } = this.#options;
    if (this.#stopRequests > 0) {
      this.#failUnstarted(id, attempt, 'worker shutting down', true);
      return;
    }
    if (this.#held.size >= concurrency + prefetch || this.#held.size + this.#results.size >= Limits.heldJobs) {
      this.#failUnstarted(id, attempt, 'worker has no free slot', true);
      return;
    }
    const dispatch = {
      type: body.type,
      shopId: typeof body.shop_id === 'string' ? body.shop_id : '',
      input: asMap(body.input) ?? {},
      timeoutMs: typeof body.timeout === 'number' ? body.timeout : 0,
    };
    this.#held.set(k, { id, attempt, dispatch, job: undefined });
    this.#queue.push(k);
    this.#pump();
  }

  #cancelJob(body: Body): void {
    const k = key(String(body.id), Number(body.attempt));
    const held = this.#held.get(k);
    if (!held) return; // not ours (any more): ignored
    if (held.job) {
      held.job.cancel('cancelled');
      return;
    }
    this.#queue.splice(this.#queue.indexOf(k), 1);
    this.#held.delete(k);
    this.#failUnstarted(held.id, held.attempt, 'cancelled', false);
  }

  /**
   * Report an attempt that no processor ran: released (never started, back to
   * pending at once, not counted) or cancelled while it waited.
   */
  #failUnstarted(id: string, attempt: number, why: string, released: boolean): void {
    this.#result(id, attempt, Cmd.FAIL, { error: why, released, cancelled: !released });
  }

  // --- running processors ---------------------------------------------------

  /** Start queued jobs while slots are free. */
  #pump(): void {
    while (this.#running < this.#options.concurrency && this.#queue.length > 0) {
      const held = this.#held.get(this.#queue.shift()!)!;
      void this.#runJob(held);
    }
  }

  async #runJob(held: Held): Promise<void> {
    const { id, attempt } = held;
    const dispatch = held.dispatch!;
    held.dispatch = undefined;
    const job = new RunningJob({ id, attempt, ...dispatch }, (percent, message) =>
      this.#send(Cmd.PROGRESS, { id, attempt, progress: percent, message }),
    );
    held.job = job;
    this.#running++;
    this.#log('info', `job ${id} ${dispatch.type} attempt ${attempt} started`);
    let outcome: { cmd: number; body: Body };
    try {
      const processor = this.#processors.get(dispatch.type);
      if (!processor) throw new JobFailure(`no processor for type '${dispatch.type}'`, { permanent: true });
      outcome = this.#completion(await processor(job));
    } catch (err) {
      const text = errorText(err) || (job.cancelled ? 'cancelled' : '');
      outcome = {
        cmd: Cmd.FAIL,
        body: {
          error: truncateUtf8(text, Limits.errorBytes),
          permanent: err instanceof JobFailure && err.permanent,
          cancelled: job.cancelled,
        },
      };
    }
    job.end();
    this.#running--;
    this.#held.delete(key(id, attempt));
    this.#result(id, attempt, outcome.cmd, outcome.body);
    this.#log('info', `job ${id} attempt ${attempt} ${outcome.cmd === Cmd.COMPLETE ? 'completed' : 'failed'}`);
    this.#pump();
    this.#tick();
  }

  /** COMPLETE with output, or a permanent FAIL when output cannot be sent. */
  #completion(output: unknown): { cmd: number; body: Body } {
    const map = output ?? {};
    let problem = dataProblem(map, 'output');
    if (!problem) {
      const encoded = encodeData(map as Body, 'output', Limits.outputBytes);
      if (Buffer.isBuffer(encoded)) return { cmd: Cmd.COMPLETE, body: { output: map } };
      if (encoded.code === 'too_large') throw new JobFailure('processor output too large', { permanent: true });
      problem = encoded;
    }
    throw new JobFailure(
      `processor output is not one valid msgpack map within the protocol's limits (${problem.message})`,
      { permanent: true },
    );
  }

  // --- timers and stopping --------------------------------------------------

  #tick(): void {
    if (this.#state !== 'running') return;
    const now = Date.now();
    if (this.#refused) {
      this.#finish(new JobqError('forbidden', this.#refused));
      return;
    }
    if (this.#stopRequests > 0 && this.#stopping(now)) return;
    if (this.#results.size > 0) this.#resend(now - this.#options.brokerTimeoutMs / 2);
    if (now >= this.#nextHeartbeat) {
      void this.#send(Cmd.HEARTBEAT, { jobs: this.#heldList() });
      this.#nextHeartbeat = now + this.#options.heartbeatMs;
    }
    if (now > this.#lastHeard + this.#options.brokerTimeoutMs) {
      this.#log('warn', `broker silent for ${this.#options.brokerTimeoutMs} ms, reconnecting${this.#heard ? '' : keyHint(this.#curve)}`);
      try {
        this.#connect();
      } catch (err) {
        this.#finish(new JobqError('unavailable', `cannot connect to ${this.broker}: ${errorText(err)}`));
      }
    }
  }

  /** One step of stopping; true once the worker has finished. */
  #stopping(now: number): boolean {
    const hard = this.#stopRequests > 1;
    if (!this.#draining) {
      // No new jobs, and the ones waiting go back to the broker.
      this.#draining = true;
      this.#stopDeadline = now + this.#options.graceMs;
      this.#ready();
      for (const k of this.#queue.splice(0)) {
        const held = this.#held.get(k)!;
        this.#held.delete(k);
        this.#failUnstarted(held.id, held.attempt, 'worker shutting down', true);
      }
    }
    if (hard && this.#stopDeadline > now) {
      // Asked twice: no grace for running jobs, little for ACKs.
      this.#stopDeadline = now;
      if (this.#ackDeadline > now + 1000) this.#ackDeadline = now + 1000;
    }
    if (this.#held.size > 0 && !this.#cancelledAll && now >= this.#stopDeadline) {
      // Grace is over: ask the running jobs to stop, and give them a last
      // moment to report, so the broker can retry them at once.
      for (const held of this.#held.values()) held.job?.cancel('cancelled: the worker is stopping');
      this.#cancelledAll = true;
      this.#stopDeadline = now + 1000;
    }
    const ended = this.#held.size === 0 || (this.#cancelledAll && now >= this.#stopDeadline);
    if (!ended) return false;
    if (this.#results.size === 0 && (this.#echoed || hard)) {
      this.#finish();
      return true;
    }
    if (this.#ackDeadline === 0) this.#ackDeadline = now + (hard ? 1000 : this.#options.brokerTimeoutMs);
    if (now >= this.#ackDeadline) {
      const n = this.#results.size;
      this.#log(
        'warn',
        n === 0
          ? 'stopping without word from the broker: a job it sent last may wait for its lease to end'
          : `stopping with ${n} result(s) the broker has not acknowledged: their jobs will run again`,
      );
      this.#finish();
      return true;
    }
    return false;
  }
}
