'use client';

/** The state of one followed job, for React: followJob in an effect. */
import { useEffect, useRef, useState } from 'react';
import type { JobError } from './api';
import { followJob, type FollowCallbacks, type FollowOptions } from './follow';
import type { Job, JobData } from './types';

export interface FollowedJob<TInput, TOutput> {
  job: Job<TInput, TOutput> | null;
  error: JobError<TInput, TOutput> | null;
}

/**
 * Follow jobId (none while null) and keep its latest state. The callbacks may
 * change between renders without restarting the stream. It stops when the
 * job ends, jobId or baseUrl change, or the component unmounts.
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
    return followJob<TInput, TOutput>(
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
