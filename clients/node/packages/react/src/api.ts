/**
 * The calls of jobq-gateway's HTTP API that the hook and the component need
 * (docs/HTTP.md): read a job, enqueue one.
 */
import type { Job, JobData } from './types';

/**
 * A job that failed or was cancelled (`code` "failed" or "cancelled", and
 * `job`), or a request the gateway refused or did not answer (`code` the
 * gateway's, such as "unknown_job", or "network"; `status` the HTTP status).
 */
export class JobError<TInput = JobData, TOutput = JobData> extends Error {
  override readonly name = 'JobError';
  readonly code: string;
  readonly status: number | undefined;
  readonly job: Job<TInput, TOutput> | undefined;

  constructor(code: string, message: string, details: { status?: number; job?: Job<TInput, TOutput> } = {}) {
    super(message);
    this.code = code;
    this.status = details.status;
    this.job = details.job;
  }
}

export interface RequestOptions {
  /** The fetch to use (default the global one). */
  fetch?: typeof fetch;
  /** Headers for every request, such as `Authorization: Bearer ...`. */
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** A job to POST to /v1/jobs. */
export interface CreateJobRequest<TInput = JobData> {
  type: string;
  shopId: string;
  input?: TInput;
  priority?: number;
  delayMs?: number;
  maxAttempts?: number;
  timeoutMs?: number;
  /** Idempotency key: the same key in the same shop within 24 hours names the same job. */
  key?: string;
}

/** The URL of a gateway path under baseUrl ("" for the page's own origin). */
export function gatewayUrl(baseUrl: string, path: string): string {
  return `${baseUrl.replace(/\/+$/, '')}${path}`;
}

async function call<T>(url: string, init: RequestInit, options: RequestOptions): Promise<T> {
  let response: Response;
  try {
    response = await (options.fetch ?? fetch)(url, {
      ...init,
      headers: { Accept: 'application/json', ...init.headers, ...options.headers },
      signal: options.signal ?? null,
    });
  } catch (err) {
    if (options.signal?.aborted) throw err;
    throw new JobError('network', `no answer from ${url}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const body: unknown = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
    throw new JobError(
      typeof detail?.code === 'string' ? detail.code : 'http_error',
      typeof detail?.message === 'string' ? detail.message : `HTTP ${response.status} from ${url}`,
      { status: response.status },
    );
  }
  return body as T;
}

/** GET /v1/jobs/{id}: the job with its input, output and errors. */
export function getJob<TInput = JobData, TOutput = JobData>(
  baseUrl: string,
  id: string,
  options: RequestOptions = {},
): Promise<Job<TInput, TOutput>> {
  return call(gatewayUrl(baseUrl, `/v1/jobs/${encodeURIComponent(id)}`), { method: 'GET' }, options);
}

/** POST /v1/jobs: enqueue a job; resolves once it is durable. */
export function createJob<TInput = JobData>(
  baseUrl: string,
  request: CreateJobRequest<TInput>,
  options: RequestOptions = {},
): Promise<{ id: string; created: boolean }> {
  return call(
    gatewayUrl(baseUrl, '/v1/jobs'),
    { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(request) },
    options,
  );
}
