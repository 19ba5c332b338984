/**
 * Free functions on a default client, made at the first call from
 * `configureJobq`'s options, else from the environment (JOBQ_BROKER,
 * JOBQ_EVENTS; CURVE keys from JOBQ_CERT and JOBQ_BROKER_KEY), else the
 * default endpoints.
 */
import {
  JobqClient,
  type BatchResult,
  type EnqueueOptions,
  type EnqueueRequest,
  type JobPage,
  type JobqClientOptions,
  type ListFilter,
} from './client';
import type { Job, JobData } from './job';
import type { Stats } from './stats';
import type { WatchOptions } from './watch';

let options: JobqClientOptions = {};
let shared: JobqClient | undefined;

/** Set the default client's options; a client already made is closed and made again at the next call. */
export function configureJobq(next: JobqClientOptions): void {
  closeJobq();
  options = { ...next };
}

/** The default client. */
export function defaultClient(): JobqClient {
  shared ??= new JobqClient(options);
  return shared;
}

/** Close the default client (the next call makes a new one). */
export function closeJobq(): void {
  shared?.close();
  shared = undefined;
}

export function enqueueJob<TInput extends object = JobData>(
  type: string,
  shopId: string,
  input?: TInput,
  opts?: EnqueueOptions,
): Promise<string> {
  return defaultClient().enqueueJob(type, shopId, input, opts);
}

export function enqueueBatch<TInput extends object = JobData>(jobs: EnqueueRequest<TInput>[]): Promise<BatchResult> {
  return defaultClient().enqueueBatch(jobs);
}

export function getJobStatus<TInput = JobData, TOutput = JobData>(id: string): Promise<Job<TInput, TOutput>> {
  return defaultClient().getJobStatus<TInput, TOutput>(id);
}

export function cancelJob<TInput = JobData, TOutput = JobData>(id: string): Promise<Job<TInput, TOutput>> {
  return defaultClient().cancelJob<TInput, TOutput>(id);
}

export function retryJob<TInput = JobData, TOutput = JobData>(id: string): Promise<Job<TInput, TOutput>> {
  return defaultClient().retryJob<TInput, TOutput>(id);
}

export function listJobs<TInput = JobData, TOutput = JobData>(
  filter?: ListFilter,
): AsyncGenerator<Job<TInput, TOutput>> {
  return defaultClient().listJobs<TInput, TOutput>(filter);
}

export function listJobsPage<TInput = JobData, TOutput = JobData>(
  filter?: ListFilter & { cursor?: string | null },
): Promise<JobPage<TInput, TOutput>> {
  return defaultClient().listJobsPage<TInput, TOutput>(filter);
}

export function stats(): Promise<Stats> {
  return defaultClient().stats();
}

export function watchJob<TInput = JobData, TOutput = JobData>(
  id: string,
  opts?: WatchOptions,
): AsyncGenerator<Job<TInput, TOutput>, void, undefined> {
  return defaultClient().watchJob<TInput, TOutput>(id, opts);
}

export function waitForJob<TInput = JobData, TOutput = JobData>(
  id: string,
  opts?: WatchOptions,
): Promise<Job<TInput, TOutput>> {
  return defaultClient().waitForJob<TInput, TOutput>(id, opts);
}
