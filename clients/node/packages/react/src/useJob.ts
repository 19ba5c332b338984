'use client';

/**
 * useJob: start a job and follow it to its end. Render it with
 * `<JobStatus jobId={currentJobId} onComplete={handleJobComplete} onError={handleJobError} />`
 * (the hook and the component share one stream per job), or with
 * `<JobStatusView job={job} error={error} />`.
 */
import { useCallback, useEffect, useRef, useState } from 'react';
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
  /**
   * Start a job and follow it; resolves with its id, or null when it could
   * not start (see `error`). While a start is under way, another call
   * starts nothing and gets the same promise (a double click makes one
   * job). A start that ends after the component unmounted changes nothing
   * and calls no callback.
   */
  startJob(starter: JobStarter<TInput>): Promise<string | null>;
  /** The id of the job followed now. */
  currentJobId: string | null;
  /** True while there is a job to show, as `<JobStatus jobId={currentJobId} />`. */
  showJobStatus: boolean;
  /**
   * For `<JobStatus onComplete>`: reports the job's completion to the
   * hook's onComplete. The hook calls it too; onComplete runs once per job
   * whoever calls it first. <JobStatus> shares the hook's stream.
   */
  handleJobComplete(job: Job<TInput, TOutput>): void;
  /** For `<JobStatus onError>`: reports the job's failure to onError, once per job, as handleJobComplete. */
  handleJobError(error: JobError<TInput, TOutput>): void;
  /** The job's latest state. */
  job: Job<TInput, TOutput> | null;
  /** "idle" before any job, "starting" while it is being enqueued, then the job's state. */
  status: JobState | 'idle' | 'starting';
  /** 0 to 100. */
  progress: number;
  /** Why the job could not be started or followed, or failed or was cancelled. */
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
  // The start under way, if any; and whether the component is mounted
  // (a start that ends after unmounting is ignored).
  const inFlight = useRef<Promise<string | null> | null>(null);
  const mounted = useRef(false);
  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
    };
  }, []);

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

  const start = useCallback(
    async (starter: JobStarter<TInput>): Promise<string | null> => {
      setStartError(null);
      setStarting(true);
      try {
        const started =
          typeof starter === 'function'
            ? await starter()
            : await createJob(baseUrl, starter, latest.current.follow?.request ?? {});
        const id = typeof started === 'string' ? started : started?.id;
        if (typeof id !== 'string' || id === '') throw new Error('the starter gave no job id');
        if (!mounted.current) return id;
        reported.current = null;
        current.current = id;
        setCurrentJobId(id);
        return id;
      } catch (err) {
        if (!mounted.current) return null;
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
        if (mounted.current) setStarting(false);
      }
    },
    [baseUrl],
  );

  const startJob = useCallback(
    (starter: JobStarter<TInput>): Promise<string | null> => {
      if (inFlight.current) return inFlight.current;
      const run = start(starter);
      inFlight.current = run;
      void run.finally(() => {
        if (inFlight.current === run) inFlight.current = null;
      });
      return run;
    },
    [start],
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
