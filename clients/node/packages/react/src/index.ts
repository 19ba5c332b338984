export { JobError, createJob, getJob, type CreateJobRequest, type RequestOptions } from './api';
export {
  FetchEventSource,
  type EventSourceFactory,
  type EventSourceLike,
  type FetchEventSourceOptions,
} from './event-source';
export { followJob, type FollowCallbacks, type FollowOptions, type Unsubscribe } from './follow';
export { JobStatus, JobStatusView, type JobStatusProps, type JobStatusViewProps } from './JobStatus';
export { SseParser, type SseEvent } from './sse';
export { subscribeJob } from './subscribe';
export { isFinal, type Job, type JobAttemptError, type JobData, type JobState, type JobWait } from './types';
export { useFollowJob, type FollowedJob } from './useFollowJob';
export { useJob, type JobStarter, type UseJobOptions, type UseJobResult } from './useJob';
