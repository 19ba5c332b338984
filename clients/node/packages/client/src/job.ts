/**
 * The job map of docs/PROTOCOL.md section 6, with the camelCase names of the
 * gateway's JSON (docs/HTTP.md, "Jobs in JSON"). Times are `Date`s (`null`:
 * not yet).
 */
import { JobqError } from './errors';
import { asMap, isJobId, type Body } from './protocol';

export type JobState = 'pending' | 'running' | 'completed' | 'failed' | 'cancelled';

const JOB_STATES: readonly JobState[] = ['pending', 'running', 'completed', 'failed', 'cancelled'];

/** The states nothing but a retry changes. */
export function isFinal(state: JobState): boolean {
  return state === 'completed' || state === 'failed' || state === 'cancelled';
}

/** Why a job that has not ended is not running now (section 6, `wait`). */
export type WaitReason = 'queued' | 'no_worker' | 'delayed' | 'retry' | 'worker_lost';

const WAIT_REASONS: readonly string[] = ['queued', 'no_worker', 'delayed', 'retry', 'worker_lost'];

export interface JobWait {
  reason: WaitReason;
  /** When the wait ends, if the broker knows. */
  until: Date | null;
}

/** One failed attempt. */
export interface JobAttemptError {
  attempt: number;
  error: string;
  at: Date;
}

/** Any msgpack map, as input or output. */
export type JobData = Record<string, unknown>;

/**
 * A job as the broker reported it. `input`, `output` and `errors` come only
 * with a job read by id (getJobStatus, cancelJob, retryJob, and the final state
 * of watchJob); elsewhere (lists, the progress of a watch) they are `null`,
 * `null` and `[]`.
 */
export interface Job<TInput = JobData, TOutput = JobData> {
  id: string;
  type: string;
  status: JobState;
  shopId: string;
  input: TInput | null;
  /** The worker's output; `null` unless the job completed. */
  output: TOutput | null;
  /** 0 to 100. */
  progress: number;
  /** The last progress message. */
  message: string | null;
  /** The last error (of the last failed attempt, or "cancelled"). */
  error: string | null;
  /** Each failed attempt, oldest first (the newest 100). */
  errors: JobAttemptError[];
  /** The number of the current or last attempt. */
  attempts: number;
  maxAttempts: number;
  priority: number;
  runAt: Date | null;
  /** Milliseconds one attempt may run, 0 for no limit. */
  timeoutMs: number;
  /** The idempotency key. */
  key: string | null;
  createdAt: Date;
  updatedAt: Date;
  startedAt: Date | null;
  completedAt: Date | null;
  /** The worker holding the current attempt. */
  worker: string | null;
  leaseUntil: Date | null;
  /** Changes of this job so far: 1 at creation, +1 per change. */
  version: number;
  /** The broker's sequence number of the job's last change. */
  seq: number;
  /** Why the job waits; absent while it runs under a live worker or once it ended. */
  wait?: JobWait;
}

function malformed(what: string): JobqError {
  return new JobqError('internal', `malformed job map from the broker: ${what}`);
}

function str(m: Body, key: string): string {
  const v = m[key];
  if (typeof v !== 'string') throw malformed(`'${key}' is not a string`);
  return v;
}

function optStr(m: Body, key: string): string | null {
  const v = m[key];
  return typeof v === 'string' ? v : null;
}

function integer(m: Body, key: string): number {
  const v = m[key];
  if (typeof v !== 'number' || !Number.isInteger(v)) throw malformed(`'${key}' is not an integer`);
  return v;
}

function time(v: unknown): Date | null {
  return typeof v === 'number' && v > 0 ? new Date(v) : null;
}

function wait(v: unknown): JobWait | undefined {
  const w = asMap(v);
  // An unknown reason is read as if `wait` were absent (section 6).
  if (!w || typeof w.reason !== 'string' || !WAIT_REASONS.includes(w.reason)) return undefined;
  return { reason: w.reason as WaitReason, until: time(w.until) };
}

function attemptErrors(v: unknown): JobAttemptError[] {
  if (!Array.isArray(v)) return [];
  return v.flatMap((e) => {
    const m = asMap(e);
    if (!m || typeof m.attempt !== 'number' || typeof m.error !== 'string') return [];
    return [{ attempt: m.attempt, error: m.error, at: time(m.at) ?? new Date(0) }];
  });
}

/** A job map from the broker (a reply's `job`, a list entry, or an event body). */
export function toJob<TInput = JobData, TOutput = JobData>(value: unknown): Job<TInput, TOutput> {
  const m = asMap(value);
  if (!m) throw malformed('not a map');
  const id = m.id;
  if (!isJobId(id)) throw malformed("'id' is not a job id");
  const status = str(m, 'status');
  if (!(JOB_STATES as readonly string[]).includes(status)) throw malformed(`unknown status '${status}'`);
  const job: Job<TInput, TOutput> = {
    id,
    type: str(m, 'type'),
    status: status as JobState,
    shopId: str(m, 'shop_id'),
    input: (asMap(m.input) as TInput | undefined) ?? null,
    output: (asMap(m.output) as TOutput | undefined) ?? null,
    progress: integer(m, 'progress'),
    message: optStr(m, 'message'),
    error: optStr(m, 'error'),
    errors: attemptErrors(m.errors),
    attempts: integer(m, 'attempts'),
    maxAttempts: integer(m, 'max_attempts'),
    priority: integer(m, 'priority'),
    runAt: time(m.run_at),
    timeoutMs: integer(m, 'timeout'),
    key: optStr(m, 'key'),
    createdAt: time(m.created_at) ?? new Date(0),
    updatedAt: time(m.updated_at) ?? new Date(0),
    startedAt: time(m.started_at),
    completedAt: time(m.completed_at),
    worker: optStr(m, 'worker'),
    leaseUntil: time(m.lease_until),
    version: integer(m, 'version'),
    seq: integer(m, 'seq'),
  };
  const w = wait(m.wait);
  if (w) job.wait = w;
  return job;
}
