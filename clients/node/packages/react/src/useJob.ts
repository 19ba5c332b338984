'use client';

/** useJob: start a job and follow it to its end. */
import { useCallback, useRef, useState } from 'react';
import { JobError, createJob, type CreateJobRequest } from './api';
import type { FollowOptions } from './follow';
import type { Job, JobData, JobState } from './types';
import { useFollowJob } from './useFollowJob';

export interface UseJobOptions<TInput = JobData, TOutput = JobData> {
  /** Called once when the job completes. */
  onComplete?(job: Job<TInput, TOutput>): void;
  /** Called once when the job fails or is cancelled, or it could not be started or followed. */
  onError?(error: JobError<TInput, TOutput>): void;
  /** The gateway's URL (default "": the page's own origin). */
  baseUrl?: string;
  /** How to follow the job (see followJob). */
  follow?: FollowOptions;
}

/**
 * What starts a job: a function that enqueues it and resolves with its id (a
 * server action, for example), or a job to POST to the gateway's /v1/jobs.
 */
export type JobStarter<TInput = JobData> = (() => Promise<string | { id: string }>) | CreateJobRequest<TInput>;

export interface UseJobResult<TInput = JobData, TOutput = JobData> {
  /** Start a job and follow it; resolves with its id, or null when it could not start (see `error`). */
  startJob(starter: JobStarter<TInput>): Promise<string | null>;
  /** The id of the job followed now. */
  currentJobId: string | null;
  /** True while there is a job to show (pass currentJobId to <JobStatus>). */
  showJobStatus: boolean;
  /** Report the job's completion; the hook calls it itself, and so may <JobStatus onComplete>. Once per job. */
  handleJobComplete(job: Job<TInput, TOutput>): void;
  /** Report the job's failure; as handleJobComplete. */
  handleJobError(error: JobError<TInput, TOutput>): void;
  /** The job's latest state. */
  job: Job<TInput, TOutput> | null;
  /** "idle" before any job, "starting" while it is being enqueued, then the job's state. */
  status: JobState | 'idle' | 'starting';
  /** 0 to 100. */
  progress: number;
  error: JobError<TInput, TOutput> | null;
}

export function useJob<TInput = JobData, TOutput = JobData>(
  options: UseJobOptions<TInput, TOutput> = {},
): UseJobResult<TInput, TOutput> {
  const baseUrl = options.baseUrl ?? '';
  const [currentJobId, setCurrentJobId] = useState<string | null>(null);
  const [starting, setStarting] = useState(false);
  const [startError, setStartError] = useState<JobError<TInput, TOutput> | null>(null);
  const latest = useRef(options);
  latest.current = options;
  // The job whose end was reported: the hook and <JobStatus> may both report it.
  const reported = useRef<string | null>(null);
  const current = useRef<string | null>(null);

  const handleJobComplete = useCallback((job: Job<TInput, TOutput>) => {
    if (reported.current === job.id) return;
    reported.current = job.id;
    latest.current.onComplete?.(job);
  }, []);

  const handleJobError = useCallback((error: JobError<TInput, TOutput>) => {
    const id = error.job?.id ?? current.current;
    if (id !== null && reported.current === id) return;
    reported.current = id;
    latest.current.onError?.(error);
  }, []);

  const { job, error: followError } = useFollowJob<TInput, TOutput>(
    baseUrl,
    currentJobId,
    { onComplete: handleJobComplete, onError: handleJobError },
    options.follow,
  );

  const startJob = useCallback(
    async (starter: JobStarter<TInput>): Promise<string | null> => {
      setStartError(null);
      setStarting(true);
      try {
        const started =
          typeof starter === 'function'
            ? await starter()
            : await createJob(baseUrl, starter, latest.current.follow?.request ?? {});
        const id = typeof started === 'string' ? started : started.id;
        reported.current = null;
        current.current = id;
        setCurrentJobId(id);
        return id;
      } catch (err) {
        const error =
          err instanceof JobError
            ? (err as JobError<TInput, TOutput>)
            : new JobError<TInput, TOutput>('start_failed', err instanceof Error ? err.message : String(err));
        current.current = null;
        setCurrentJobId(null);
        setStartError(error);
        latest.current.onError?.(error);
        return null;
      } finally {
        setStarting(false);
      }
    },
    [baseUrl],
  );

  return {
    startJob,
    currentJobId,
    showJobStatus: currentJobId !== null,
    handleJobComplete,
    handleJobError,
    job,
    status: starting ? 'starting' : (job?.status ?? (currentJobId ? 'pending' : 'idle')),
    progress: job?.progress ?? 0,
    error: startError ?? followError,
  };
}
