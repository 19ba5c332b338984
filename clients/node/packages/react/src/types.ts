/**
 * A job as jobq-gateway sends it (docs/HTTP.md, "Jobs in JSON"): the job map
 * of JOBQ/1 with camelCase names and times as ISO 8601 strings in UTC
 * (`null`: not yet).
 */
export type JobState = 'pending' | 'running' | 'completed' | 'failed' | 'cancelled';

export type JobData = Record<string, unknown>;

export interface JobWait {
  /** queued, no_worker, delayed, retry or worker_lost (others may come). */
  reason: string;
  until: string | null;
}

export interface JobAttemptError {
  attempt: number;
  error: string;
  at: string;
}

export interface Job<TInput = JobData, TOutput = JobData> {
  id: string;
  type: string;
  status: JobState;
  shopId: string;
  /** The input; a job read by id and the first event of a stream carry it. */
  input?: TInput | null;
  /** The output once the job completed. */
  output?: TOutput | null;
  /** 0 to 100. */
  progress: number;
  message: string | null;
  error: string | null;
  /** Each failed attempt, oldest first. */
  errors?: JobAttemptError[];
  attempts: number;
  maxAttempts: number;
  priority: number;
  runAt: string | null;
  timeoutMs: number;
  key: string | null;
  createdAt: string;
  updatedAt: string;
  startedAt: string | null;
  completedAt: string | null;
  worker: string | null;
  leaseUntil: string | null;
  /** Changes of this job so far; only grows. */
  version: number;
  /** Why a job that has not ended is not running now. */
  wait?: JobWait;
}

export function isFinal(state: JobState): boolean {
  return state === 'completed' || state === 'failed' || state === 'cancelled';
}
