/** The error codes of JOBQ/1 (docs/PROTOCOL.md section 7). */
const WIRE_ERROR_CODES = [
  'bad_request',
  'too_large',
  'unknown_command',
  'unsupported_version',
  'unknown_job',
  'invalid_state',
  'unavailable',
  'storage_full',
  'storage_error',
  'stale_attempt',
  'unknown_type',
  'forbidden',
  'rate_limited',
  'quota_exceeded',
  'internal',
] as const;

export type WireErrorCode = (typeof WIRE_ERROR_CODES)[number];

/**
 * Every code a `JobqError` may carry: the broker's codes, and `timeout` for a
 * watch that did not see its job end within the time it was given.
 */
export type JobqErrorCode = WireErrorCode | 'timeout';

/** Codes after which the same request may succeed later (section 7). */
const RETRYABLE: ReadonlySet<JobqErrorCode> = new Set<JobqErrorCode>([
  'unavailable',
  'storage_full',
  'storage_error',
  'rate_limited',
  'quota_exceeded',
]);

/** A request the broker refused or did not answer, or a local misuse. */
export class JobqError extends Error {
  override readonly name = 'JobqError';
  /** The JOBQ/1 error code; an unknown code from the broker becomes `internal`. */
  readonly code: JobqErrorCode;

  constructor(code: JobqErrorCode, message: string) {
    super(message);
    this.code = code;
  }

  /** True when sending the same request again later may succeed. */
  get retryable(): boolean {
    return RETRYABLE.has(this.code);
  }

  /** An ERROR body's code and message as a JobqError (unknown codes as `internal`). */
  static fromWire(code: unknown, message: unknown): JobqError {
    const text = typeof message === 'string' ? message : 'no message';
    if (typeof code === 'string' && (WIRE_ERROR_CODES as readonly string[]).includes(code)) {
      return new JobqError(code as WireErrorCode, text);
    }
    return new JobqError('internal', `${String(code)}: ${text}`);
  }
}
