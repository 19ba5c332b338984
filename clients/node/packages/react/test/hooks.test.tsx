import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { StrictMode, act, useState } from 'react';
import { create, type ReactTestRenderer } from 'react-test-renderer';
import {
  JobError,
  JobStatus,
  JobStatusView,
  useJob,
  type EventSourceLike,
  type FollowOptions,
  type Job,
  type JobState,
  type UseJobResult,
} from '../src';
import { sharedFollowCount } from '../src/subscribe';

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

const ID = '01a251fa8c4a0000';

function job(status: JobState, extra: Partial<Job> = {}): Job {
  return {
    id: ID,
    type: 'scrape_reviews',
    status,
    shopId: 'shop-42',
    progress: 0,
    message: null,
    error: null,
    attempts: 1,
    maxAttempts: 3,
    priority: 0,
    runAt: null,
    timeoutMs: 0,
    key: null,
    createdAt: '2026-12-07T19:20:42.051Z',
    updatedAt: '2026-12-07T19:20:42.051Z',
    startedAt: null,
    completedAt: null,
    worker: null,
    leaseUntil: null,
    version: 1,
    ...extra,
  };
}

/** An event stream the test feeds; every one opened is kept. */
class FakeSource implements EventSourceLike {
  readyState = 1;
  closed = false;
  readonly #listeners = new Map<string, Array<(event: Event) => void>>();

  constructor(readonly url: string) {}

  addEventListener(type: string, listener: (event: Event) => void): void {
    this.#listeners.set(type, [...(this.#listeners.get(type) ?? []), listener]);
  }

  close(): void {
    this.closed = true;
    this.readyState = 2;
  }

  send(state: Job): void {
    for (const listener of this.#listeners.get('job') ?? []) {
      listener({ data: JSON.stringify(state) } as unknown as Event);
    }
  }
}

function streams(): { opened: FakeSource[]; follow: FollowOptions } {
  const opened: FakeSource[] = [];
  return {
    opened,
    follow: {
      transport: 'sse',
      eventSource: (url) => {
        const source = new FakeSource(url);
        opened.push(source);
        return source;
      },
    },
  };
}

