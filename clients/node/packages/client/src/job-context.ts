/**
 * What a processor gets for one attempt of one job: its fields, progress
 * reports, and cancellation as an AbortSignal.
 */
import { Limits, truncateUtf8 } from './protocol';
import type { JobData } from './job';

/** Thrown by a processor to fail its job; `permanent` stops the retries. */
export class JobFailure extends Error {
  override readonly name = 'JobFailure';
  readonly permanent: boolean;

  constructor(message: string, options: { permanent?: boolean } = {}) {
    super(message);
    this.permanent = options.permanent ?? false;
  }
}

/** The reason a job's signal aborts with. */
export class JobCancelledError extends Error {
  override readonly name = 'JobCancelledError';
}

export interface JobContext<TInput = JobData> {
  readonly id: string;
  readonly type: string;
  readonly shopId: string;
  /** The attempt number, from 1. */
  readonly attempt: number;
  readonly input: TInput;
  /** Milliseconds this attempt may run (the broker cancels it then), 0 for no limit. */
  readonly timeoutMs: number;
  /**
   * Aborts when the job is cancelled, times out on the broker, or the
   * worker's stop grace runs out. Pass it to fetch() and the like.
   */
  readonly signal: AbortSignal;
  /** True once `signal` has aborted: stop then (return or throw). */
  readonly cancelled: boolean;
  /**
   * Report progress: percent (0 to 100, clamped) and an optional message (cut
   * at 1024 bytes). Reports that change nothing are not sent, and one not yet
   * sent is replaced by the next. Resolves once the report is on its way.
   */
  progress(percent: number, message?: string): Promise<void>;
  /** Wait ms, or less if the job is cancelled: then it rejects with the signal's reason. */
  sleep(ms: number): Promise<void>;
}

export interface Dispatch<TInput> {
  id: string;
  type: string;
  shopId: string;
  attempt: number;
  input: TInput;
  timeoutMs: number;
}

/** Sends one PROGRESS of this attempt. */
export type ProgressSender = (percent: number, message: string) => Promise<void>;

export class RunningJob<TInput> implements JobContext<TInput> {
  readonly id: string;
  readonly type: string;
  readonly shopId: string;
  readonly attempt: number;
  readonly input: TInput;
  readonly timeoutMs: number;
  readonly #controller = new AbortController();
  readonly #send: ProgressSender;
  #last = { percent: -1, message: '' };
  #next: { percent: number; message: string } | undefined;
  #flushing: Promise<void> | undefined;
  #ended = false;

  constructor(dispatch: Dispatch<TInput>, send: ProgressSender) {
    this.id = dispatch.id;
    this.type = dispatch.type;
    this.shopId = dispatch.shopId;
    this.attempt = dispatch.attempt;
    this.input = dispatch.input;
    this.timeoutMs = dispatch.timeoutMs;
    this.#send = send;
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  get cancelled(): boolean {
    return this.#controller.signal.aborted;
  }

  progress(percent: number, message = ''): Promise<void> {
    if (this.cancelled || this.#ended) return Promise.resolve();
    const report = {
      percent: Number.isFinite(percent) ? Math.min(100, Math.max(0, Math.floor(percent))) : 0,
      message: truncateUtf8(message, Limits.messageBytes),
    };
    const latest = this.#next ?? this.#last;
    if (report.percent === latest.percent && report.message === latest.message) {
      return this.#flushing ?? Promise.resolve();
    }
    this.#next = report;
    this.#flushing ??= this.#flush();
    return this.#flushing;
  }

  sleep(ms: number): Promise<void> {
    const signal = this.signal;
    return new Promise((resolve, reject) => {
      if (signal.aborted) {
        reject(signal.reason);
        return;
      }
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(signal.reason);
      };
      const timer = setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Stop the processor: its signal aborts with a JobCancelledError. */
  cancel(why: string): void {
    this.#controller.abort(new JobCancelledError(why));
  }

  /** The processor has returned: reports after this are not sent. */
  end(): void {
    this.#ended = true;
    this.#next = undefined;
  }

  async #flush(): Promise<void> {
    // Let a burst of synchronous reports collapse into the last one.
    await Promise.resolve();
    try {
      while (this.#next && !this.#ended) {
        const report = this.#next;
        this.#next = undefined;
        this.#last = report;
        await this.#send(report.percent, report.message);
      }
    } finally {
      this.#flushing = undefined;
    }
  }
}
