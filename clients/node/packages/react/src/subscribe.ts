/**
 * subscribeJob: followJob, shared. Every follower of the same job under the
 * same gateway in one page (useJob, <JobStatus>, useFollowJob, or direct
 * calls) shares one follow: one event stream, or one polling loop.
 *
 * The follow is reference-counted. The first subscriber creates it, and it
 * starts at the end of the current task's synchronous work (a microtask), so
 * the subscribers of one React commit (a <JobStatus> and the useJob of its
 * parent page) join it before it opens; a subscribe and unsubscribe in a row
 * (React's StrictMode) open nothing. Each subscriber gets the latest state at
 * once, then every newer one. When the job ends (or cannot be followed) the
 * stream closes, and the follow keeps its final state for subscribers that
 * join later, for as long as any subscriber remains. The last unsubscribe
 * closes it and forgets it: a later subscriber starts a new follow.
 */
import type { JobError } from './api';
import { followJob, type FollowCallbacks, type FollowOptions, type Unsubscribe } from './follow';
import type { Job, JobData } from './types';

type AnyJob = Job<unknown, unknown>;
type AnyError = JobError<unknown, unknown>;

interface Subscription {
  readonly callbacks: FollowCallbacks<unknown, unknown>;
}

interface SharedFollow {
  readonly key: string;
  readonly baseUrl: string;
  readonly id: string;
  readonly subscriptions: Set<Subscription>;
  /** Those of the first subscriber that gave any, until the follow starts. */
  options: FollowOptions | undefined;
  /** starting: not opened yet; following; ended: final state or error; closed: forgotten. */
  stage: 'starting' | 'following' | 'ended' | 'closed';
  last: AnyJob | undefined;
  end: { completed: AnyJob } | { error: AnyError } | undefined;
  stop: Unsubscribe | undefined;
}

const follows = new Map<string, SharedFollow>();

function keyOf(baseUrl: string, id: string): string {
  // As gatewayUrl: "http://gw" and "http://gw/" name the same stream.
  return `${baseUrl.replace(/\/+$/, '')} ${id}`;
}

/** Call one subscriber; its exception is reported without keeping the others from their call. */
function call(run: () => void): void {
  try {
    run();
  } catch (err) {
    queueMicrotask(() => {
      throw err;
    });
  }
}

function notify(follow: SharedFollow, run: (callbacks: FollowCallbacks<unknown, unknown>) => void): void {
  for (const subscription of [...follow.subscriptions]) {
    // One that left during this round is not called.
    if (follow.subscriptions.has(subscription)) call(() => run(subscription.callbacks));
  }
}

function start(follow: SharedFollow): void {
  if (follow.stage !== 'starting') return; // all left before it opened
  follow.stage = 'following';
  follow.stop = followJob<unknown, unknown>(
    follow.baseUrl,
    follow.id,
    {
      onUpdate: (job) => {
        follow.last = job;
        notify(follow, (callbacks) => callbacks.onUpdate?.(job));
      },
      onComplete: (job) => {
        follow.stage = 'ended';
        follow.end = { completed: job };
        notify(follow, (callbacks) => callbacks.onComplete?.(job));
      },
      onError: (error) => {
        follow.stage = 'ended';
        follow.end = { error };
        notify(follow, (callbacks) => callbacks.onError?.(error));
      },
    },
    follow.options,
  );
}

function close(follow: SharedFollow): void {
  follow.stage = 'closed';
  follow.stop?.();
  if (follows.get(follow.key) === follow) follows.delete(follow.key);
}

/**
 * Follow job id under the gateway at baseUrl as followJob does, sharing one
 * follow with every other subscriber to the same job and gateway. `options`
 * are those of the first subscriber that passes any before the follow opens;
 * later ones join the follow as it is. Each subscriber gets its own calls:
 * the latest state at once (onUpdate, and onComplete or onError if the job
 * has ended), then every newer state, and its end once.
 */
export function subscribeJob<TInput = JobData, TOutput = JobData>(
  baseUrl: string,
  id: string,
  callbacks: FollowCallbacks<TInput, TOutput>,
  options?: FollowOptions,
): Unsubscribe {
  const key = keyOf(baseUrl, id);
  let follow = follows.get(key);
  if (!follow) {
    const created: SharedFollow = {
      key,
      baseUrl,
      id,
      subscriptions: new Set(),
      options: undefined,
      stage: 'starting',
      last: undefined,
      end: undefined,
      stop: undefined,
    };
    follows.set(key, created);
    queueMicrotask(() => start(created));
    follow = created;
  }
  if (follow.stage === 'starting' && follow.options === undefined) follow.options = options;

  const subscription: Subscription = { callbacks: callbacks as FollowCallbacks<unknown, unknown> };
  follow.subscriptions.add(subscription);
  // What the others already saw.
  const { last, end } = follow;
  if (last) call(() => subscription.callbacks.onUpdate?.(last));
  if (end) {
    if ('completed' in end) call(() => subscription.callbacks.onComplete?.(end.completed));
    else call(() => subscription.callbacks.onError?.(end.error));
  }

  const shared = follow;
  let left = false;
  return () => {
    if (left) return;
    left = true;
    shared.subscriptions.delete(subscription);
    if (shared.subscriptions.size === 0) close(shared);
  };
}

/** How many shared follows are open or kept now (for tests). */
export function sharedFollowCount(): number {
  return follows.size;
}
