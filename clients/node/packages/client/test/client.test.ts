import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Broker, sleep, stopAll } from '@jobq/testkit';
import { encode } from '@msgpack/msgpack';
import {
  JobqClient,
  JobqError,
  closeJobq,
  configureJobq,
  enqueueJob,
  getJobStatus,
  listJobs,
  stats,
  type JobState,
} from '../src';
import { Dealer } from 'zeromq';
import { Cmd, encodeBody, frames, parseMessage } from '../src/protocol';
import { FakeRouter, LossyProxy } from './fake-broker';

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<JobqError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof JobqError, `expected a JobqError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected ${code}, but it succeeded`);
}

describe('JobqClient', () => {
  let broker: Broker;
  let client: JobqClient;

  before(async () => {
    broker = await Broker.start();
    client = new JobqClient({ broker: broker.clients, events: broker.events, timeoutMs: 2000 });
  });
  after(async () => {
    client.close();
    await stopAll();
  });

  test('enqueueJob and getJobStatus give the job map in camelCase', async () => {
    const before = Date.now();
    const id = await client.enqueueJob(
      'scrape_reviews',
      'shop-42',
      { url: 'https://example.com/p/17', pages: 3 },
      {
        priority: 5,
        maxAttempts: 2,
        timeoutMs: 600000,
        key: 'order-17',
      },
    );
    assert.match(id, /^[0-9a-f]{16}$/);
    const job = await client.getJobStatus<{ url: string; pages: number }>(id);
    assert.equal(job.id, id);
    assert.equal(job.type, 'scrape_reviews');
    assert.equal(job.shopId, 'shop-42');
    assert.equal(job.status, 'pending');
    assert.deepEqual(job.input, { url: 'https://example.com/p/17', pages: 3 });
    assert.equal(job.output, null);
    assert.deepEqual(job.errors, []);
    assert.equal(job.progress, 0);
    assert.equal(job.message, null);
    assert.equal(job.error, null);
    assert.equal(job.priority, 5);
    assert.equal(job.maxAttempts, 2);
    assert.equal(job.attempts, 0);
    assert.equal(job.timeoutMs, 600000);
    assert.equal(job.key, 'order-17');
    assert.equal(job.version, 1);
    assert.ok(job.seq > 0);
    assert.ok(job.createdAt instanceof Date && job.createdAt.getTime() >= before - 1000);
    assert.equal(job.startedAt, null);
    assert.equal(job.completedAt, null);
    assert.equal(job.worker, null);
    assert.deepEqual(job.wait, { reason: 'no_worker', until: null });
  });

  test('the same key in the same shop names the same job; another shop makes another', async () => {
    const first = await client.enqueue({ type: 'noop', shopId: 'shop-k', key: 'same' });
    const again = await client.enqueue({ type: 'noop', shopId: 'shop-k', key: 'same', input: { other: true } });
    const elsewhere = await client.enqueue({ type: 'noop', shopId: 'shop-k2', key: 'same' });
    assert.deepEqual(first, { id: first.id, created: true, unserved: true });
    assert.deepEqual(again, { id: first.id, created: false, unserved: true });
    assert.notEqual(elsewhere.id, first.id);
    assert.equal(elsewhere.created, true);
  });

  test('an enqueue without a key gets one made up, so a resend makes one job', async () => {
    // A broker that is frozen while the request waits: the client resends the
    // same bytes, the broker then reads both and makes one job.
    const resender = new JobqClient({ broker: broker.clients, timeoutMs: 300, retries: 10 });
    try {
      await resender.getJobStatus(await resender.enqueueJob('noop', 'shop-warm')); // connected
      broker.proc!.child.kill('SIGSTOP');
      const pending = resender.enqueueJob('noop', 'shop-resend', { n: 1 });
      await sleep(1000);
      broker.proc!.child.kill('SIGCONT');
      const id = await pending;
      const job = await resender.getJobStatus(id);
      assert.match(job.key ?? '', /^auto-[0-9a-f]{16}-[0-9a-f]+-0$/);
      const all = [];
      for await (const j of resender.listJobs({ shopId: 'shop-resend' })) all.push(j.id);
      assert.deepEqual(all, [id]);
    } finally {
      broker.proc!.child.kill('SIGCONT');
      resender.close();
    }
  });

  test('enqueueBatch makes every job in one request', async () => {
    const result = await client.enqueueBatch([
      { type: 'noop', shopId: 'shop-b', input: { i: 0 } },
      { type: 'export_data', shopId: 'shop-b', key: 'b-1' },
      { type: 'noop', shopId: 'shop-b', key: 'b-1' },
    ]);
    assert.equal(result.ids.length, 3);
    assert.deepEqual(result.created, [true, true, false]);
    assert.equal(result.ids[2], result.ids[1]);
    assert.deepEqual(result.unserved.sort(), ['export_data', 'noop']);
    assert.ok(result.ids[0]! < result.ids[1]!, 'ids grow in request order');
    await rejectsWith(client.enqueueBatch([]), 'bad_request');
    await rejectsWith(client.enqueueBatch(Array(1001).fill({ type: 'noop', shopId: 'shop-b' })), 'too_large');
    const err = await rejectsWith(
      client.enqueueBatch([
        { type: 'noop', shopId: 'shop-b' },
        { type: 'Bad', shopId: 'shop-b' },
      ]),
      'bad_request',
    );
    assert.match(err.message, /^jobs\[1\]: /);
  });

  test('listJobs follows the cursor; listJobsPage gives one page', async () => {
    const jobs = Array.from({ length: 25 }, (_, i) => ({
      type: i % 2 ? 'odd' : 'even',
      shopId: 'shop-list',
      input: { i },
    }));
    const { ids } = await client.enqueueBatch(jobs);
    const page1 = await client.listJobsPage({ shopId: 'shop-list', limit: 10 });
    assert.equal(page1.jobs.length, 10);
    assert.ok(page1.next);
    assert.deepEqual(
      page1.jobs.map((j) => j.id),
      [...ids].reverse().slice(0, 10),
    );
    assert.equal(page1.jobs[0]!.input, null, 'lists carry no input');
    const page2 = await client.listJobsPage({ shopId: 'shop-list', limit: 10, cursor: page1.next });
    assert.deepEqual(
      page2.jobs.map((j) => j.id),
      [...ids].reverse().slice(10, 20),
    );
    const all: string[] = [];
    for await (const job of client.listJobs({ shopId: 'shop-list', limit: 7 })) all.push(job.id);
    assert.deepEqual(all, [...ids].reverse());
    const odd: string[] = [];
    for await (const job of client.listJobs({ shopId: 'shop-list', type: 'odd', status: 'pending' })) odd.push(job.id);
    assert.equal(odd.length, 12);
    await rejectsWith(client.listJobsPage({ limit: 1001 }), 'bad_request');
    await rejectsWith(client.listJobsPage({ cursor: 'nope' }), 'bad_request');
  });

  test('cancelJob and retryJob, and their invalid_state', async () => {
    const id = await client.enqueueJob('noop', 'shop-c', {}, { maxAttempts: 2 });
    await rejectsWith(client.retryJob(id), 'invalid_state');
    const cancelled = await client.cancelJob(id);
    assert.equal(cancelled.status, 'cancelled');
    assert.equal(cancelled.error, 'cancelled');
    assert.ok(cancelled.completedAt instanceof Date);
    assert.equal(cancelled.version, 2);
    await rejectsWith(client.cancelJob(id), 'invalid_state');
    const retried = await client.retryJob(id);
    assert.equal(retried.status, 'pending');
    assert.equal(retried.completedAt, null);
    assert.equal(retried.maxAttempts, 2);
    assert.equal(retried.error, 'cancelled', 'the last error is kept');
    assert.equal(retried.version, 3);
  });

  test('the broker’s errors arrive as JobqError codes', async () => {
    await rejectsWith(client.enqueueJob('Scrape', 'shop-42'), 'bad_request');
    await rejectsWith(client.enqueueJob('noop', 'shop/42'), 'bad_request');
    await rejectsWith(client.enqueueJob('noop', 'shop-42', {}, { maxAttempts: 0 }), 'bad_request');
    await rejectsWith(client.enqueueJob('noop', 'shop-42', {}, { priority: 1001 }), 'bad_request');
    await rejectsWith(client.enqueueJob('noop', 'shop-42', {}, { key: '' }), 'bad_request');
    await rejectsWith(client.enqueueJob('noop', 'shop-42', {}, { key: 'k'.repeat(256) }), 'too_large');
    await rejectsWith(client.enqueueJob('t'.repeat(65), 'shop-42'), 'too_large');
    await rejectsWith(client.enqueueJob('noop', 'shop-42', { blob: 'x'.repeat(300 * 1024) }), 'too_large');
    await rejectsWith(client.getJobStatus('0000000000000001'), 'unknown_job');
    await rejectsWith(client.cancelJob('0000000000000001'), 'unknown_job');
    await rejectsWith(client.retryJob('0000000000000001'), 'unknown_job');
    await rejectsWith(client.getJobStatus('0000000000000ABC'), 'bad_request');
    // The client refuses those before sending; the broker gives the same code.
    const raw = new Dealer({ linger: 0, receiveTimeout: 3000 });
    raw.connect(broker.clients);
    try {
      await raw.send(frames(Cmd.ENQUEUE, encodeBody({ rid: 5, type: 'Scrape', shop_id: 'shop-42' })));
      const msg = parseMessage((await raw.receive()) as Buffer[]);
      assert.deepEqual([msg?.cmd, msg?.body.rid, msg?.body.code], [Cmd.ERROR, 5, 'bad_request']);
    } finally {
      raw.close();
    }
  });

  test('a broker that does not answer is unavailable after the tries', async () => {
    const lost = new JobqClient({ broker: 'tcp://127.0.0.1:9', timeoutMs: 200, retries: 1 });
    try {
      const started = Date.now();
      const err = await rejectsWith(lost.getJobStatus('0000000000000001'), 'unavailable');
      assert.ok(err.retryable);
      assert.ok(Date.now() - started >= 380, 'two tries of 200 ms');
    } finally {
      lost.close();
    }
  });

  test('stats', async () => {
    const s = await client.stats();
    assert.deepEqual(Object.keys(s.totals), ['pending', 'running', 'completed', 'failed', 'cancelled']);
    assert.ok(s.totals.pending! > 0);
    assert.ok(s.counts.noop);
    assert.ok((s.counters.enqueued ?? 0) > 0);
    assert.equal(s.refused.bad_request! >= 1, true);
    assert.deepEqual(s.workers, []);
    assert.equal(s.capacity, 0);
    assert.ok(s.commitUs && s.commitUs.le.length === 13);
  });

  test('free functions use the default client', async () => {
    configureJobq({ broker: broker.clients, events: broker.events });
    try {
      const id = await enqueueJob('noop', 'shop-free', { x: 1 });
      const job = await getJobStatus(id);
      assert.deepEqual(job.input, { x: 1 });
      const listed = [];
      for await (const j of listJobs({ shopId: 'shop-free' })) listed.push(j.id);
      assert.deepEqual(listed, [id]);
      assert.ok((await stats()).totals.pending! > 0);
    } finally {
      closeJobq();
    }
  });
});

