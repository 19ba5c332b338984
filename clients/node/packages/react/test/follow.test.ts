import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Broker, Gateway, startCWorker, stopAll, waitFor } from '@jobq/testkit';
import { FetchEventSource, JobError, createJob, followJob, getJob, type FollowOptions, type Job } from '../src';

interface SleepInput {
  ms: number;
  steps: number;
}
interface SleepOutput {
  slept_ms: number;
  steps: number;
}

interface Followed<TInput, TOutput> {
  updates: Job<TInput, TOutput>[];
  completed?: Job<TInput, TOutput>;
  error?: JobError<TInput, TOutput>;
}

/** Follow id until it ends (or 15 s pass), recording every callback. */
function follow<TInput = Record<string, unknown>, TOutput = Record<string, unknown>>(
  baseUrl: string,
  id: string,
  options: FollowOptions,
): Promise<Followed<TInput, TOutput>> {
  return new Promise((resolve, reject) => {
    const seen: Followed<TInput, TOutput> = { updates: [] };
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`job ${id} not followed to its end: ${JSON.stringify(seen.updates.at(-1))}`));
    }, 15000);
    const stop = followJob<TInput, TOutput>(
      baseUrl,
      id,
      {
        onUpdate: (job) => seen.updates.push(job),
        onComplete: (job) => {
          seen.completed = job;
          clearTimeout(timer);
          resolve(seen);
        },
        onError: (error) => {
          seen.error = error;
          clearTimeout(timer);
          resolve(seen);
        },
      },
      options,
    );
  });
}

function assertInOrder(updates: Job<unknown, unknown>[]): void {
  for (let i = 1; i < updates.length; i++) {
    assert.ok(updates[i]!.version > updates[i - 1]!.version, 'versions only grow');
    if (updates[i]!.status === 'running')
      assert.ok(updates[i]!.progress >= updates[i - 1]!.progress, 'progress never goes back');
  }
}

describe('followJob against jobq-gateway', () => {
  let gateway: Gateway;
  const sse: FollowOptions = { transport: 'sse', eventSource: (url) => new FetchEventSource(url) };
  const polling: FollowOptions = { transport: 'polling', pollIntervalMs: 250 };

  before(async () => {
    const broker = await Broker.start();
    startCWorker(broker, { types: ['sleep', 'fail', 'noop'] });
    gateway = await Gateway.start(broker);
    await waitFor('the worker to register', async () => {
      const res = await fetch(`${gateway.url}/v1/workers`);
      return res.ok && ((await res.json()) as { capacity: number }).capacity > 0;
    });
  });
  after(() => stopAll());

  for (const [name, options] of [
    ['the event stream', sse],
    ['polling', polling],
  ] as const) {
    test(`a sleep job goes to completed with progress, through ${name}`, async () => {
      const { id, created } = await createJob<SleepInput>(gateway.url, {
        type: 'sleep',
        shopId: 'shop-react',
        input: { ms: 1600, steps: 4 },
      });
      assert.equal(created, true);
      const seen = await follow<SleepInput, SleepOutput>(gateway.url, id, options);
      assert.equal(seen.error, undefined);
      assertInOrder(seen.updates);
      const running = seen.updates.filter((j) => j.status === 'running' && j.progress > 0 && j.progress < 100);
      assert.ok(running.length >= 1, `saw ${running.length} progress states`);
      assert.match(running[0]!.message ?? '', /^step \d of 4$/);
      const done = seen.completed!;
      assert.equal(done, seen.updates.at(-1));
      assert.equal(done.status, 'completed');
      assert.equal(done.progress, 100);
      assert.deepEqual(done.output, { slept_ms: 1600, steps: 4 });
      assert.deepEqual(done.input, { ms: 1600, steps: 4 });
      assert.match(done.completedAt ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    });

    test(`a failed job ends in onError with the job, through ${name}`, async () => {
      const { id } = await createJob(gateway.url, {
        type: 'fail',
        shopId: 'shop-react',
        input: { message: 'no such page', permanent: true },
      });
      const seen = await follow(gateway.url, id, options);
      assert.equal(seen.completed, undefined);
      assert.equal(seen.error?.code, 'failed');
      assert.equal(seen.error?.message, 'no such page');
      assert.equal(seen.error?.job?.status, 'failed');
      assert.deepEqual(
        seen.error?.job?.errors?.map((e) => e.error),
        ['no such page'],
      );
    });

    test(`an unknown job ends in onError 404, through ${name}`, async () => {
      const seen = await follow(gateway.url, '0000000000000001', options);
      assert.equal(seen.error?.code, 'unknown_job');
      assert.equal(seen.error?.status, 404);
      assert.deepEqual(seen.updates, []);
    });
  }

  test('a job that ended before gives its final state once', async () => {
    const { id } = await createJob(gateway.url, { type: 'noop', shopId: 'shop-react', input: { n: 1 } });
    await waitFor('the job to end', async () => (await getJob(gateway.url, id)).status === 'completed');
    const seen = await follow(gateway.url, id, sse);
    assert.equal(seen.updates.length, 1);
    assert.deepEqual(seen.completed?.output, { n: 1 });
  });

  test('without an EventSource, "auto" polls; unsubscribing stops it', async () => {
    assert.equal((globalThis as { EventSource?: unknown }).EventSource, undefined);
    const urls: string[] = [];
    const counting: typeof fetch = (input, init) => {
      urls.push(String(input));
      return fetch(input, init);
    };
    const { id } = await createJob(gateway.url, { type: 'sleep', shopId: 'shop-react', input: { ms: 5000, steps: 1 } });
    const updates: Job[] = [];
    const stop = followJob(
      gateway.url,
      id,
      { onUpdate: (j) => updates.push(j) },
      { pollIntervalMs: 100, request: { fetch: counting } },
    );
    await waitFor('a first state', () => updates.length > 0);
    stop();
    const count = urls.length;
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(urls.length, count, 'no request after unsubscribing');
    assert.ok(urls.every((u) => u === `${gateway.url}/v1/jobs/${id}`));
  });

  test('createJob refusals are JobErrors with the gateway’s code', async () => {
    await assert.rejects(createJob(gateway.url, { type: 'Bad', shopId: 'shop-react' }), (err: unknown) => {
      return err instanceof JobError && err.code === 'bad_request' && err.status === 400;
    });
  });
});
