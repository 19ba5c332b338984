'use client';

/** The state of one followed job, for React: subscribeJob in an effect. */
import { useEffect, useRef, useState } from 'react';
import type { JobError } from './api';
import type { FollowCallbacks, FollowOptions } from './follow';
import { subscribeJob } from './subscribe';
import type { Job, JobData } from './types';

export interface FollowedJob<TInput, TOutput> {
  job: Job<TInput, TOutput> | null;
  error: JobError<TInput, TOutput> | null;
}

/**
 * Follow jobId (none while null) and keep its latest state. Every follower of
 * the same job and gateway in the page (this hook, useJob, <JobStatus>)
 * shares one stream (see subscribeJob); options are those of the first that
 * gives any. The callbacks may change between renders without restarting
 * the stream; each is called once per job. It stops when jobId or baseUrl
 * change or the component unmounts; the shared stream closes when the job
 * ends or its last follower stops.
 */
export function useFollowJob<TInput = JobData, TOutput = JobData>(
  baseUrl: string,
  jobId: string | null,
  callbacks: Omit<FollowCallbacks<TInput, TOutput>, 'onUpdate'> = {},
  options?: FollowOptions,
): FollowedJob<TInput, TOutput> {
  const [state, setState] = useState<FollowedJob<TInput, TOutput> & { id: string | null }>({
    id: jobId,
    job: null,
    error: null,
  });
  const latest = useRef({ callbacks, options });
  latest.current = { callbacks, options };

  useEffect(() => {
    setState({ id: jobId, job: null, error: null });
    if (!jobId) return undefined;
    return subscribeJob<TInput, TOutput>(
      baseUrl,
      jobId,
      {
        onUpdate: (job) => setState((s) => ({ ...s, job })),
        onComplete: (job) => latest.current.callbacks.onComplete?.(job),
        onError: (error) => {
          setState((s) => ({ ...s, error }));
          latest.current.callbacks.onError?.(error);
        },
      },
      latest.current.options,
    );
  }, [baseUrl, jobId]);

  // Until the effect has run for a new id, the old job's state is not shown.
  return state.id === jobId ? { job: state.job, error: state.error } : { job: null, error: null };
}
