import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { encode } from '@msgpack/msgpack';
import { Broker, sleep, startCWorker, startNode, stopAll, waitFor } from '@jobq/testkit';
import { JobqClient, JobqError, type Job } from '../src';
import { Cmd } from '../src/protocol';
import { FakeRouter } from './fake-broker';

const WATCH_CLOSE = join(__dirname, 'fixtures', 'watch-close.js');

interface SleepInput {
  ms: number;
  steps: number;
}
interface SleepOutput {
  slept_ms: number;
  steps: number;
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of iterable) all.push(item);
  return all;
}

function assertOrdered(states: Job<unknown, unknown>[]): void {
  for (let i = 1; i < states.length; i++) {
    const [a, b] = [states[i - 1]!, states[i]!];
    assert.ok(
      b.version > a.version || (b.version === a.version && b.wait?.reason !== a.wait?.reason),
      `versions ${a.version} then ${b.version}`,
    );
    if (a.attempts === b.attempts && b.status === 'running')
      assert.ok(b.progress >= a.progress, 'progress never goes back');
  }
}

describe('watchJob', () => {
  let broker: Broker;
  let client: JobqClient;

  before(async () => {
    broker = await Broker.start();
    startCWorker(broker, { types: ['noop', 'sleep'], concurrency: 4 });
    client = new JobqClient({ broker: broker.clients, events: broker.events, timeoutMs: 1000 });
    await waitFor('the worker to register', async () => (await client.stats()).capacity > 0);
  });
  after(async () => {
    client.close();
    await stopAll();
  });

  test('a job that ended before the watch gives its final state at once', async () => {
    const id = await client.enqueueJob('noop', 'shop-w', { a: 1 });
    await waitFor('the job to complete', async () => (await client.getJobStatus(id)).status === 'completed');
    const states = await collect(client.watchJob(id));
    assert.equal(states.length, 1);
    assert.equal(states[0]!.status, 'completed');
    assert.deepEqual(states[0]!.output, { a: 1 }, 'noop: the output is the input');
    assert.deepEqual(states[0]!.input, { a: 1 });
  });

  test('a sleep job is followed to its end, its progress in order', async () => {
    const id = await client.enqueueJob<SleepInput>('sleep', 'shop-w', { ms: 1500, steps: 5 });
    const states = await collect(client.watchJob<SleepInput, SleepOutput>(id, { timeoutMs: 15000 }));
    assertOrdered(states);
    const last = states.at(-1)!;
    assert.equal(last.status, 'completed');
    assert.deepEqual(last.output, { slept_ms: 1500, steps: 5 });
    assert.equal(last.progress, 100);
    const running = states.filter((s) => s.status === 'running' && s.progress > 0);
    assert.ok(running.length >= 2, `saw ${running.length} progress reports`);
    assert.ok(running.every((s) => /^step \d of 5$/.test(s.message ?? '')));
    assert.equal(states.filter((s) => s.status === 'completed').length, 1, 'the end comes once, last');
  });

  test('subscribing first (shop known) sees the same end', async () => {
    const id = await client.enqueueJob('sleep', 'shop-w2', { ms: 400, steps: 2 });
    const states = await collect(client.watchJob<SleepInput, SleepOutput>(id, { shopId: 'shop-w2', timeoutMs: 15000 }));
    assertOrdered(states);
    assert.equal(states.at(-1)!.status, 'completed');
    assert.deepEqual(states.at(-1)!.output, { slept_ms: 400, steps: 2 });
  });

  test('a cancel ends the watch with the cancelled state', async () => {
    const id = await client.enqueueJob('sleep', 'shop-w', { ms: 20000, steps: 20 });
    const states: Job[] = [];
    for await (const job of client.watchJob(id, { timeoutMs: 15000 })) {
      states.push(job);
      if (job.status === 'running' && states.length === 2) await client.cancelJob(id);
    }
    assert.equal(states.at(-1)!.status, 'cancelled');
    assert.equal(states.at(-1)!.error, 'cancelled');
  });

  test('a watch with a time limit fails with timeout; breaking out stops it', async () => {
    const id = await client.enqueueJob('no_such_type', 'shop-w');
    await assert.rejects(
      collect(client.watchJob(id, { timeoutMs: 500 })),
      (err: unknown) => err instanceof JobqError && err.code === 'timeout',
    );
    for await (const job of client.watchJob(id)) {
      assert.equal(job.wait?.reason, 'no_worker');
      break;
    }
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('enough')), 300);
    await assert.rejects(collect(client.watchJob(id, { signal: controller.signal })), /enough/);
  });

  test('closing the client ends its watches', async () => {
    const own = new JobqClient({ broker: broker.clients, events: broker.events, timeoutMs: 1000 });
    const id = await own.enqueueJob('no_such_type', 'shop-w');
    setTimeout(() => own.close(), 300);
    await assert.rejects(
      collect(own.watchJob(id)),
      (err: unknown) => err instanceof JobqError && err.code === 'unavailable',
    );
  });

  test('closing the client ends a watch paused at a yield: nothing keeps the process alive', async () => {
    const child = startNode(WATCH_CLOSE, [broker.clients, broker.events]);
    const ended = await Promise.race([child.exited(), sleep(5000).then(() => 'still running')]);
    assert.match(child.output, /first pending\nclosed\n/);
    assert.equal(ended, 0, child.output);
  });

  test('a job whose input and output hold a __proto__ key is watched to its end', async () => {
    const input = JSON.parse('{"__proto__": {"x": 1}, "n": 1}') as Record<string, unknown>;
    const id = await client.enqueueJob('noop', 'shop-w', input);
    const job = await client.waitForJob(id, { timeoutMs: 5000 });
    assert.equal(job.status, 'completed');
    assert.deepEqual(Object.keys(job.output!), ['__proto__', 'n']);
    assert.deepEqual(Object.getOwnPropertyDescriptor(job.output, '__proto__')?.value, { x: 1 });
  });

  test('an unknown job fails the watch with unknown_job', async () => {
    await assert.rejects(
      collect(client.watchJob('0000000000000001')),
      (err: unknown) => err instanceof JobqError && err.code === 'unknown_job',
    );
  });

  test('a watch survives the broker being SIGKILLed and restarted', async () => {
    const id = await client.enqueueJob('sleep', 'shop-r', { ms: 3000, steps: 6 });
    const states: Job<SleepInput, SleepOutput>[] = [];
    let killed = false;
    for await (const job of client.watchJob<SleepInput, SleepOutput>(id, { timeoutMs: 30000 })) {
      states.push(job);
      if (!killed && job.progress > 0) {
        killed = true;
        await broker.kill();
        await sleep(800);
        await broker.restart();
      }
    }
    assert.ok(killed);
    assertOrdered(states);
    const last = states.at(-1)!;
    assert.equal(last.status, 'completed');
    assert.deepEqual(last.output, { slept_ms: 3000, steps: 6 });
  });
});

