/**
 * followJob: the framework-free core of useJob and <JobStatus>. It follows
 * one job through jobq-gateway until the job ends, over its event stream
 * (GET /v1/jobs/{id}/events) where EventSource exists, else by polling
 * GET /v1/jobs/{id}, and reports each newer state once, in version order.
 */
import { JobError, getJob, gatewayUrl, type RequestOptions } from './api';
import type { EventSourceFactory, EventSourceLike } from './event-source';
import { isFinal, type Job, type JobData } from './types';

export interface FollowCallbacks<TInput = JobData, TOutput = JobData> {
  /** Every newer state of the job, the final one included. */
  onUpdate?(job: Job<TInput, TOutput>): void;
  /** The job completed (its output is in `job.output`). */
  onComplete?(job: Job<TInput, TOutput>): void;
  /**
   * The job failed or was cancelled (`error.job` holds it), or it cannot be
   * followed (an unknown job, a refused request: `error.status`).
   */
  onError?(error: JobError<TInput, TOutput>): void;
}

export interface FollowOptions {
  /**
   * "sse": the event stream; "polling": GET every pollIntervalMs; "auto"
   * (default): the stream where an EventSource exists, else polling.
   */
  transport?: 'auto' | 'sse' | 'polling';
  /** Milliseconds between two reads when polling (default 2000). */
  pollIntervalMs?: number;
  /** Opens the event stream (default: the global EventSource). Pass one of FetchEventSource to send headers. */
  eventSource?: EventSourceFactory;
  /** fetch and headers for polling. */
  request?: Omit<RequestOptions, 'signal'>;
}

/** Stops following; safe to call more than once. */
export type Unsubscribe = () => void;

const CLOSED = 2;

function globalEventSource(): EventSourceFactory | undefined {
  const Source = (globalThis as { EventSource?: new (url: string) => EventSourceLike }).EventSource;
  return Source && ((url) => new Source(url));
}

/** Follow job id under the gateway at baseUrl ("" for the page's own origin) until it ends. */
export function followJob<TInput = JobData, TOutput = JobData>(
  baseUrl: string,
  id: string,
  callbacks: FollowCallbacks<TInput, TOutput>,
  options: FollowOptions = {},
): Unsubscribe {
  const openStream = options.transport === 'polling' ? undefined : (options.eventSource ?? globalEventSource());
  const pollMs = options.pollIntervalMs ?? 2000;
  const abort = new AbortController();
  let last: Job<TInput, TOutput> | undefined;
  let stream: EventSourceLike | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;

  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    stream?.close();
    clearTimeout(timer);
    abort.abort();
  };

  const fail = (error: JobError<TInput, TOutput>): void => {
    if (stopped) return;
    stop();
    callbacks.onError?.(error);
  };

  // A newer state is applied once; fields a state leaves out (events in
  // the middle of a stream carry no input) keep their last value.
  const apply = (incoming: Job<TInput, TOutput>): void => {
    if (stopped || incoming.id !== id || (last && incoming.version <= last.version)) return;
    const job = last ? { ...last, ...incoming } : incoming;
    last = job;
    callbacks.onUpdate?.(job);
    if (!isFinal(job.status)) return;
    stop();
    if (job.status === 'completed') callbacks.onComplete?.(job);
    else callbacks.onError?.(new JobError(job.status, job.error ?? `job ${job.status}`, { job }));
  };

  const poll = async (): Promise<void> => {
    try {
      apply(await getJob<TInput, TOutput>(baseUrl, id, { ...options.request, signal: abort.signal }));
    } catch (err) {
      // An unknown job or a refused request ends it; an unanswered one
      // (the gateway or the broker restarting: 503, network) is read again.
      if (err instanceof JobError && err.status !== undefined && err.status < 500 && err.status !== 429) {
        fail(err as JobError<TInput, TOutput>);
      }
    }
    if (!stopped) timer = setTimeout(() => void poll(), pollMs);
  };

  if (openStream) {
    stream = openStream(gatewayUrl(baseUrl, `/v1/jobs/${encodeURIComponent(id)}/events`));
    stream.addEventListener('job', (event) => {
      try {
        apply(JSON.parse((event as MessageEvent<string>).data) as Job<TInput, TOutput>);
      } catch {
        // not a job: ignored
      }
    });
    stream.addEventListener('error', () => {
      // A stream refused for good (an unknown job, a gateway without
      // streams): polling takes over, and says why if it fails too.
      if (stream?.readyState === CLOSED && !stopped) {
        stream.close();
        void poll();
      }
    });
  } else {
    void poll();
  }
  return stop;
}