/** A map nested depth containers deep, the outermost counting 1. */
function nested(depth: number): Record<string, unknown> {
  let v: Record<string, unknown> = {};
  for (let i = 1; i < depth; i++) v = { a: v };
  return v;
}

describe('JobqClient, keys JavaScript treats specially and lost replies', () => {
  let broker: Broker;
  let client: JobqClient;

  before(async () => {
    broker = await Broker.start();
    client = new JobqClient({ broker: broker.clients, events: broker.events, timeoutMs: 2000 });
  });
  after(async () => {
    client.close();
    await stopAll();
  });

  test('an input with a __proto__ key is kept, and its job read, cancelled and retried', async () => {
    const input = JSON.parse('{"__proto__": {"polluted": true}, "constructor": 1, "n": 2}') as Record<string, unknown>;
    const id = await client.enqueueJob('proto_check', 'shop-proto', input);
    const job = await client.getJobStatus(id);
    assert.deepEqual(Object.keys(job.input!), ['__proto__', 'constructor', 'n']);
    assert.deepEqual(Object.getOwnPropertyDescriptor(job.input, '__proto__')?.value, { polluted: true });
    assert.equal(Object.getPrototypeOf(job.input), Object.prototype);
    assert.equal((await client.cancelJob(id)).status, 'cancelled');
    const retried = await client.retryJob(id);
    assert.equal(retried.status, 'pending');
    assert.deepEqual(Object.keys(retried.input!), ['__proto__', 'constructor', 'n']);
  });

  test('a reply that cannot be decoded fails its request with internal at once', async () => {
    const fake = await FakeRouter.start();
    const c = new JobqClient({ broker: fake.endpoint, timeoutMs: 3000, retries: 1 });
    try {
      const pending = c.getJobStatus('0123456789abcdef');
      const request = await fake.next((m) => m.cmd === Cmd.STATUS);
      const started = Date.now();
      await fake.send(
        request.from,
        Cmd.REPLY,
        Buffer.concat([Buffer.from([0x82]), encode('rid'), encode(request.body.rid), encode('job'), Buffer.from([0x81, 0x01, 0x01])]),
      );
      const err = await rejectsWith(pending, 'internal');
      assert.match(err.message, /^reply could not be decoded: body: map key is not a string/);
      assert.ok(Date.now() - started < 1000, 'no wait for a timeout');
    } finally {
      c.close();
      fake.close();
    }
  });

  test('a CANCEL whose reply is lost succeeds when its resend finds the job cancelled; RETRY is sent once', async () => {
    const proxy = await LossyProxy.start(broker.clients);
    const lossy = new JobqClient({ broker: proxy.endpoint, timeoutMs: 400, retries: 2 });
    try {
      const id = await lossy.enqueueJob('noop', 'shop-lossy');
      proxy.loseReplyTo.add(Cmd.CANCEL);
      const cancelled = await lossy.cancelJob(id);
      assert.equal(cancelled.status, 'cancelled');
      assert.equal(proxy.requests.get(Cmd.CANCEL), 2, 'the CANCEL was resent');
      await rejectsWith(lossy.cancelJob(id), 'invalid_state');
      proxy.loseReplyTo.add(Cmd.RETRY);
      const started = Date.now();
      const err = await rejectsWith(lossy.retryJob(id), 'unavailable');
      assert.match(err.message, /may or may not have been applied/);
      assert.ok(Date.now() - started >= 1100, 'waited as long as three tries');
      assert.equal(proxy.requests.get(Cmd.RETRY), 1, 'RETRY is never resent');
      assert.equal((await lossy.getJobStatus(id)).status, 'pending', 'the one RETRY was applied');
    } finally {
      lossy.close();
      proxy.close();
    }
  });

  test('requests the broker would refuse are refused before they are sent, with its codes', async () => {
    // Nothing listens there: a request that went out would end in unavailable after 5 s.
    const dead = new JobqClient({ broker: 'tcp://127.0.0.1:9', timeoutMs: 5000, retries: 0 });
    const cycle: Record<string, unknown> = { a: 1 };
    cycle.self = { back: cycle };
    const cases: Array<[() => Promise<unknown>, string, RegExp?]> = [
      [() => dead.enqueueJob('Scrape', 'shop'), 'bad_request', /field 'type'/],
      [() => dead.enqueueJob('t'.repeat(65), 'shop'), 'too_large'],
      [() => dead.enqueueJob('noop', 'shop/42'), 'bad_request', /field 'shop_id'/],
      [() => dead.enqueueJob('noop', 's'.repeat(129)), 'too_large'],
      [() => dead.enqueueJob('noop', ''), 'bad_request'],
      [() => dead.enqueueJob('noop', 'shop', {}, { priority: 1001 }), 'bad_request', /priority/],
      [() => dead.enqueueJob('noop', 'shop', {}, { priority: 1.5 }), 'bad_request'],
      [() => dead.enqueueJob('noop', 'shop', {}, { maxAttempts: 0 }), 'bad_request'],
      [() => dead.enqueueJob('noop', 'shop', {}, { delayMs: -1 }), 'bad_request'],
      [() => dead.enqueueJob('noop', 'shop', {}, { timeoutMs: 604800001 }), 'bad_request'],
      [() => dead.enqueueJob('noop', 'shop', {}, { key: '' }), 'bad_request'],
      [() => dead.enqueueJob('noop', 'shop', {}, { key: 'é'.repeat(128) }), 'too_large'],
      [() => dead.enqueueJob('noop', 'shop', { blob: 'x'.repeat(300 * 1024) }), 'too_large'],
      [() => dead.enqueueJob('noop', 'shop', nested(15)), 'too_large', /nested deeper than 14 levels/],
      [() => dead.enqueueJob('noop', 'shop', cycle), 'bad_request', /cycle/],
      [() => dead.enqueueJob('noop', 'shop', { n: 1n }), 'bad_request', /BigInt/],
      [() => dead.enqueueJob('noop', 'shop', [] as unknown as Record<string, unknown>), 'bad_request'],
      [
        () => dead.enqueueBatch([{ type: 'noop', shopId: 'shop' }, { type: 'noop', shopId: 'shop', input: nested(14) }]),
        'too_large',
        /^jobs\[1\]: field 'input': nested deeper than 13 levels/,
      ],
      [() => dead.listJobsPage({ limit: 0 }), 'bad_request'],
      [() => dead.listJobsPage({ status: 'done' as JobState }), 'bad_request'],
      [() => dead.listJobsPage({ shopId: 'a b' }), 'bad_request'],
    ];
    try {
      const started = Date.now();
      for (const [call, code, message] of cases) {
        const err = await rejectsWith(call(), code);
        if (message) assert.match(err.message, message);
      }
      assert.ok(Date.now() - started < 2000, 'nothing waited for the broker');
    } finally {
      dead.close();
    }
    // The deepest input the broker takes is still sent.
    const id = await client.enqueueJob('noop', 'shop-deep', nested(14));
    assert.deepEqual((await client.getJobStatus(id)).input, nested(14));
  });
});