function deferred<T>(): { promise: Promise<T>; resolve(value: T): void; reject(err: unknown): void } {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

async function render(element: React.ReactElement): Promise<ReactTestRenderer> {
  let renderer!: ReactTestRenderer;
  await act(async () => {
    renderer = create(element);
  });
  return renderer;
}

function text(renderer: ReactTestRenderer): string {
  return JSON.stringify(renderer.toJSON());
}

describe('useJob and <JobStatusView>, with effects', () => {
  const quiet = console.error;
  before(() => {
    // react-test-renderer says it is deprecated, once per renderer.
    console.error = (...args: unknown[]) => {
      if (typeof args[0] === 'string' && args[0].includes('react-test-renderer is deprecated')) return;
      quiet(...args);
    };
  });
  after(() => {
    console.error = quiet;
  });

  test('the README pattern follows a job with one stream and shows it to its end', async () => {
    const { opened, follow } = streams();
    const completed: Job[] = [];
    let hook!: UseJobResult;
    function Page() {
      hook = useJob({ baseUrl: 'http://gw', follow, onComplete: (j) => completed.push(j) });
      return hook.showJobStatus ? <JobStatusView job={hook.job} error={hook.error} /> : <p>idle</p>;
    }
    const renderer = await render(<Page />);
    assert.match(text(renderer), /idle/);
    await act(async () => {
      await hook.startJob(async () => ID);
    });
    assert.equal(opened.length, 1, 'one stream for the job');
    assert.equal(opened[0]!.url, `http://gw/v1/jobs/${ID}/events`);
    assert.match(text(renderer), /Loading…/);
    await act(async () => opened[0]!.send(job('running', { version: 2, progress: 40, message: 'page 2' })));
    assert.match(text(renderer), /jobq-status--running/);
    assert.match(text(renderer), /page 2/);
    assert.equal(hook.progress, 40);
    await act(async () => opened[0]!.send(job('completed', { version: 3, progress: 100, output: { n: 1 } })));
    assert.match(text(renderer), /jobq-status--completed/);
    assert.deepEqual(
      completed.map((j) => j.output),
      [{ n: 1 }],
    );
    assert.equal(opened.length, 1);
    assert.ok(opened[0]!.closed, 'the stream is closed once the job ended');
    await act(async () => renderer.unmount());
  });

  test('<JobStatus> on its own follows its job and reports its end once', async () => {
    const { opened, follow } = streams();
    const errors: JobError[] = [];
    const renderer = await render(
      <JobStatus jobId={ID} baseUrl="http://gw" follow={follow} onError={(e) => errors.push(e)} />,
    );
    assert.equal(opened.length, 1);
    await act(async () => opened[0]!.send(job('failed', { version: 4, error: 'no such page' })));
    assert.match(text(renderer), /no such page/);
    assert.deepEqual(
      errors.map((e) => [e.code, e.message]),
      [['failed', 'no such page']],
    );
    await act(async () => renderer.unmount());
  });

  test('a second startJob while one is under way starts nothing and gets the same answer', async () => {
    const { opened, follow } = streams();
    const pending = deferred<string>();
    let starts = 0;
    let hook!: UseJobResult;
    function Page() {
      hook = useJob({ baseUrl: 'http://gw', follow });
      return <p>{hook.status}</p>;
    }
    const renderer = await render(<Page />);
    let first!: Promise<string | null>;
    let second!: Promise<string | null>;
    await act(async () => {
      const starter = () => {
        starts++;
        return pending.promise;
      };
      first = hook.startJob(starter);
      second = hook.startJob(starter);
    });
    assert.equal(hook.status, 'starting');
    await act(async () => pending.resolve(ID));
    assert.equal(await first, ID);
    assert.equal(await second, ID);
    assert.equal(starts, 1, 'one job');
    assert.equal(hook.currentJobId, ID);
    assert.equal(opened.length, 1);
    // Once it ended, the next start is a new one.
    await act(async () => {
      await hook.startJob(async () => '01a251fa8c4a0001');
    });
    assert.equal(hook.currentJobId, '01a251fa8c4a0001');
    await act(async () => renderer.unmount());
  });

  test('a start that ends after unmounting changes nothing and calls nothing', async () => {
    const { opened, follow } = streams();
    const calls: string[] = [];
    let hook!: UseJobResult;
    function Page() {
      hook = useJob({
        baseUrl: 'http://gw',
        follow,
        onComplete: () => calls.push('complete'),
        onError: (e) => calls.push(`error ${e.message}`),
      });
      return <p>{hook.status}</p>;
    }
    for (const outcome of ['resolve', 'reject'] as const) {
      const renderer = await render(<Page />);
      const pending = deferred<string>();
      let started!: Promise<string | null>;
      await act(async () => {
        started = hook.startJob(() => pending.promise);
      });
      await act(async () => renderer.unmount());
      await act(async () => {
        if (outcome === 'resolve') pending.resolve(ID);
        else pending.reject(new Error('refused'));
      });
      assert.equal(await started, outcome === 'resolve' ? ID : null);
    }
    assert.deepEqual(calls, []);
    assert.equal(opened.length, 0, 'nothing followed');
  });
});

describe('one stream per job: useJob, <JobStatus> and useFollowJob share it', { timeout: 10000 }, () => {
  const quiet = console.error;
  before(() => {
    console.error = (...args: unknown[]) => {
      if (typeof args[0] === 'string' && args[0].includes('react-test-renderer is deprecated')) return;
      quiet(...args);
    };
  });
  after(() => {
    console.error = quiet;
  });

  const ID2 = '01a251fa8c4a0002';

  for (const strict of [false, true]) {
    const name = 'the original pattern, useJob with <JobStatus onComplete={handleJobComplete}>, opens one stream per job';
    test(`${name}${strict ? ' (StrictMode)' : ''}`, async () => {
      const { opened, follow } = streams();
      const calls: string[] = [];
      let hook!: UseJobResult;
      function Page() {
        // The follow options are given to the hook only: the shared stream uses them.
        hook = useJob({
          baseUrl: 'http://gw',
          follow,
          onComplete: (j) => calls.push(`complete ${j.id} ${JSON.stringify(j.output)}`),
          onError: (e) => calls.push(`error ${e.code} ${e.message}`),
        });
        const { startJob, currentJobId, showJobStatus, handleJobComplete, handleJobError } = hook;
        return (
          <>
            <button onClick={() => void startJob(async () => ID)}>Start</button>
            {showJobStatus && currentJobId && (
              <JobStatus
                jobId={currentJobId}
                baseUrl="http://gw"
                onComplete={handleJobComplete}
                onError={handleJobError}
              />
            )}
          </>
        );
      }
      const renderer = await render(strict ? <StrictMode><Page /></StrictMode> : <Page />);
      assert.equal(opened.length, 0);
      await act(async () => {
        await hook.startJob(async () => ID);
      });
      assert.equal(opened.length, 1, 'one stream for the hook and <JobStatus>');
      assert.equal(opened[0]!.url, `http://gw/v1/jobs/${ID}/events`);
      await act(async () => opened[0]!.send(job('running', { version: 2, progress: 40, message: 'page 2' })));
      assert.match(text(renderer), /jobq-status--running/);
      assert.match(text(renderer), /page 2/);
      assert.equal(hook.status, 'running');
      assert.equal(hook.progress, 40);
      await act(async () => opened[0]!.send(job('completed', { version: 3, progress: 100, output: { n: 1 } })));
      assert.match(text(renderer), /jobq-status--completed/);
      assert.equal(hook.status, 'completed');
      assert.ok(opened[0]!.closed, 'closed once the job ended');
      assert.deepEqual(calls, [`complete ${ID} {"n":1}`], 'onComplete once, though both report it');

      // The next job: one more stream, and its failure reported once.
      await act(async () => {
        await hook.startJob(async () => ID2);
      });
      assert.equal(opened.length, 2);
      assert.equal(opened[1]!.url, `http://gw/v1/jobs/${ID2}/events`);
      assert.match(text(renderer), /Loading…/);
      await act(async () => opened[1]!.send(job('failed', { id: ID2, version: 5, error: 'no such page' })));
      assert.match(text(renderer), /no such page/);
      assert.equal(hook.error?.code, 'failed');
      assert.deepEqual(calls, [`complete ${ID} {"n":1}`, 'error failed no such page']);
      assert.equal(opened.length, 2);
      await act(async () => renderer.unmount());
      assert.ok(opened.every((source) => source.closed));
      assert.equal(sharedFollowCount(), 0, 'nothing kept');
    });
  }

  test('two components on the same job share one stream; it lives while one of them does', async () => {
    const { opened, follow } = streams();
    const calls: string[] = [];
    let setShown!: (shown: { a: boolean; b: boolean }) => void;
    function Page() {
      const [shown, set] = useState({ a: true, b: true });
      setShown = set;
      return (
        <>
          {shown.a && (
            <JobStatus
              jobId={ID}
              baseUrl="http://gw"
              follow={follow}
              className="a"
              onComplete={() => calls.push('a complete')}
            />
          )}
          {shown.b && (
            <JobStatus
              jobId={ID}
              baseUrl="http://gw/"
              follow={follow}
              className="b"
              onComplete={() => calls.push('b complete')}
            />
          )}
        </>
      );
    }
    const renderer = await render(<Page />);
    assert.equal(opened.length, 1, 'one stream for both');
    await act(async () => opened[0]!.send(job('running', { version: 2, progress: 30 })));
    assert.equal(text(renderer).match(/jobq-status--running/g)?.length, 2, 'both show it');

    // One leaves: the other still gets every state.
    await act(async () => setShown({ a: true, b: false }));
    assert.equal(opened[0]!.closed, false, 'still open for the other');
    await act(async () => opened[0]!.send(job('running', { version: 3, progress: 60, message: 'page 3' })));
    assert.match(text(renderer), /page 3/);
    assert.match(text(renderer), /"aria-valuenow":60/);
    assert.doesNotMatch(text(renderer), /jobq-status--running b/);

    // The last leaves: closed and forgotten.
    await act(async () => setShown({ a: false, b: false }));
    assert.ok(opened[0]!.closed, 'closed with its last follower');
    assert.equal(sharedFollowCount(), 0);

    // A new follower opens a new stream.
    await act(async () => setShown({ a: true, b: false }));
    assert.equal(opened.length, 2);
    await act(async () => opened[1]!.send(job('completed', { version: 4, progress: 100 })));
    assert.deepEqual(calls, ['a complete'], 'b had left before the end');
    await act(async () => renderer.unmount());
    assert.equal(sharedFollowCount(), 0);
  });

  test('a follower that comes after the end gets the final state at once, and its callbacks once', async () => {
    const { opened, follow } = streams();
    const calls: string[] = [];
    let setLate!: (late: boolean) => void;
    function Page() {
      const [late, set] = useState(false);
      setLate = set;
      return (
        <>
          <JobStatus
            jobId={ID}
            baseUrl="http://gw"
            follow={follow}
            onComplete={(j) => calls.push(`first ${j.progress}`)}
          />
          {late && (
            <JobStatus
              jobId={ID}
              baseUrl="http://gw"
              follow={follow}
              className="late"
              onComplete={(j) => calls.push(`late ${j.progress}`)}
            />
          )}
        </>
      );
    }
    const renderer = await render(<Page />);
    await act(async () => opened[0]!.send(job('completed', { version: 3, progress: 100, output: { n: 1 } })));
    assert.ok(opened[0]!.closed);
    assert.deepEqual(calls, ['first 100']);
    await act(async () => setLate(true));
    assert.equal(opened.length, 1, 'no new stream for the late follower');
    assert.match(text(renderer), /jobq-status--completed late/);
    assert.deepEqual(calls, ['first 100', 'late 100']);
    // Re-rendering calls nothing again.
    await act(async () => setLate(true));
    assert.deepEqual(calls, ['first 100', 'late 100']);
    await act(async () => renderer.unmount());
    assert.equal(sharedFollowCount(), 0, 'the ended follow is not kept once its followers left');
  });

  test('a job that cannot be followed: the error is shared, and reported once to the hook', async () => {
    const errors: string[] = [];
    const pollingFollow: FollowOptions = {
      transport: 'polling',
      pollIntervalMs: 10,
      request: {
        fetch: async () => {
          polls++;
          return new Response(JSON.stringify({ error: { code: 'unknown_job', message: 'no job' } }), { status: 404 });
        },
      },
    };
    let polls = 0;
    let hook!: UseJobResult;
    function Page() {
      hook = useJob({ baseUrl: 'http://gw', follow: pollingFollow, onError: (e) => errors.push(e.code) });
      return hook.currentJobId ? (
        <JobStatus
          jobId={hook.currentJobId}
          baseUrl="http://gw"
          onComplete={hook.handleJobComplete}
          onError={hook.handleJobError}
        />
      ) : (
        <p>idle</p>
      );
    }
    const renderer = await render(<Page />);
    await act(async () => {
      await hook.startJob(async () => ID);
    });
    await act(async () => new Promise((resolve) => setTimeout(resolve, 50)));
    assert.equal(polls, 1, 'one polling loop, ended by the 404');
    assert.match(text(renderer), /jobq-status--unavailable/);
    assert.equal(hook.error?.code, 'unknown_job');
    assert.deepEqual(errors, ['unknown_job']);
    await act(async () => renderer.unmount());
    assert.equal(sharedFollowCount(), 0);
  });
});
