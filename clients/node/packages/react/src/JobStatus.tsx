'use client';

/**
 * <JobStatus>: a job's live state (a status indicator, a progress bar, the
 * progress message, success and error messages), followed over the gateway
 * until the job ends or the component unmounts.
 *
 * Styling: plain class names (jobq-status, jobq-status--<state> for a job
 * state, loading or unavailable,
 * jobq-status__badge, __dot, __label, __percent, __bar, __fill, __message,
 * __success, __error) over small inline defaults.
 */
import type { CSSProperties, ReactElement } from 'react';
import type { JobError } from './api';
import type { FollowOptions } from './follow';
import type { Job, JobData, JobState } from './types';
import { useFollowJob } from './useFollowJob';

export interface JobStatusProps<TInput = JobData, TOutput = JobData> {
  jobId: string;
  /** Called once when the job completes. */
  onComplete?(job: Job<TInput, TOutput>): void;
  /** Called once when the job fails or is cancelled, or cannot be followed. */
  onError?(error: JobError<TInput, TOutput>): void;
  /** The gateway's URL (default "": the page's own origin). */
  baseUrl?: string;
  follow?: FollowOptions;
  className?: string;
}

export interface JobStatusViewProps {
  job: Job<unknown, unknown> | null;
  error: JobError<unknown, unknown> | null;
  className?: string;
}

type ViewState = JobState | 'loading' | 'unavailable';

const COLORS: Record<ViewState, string> = {
  loading: '#6b7280',
  unavailable: '#dc2626',
  pending: '#6b7280',
  running: '#2563eb',
  completed: '#16a34a',
  failed: '#dc2626',
  cancelled: '#b45309',
};

const LABELS: Record<ViewState, string> = {
  loading: 'Loading…',
  unavailable: 'Job unavailable',
  pending: 'Waiting to start',
  running: 'Running',
  completed: 'Completed',
  failed: 'Failed',
  cancelled: 'Cancelled',
};

const WAITS: Record<string, string> = {
  queued: 'Queued: waiting for a free worker',
  no_worker: 'Waiting for a worker that runs this job',
  delayed: 'Scheduled for later',
  retry: 'Will be retried shortly',
  worker_lost: 'Its worker stopped answering; it will run again',
};

const styles = {
  box: {
    fontFamily: 'system-ui, sans-serif',
    fontSize: 14,
    border: '1px solid #e5e7eb',
    borderRadius: 8,
    padding: 12,
    maxWidth: 480,
  },
  badge: { display: 'flex', alignItems: 'center', gap: 8, fontWeight: 600 },
  dot: { width: 10, height: 10, borderRadius: '50%', display: 'inline-block' },
  percent: { marginLeft: 'auto', fontVariantNumeric: 'tabular-nums' },
  bar: { height: 8, background: '#e5e7eb', borderRadius: 4, overflow: 'hidden', marginTop: 8 },
  fill: { height: '100%', transition: 'width 0.3s ease' },
  text: { margin: '8px 0 0' },
} satisfies Record<string, CSSProperties>;

/**
 * The presentation alone, for a job state you hold: with useJob,
 * `<JobStatusView job={job} error={error} />`. It follows nothing.
 */
export function JobStatusView({ job, error, className }: JobStatusViewProps): ReactElement {
  const state: ViewState = job?.status ?? (error ? 'unavailable' : 'loading');
  const color = COLORS[state];
  const ended = state === 'completed' || state === 'failed' || state === 'cancelled';
  // A completed job's bar stays, full: the end of what the user watched.
  const progress = state === 'completed' ? 100 : Math.min(100, Math.max(0, job?.progress ?? 0));
  const barShown = job !== null && (!ended || state === 'completed');
  const waiting = state === 'pending' && job?.wait ? WAITS[job.wait.reason] : undefined;
  const problem = state === 'failed' || state === 'cancelled' ? (job?.error ?? error?.message) : error?.message;
  return (
    <div
      className={['jobq-status', `jobq-status--${state}`, className].filter(Boolean).join(' ')}
      role="status"
      aria-live="polite"
      style={styles.box}
    >
      <div className="jobq-status__badge" style={styles.badge}>
        <span className="jobq-status__dot" aria-hidden="true" style={{ ...styles.dot, background: color }} />
        <span className="jobq-status__label" style={{ color }}>
          {LABELS[state]}
        </span>
        {(state === 'running' || state === 'completed') && (
          <span className="jobq-status__percent" style={styles.percent}>
            {progress}%
          </span>
        )}
      </div>
      {barShown && (
        <div
          className="jobq-status__bar"
          role="progressbar"
          aria-valuemin={0}
          aria-valuemax={100}
          aria-valuenow={progress}
          style={styles.bar}
        >
          <div className="jobq-status__fill" style={{ ...styles.fill, width: `${progress}%`, background: color }} />
        </div>
      )}
      {!ended && (job?.message ?? waiting) && (
        <p className="jobq-status__message" style={styles.text}>
          {job?.message ?? waiting}
        </p>
      )}
      {state === 'completed' && (
        <p className="jobq-status__success" style={{ ...styles.text, color }}>
          Done.
        </p>
      )}
      {problem && (
        <p className="jobq-status__error" role="alert" style={{ ...styles.text, color: COLORS.failed }}>
          {state === 'cancelled' ? 'The job was cancelled.' : problem}
        </p>
      )}
    </div>
  );
}

/**
 * Follow jobId and show its state. Every follower of the same job in the
 * page shares one stream: with useJob,
 * `<JobStatus jobId={currentJobId} onComplete={handleJobComplete} onError={handleJobError} />`
 * opens no stream of its own. On its own, it follows the job itself.
 */
export function JobStatus<TInput = JobData, TOutput = JobData>({
  jobId,
  onComplete,
  onError,
  baseUrl = '',
  follow,
  className,
}: JobStatusProps<TInput, TOutput>): ReactElement {
  const { job, error } = useFollowJob<TInput, TOutput>(baseUrl, jobId, { onComplete, onError }, follow);
  return <JobStatusView job={job} error={error} {...(className === undefined ? {} : { className })} />;
}