describe('watchJob against a broker whose replies cannot be decoded', () => {
  test('the watch ends with internal instead of asking forever', async () => {
    const fake = await FakeRouter.start();
    const client = new JobqClient({ broker: fake.endpoint, events: 'tcp://127.0.0.1:9', timeoutMs: 1000 });
    const id = '0123456789abcdef';
    const job = {
      id,
      type: 't',
      status: 'running',
      shop_id: 'shop-bad',
      progress: 0,
      message: null,
      error: null,
      attempts: 1,
      max_attempts: 3,
      priority: 0,
      run_at: 1,
      timeout: 0,
      key: null,
      created_at: 1,
      updated_at: 1,
      started_at: 1,
      completed_at: null,
      worker: 'w',
      lease_until: null,
      version: 2,
      seq: 5,
      input: {},
      output: null,
      errors: [],
    };
    // The first STATUS is answered well, every later one with a body that cannot be decoded.
    let answered = 0;
    const answering = (async () => {
      for (;;) {
        const request = await fake.next((m) => m.cmd === Cmd.STATUS, answered, 20000).catch(() => undefined);
        if (!request) return;
        const rid = encode(request.body.rid);
        const body =
          answered === 0
            ? encode({ rid: request.body.rid, job })
            : Buffer.concat([Buffer.from([0x82]), encode('rid'), rid, encode('job'), Buffer.from([0xc1])]);
        answered = fake.received.indexOf(request) + 1;
        await fake.send(request.from, Cmd.REPLY, body);
      }
    })();
    try {
      const states: Job[] = [];
      const started = Date.now();
      await assert.rejects(
        (async () => {
          for await (const state of client.watchJob(id, { timeoutMs: 10000 })) states.push(state);
        })(),
        (err: unknown) =>
          err instanceof JobqError && err.code === 'internal' && /^reply could not be decoded/.test(err.message),
      );
      assert.equal(states.length, 1);
      assert.ok(Date.now() - started < 5000);
    } finally {
      client.close();
      fake.close();
      await answering;
    }
  });
});
