export {
  JobqClient,
  type BatchResult,
  type EnqueueOptions,
  type EnqueueRequest,
  type EnqueueResult,
  type JobPage,
  type JobqClientOptions,
  type ListFilter,
} from './client';
export {
  cancelJob,
  closeJobq,
  configureJobq,
  defaultClient,
  enqueueBatch,
  enqueueJob,
  getJobStatus,
  listJobs,
  listJobsPage,
  retryJob,
  stats,
  waitForJob,
  watchJob,
} from './defaults';
export { checkCurveKeys, curveKeysFromEnv, curveKeysFromFiles, type CurveKeys } from './curve';
export { JobqError, type JobqErrorCode, type WireErrorCode } from './errors';
export {
  isFinal,
  type Job,
  type JobAttemptError,
  type JobData,
  type JobState,
  type JobWait,
  type WaitReason,
} from './job';
export { JobCancelledError, JobFailure, type JobContext } from './job-context';
export type { Stats, WorkerInfo } from './stats';
export type { WatchOptions } from './watch';
export { Worker, type LogLevel, type Processor, type WorkerOptions } from './worker';
