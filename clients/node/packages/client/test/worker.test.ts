import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Dealer } from 'zeromq';
import { encode } from '@msgpack/msgpack';
import { Broker, sleep, startNode, stopAll, waitFor } from '@jobq/testkit';
import { JobFailure, JobqClient, JobqError, Worker, type Job } from '../src';
import { Cmd, encodeBody, frames, parseMessage } from '../src/protocol';
import { FakeRouter } from './fake-broker';

const CHILD = join(__dirname, 'fixtures', 'worker-child.js');

describe('Worker', () => {
  let broker: Broker;
  let client: JobqClient;
  let worker: Worker;
  let running: Promise<void>;
  let concurrent = 0;
  let maxConcurrent = 0;
  const aborted = new Set<string>();

  before(async () => {
    broker = await Broker.start({ leaseMs: 1500, workerTimeoutMs: 1000, retryBaseMs: 0 });
    client = new JobqClient({ broker: broker.clients, events: broker.events, timeoutMs: 1000 });
    worker = new Worker({ broker: broker.workers, concurrency: 2, stopSignals: [] })
      .processor<{ a: number; b: number }, { sum: number; shop: string; attempt: number }>(
        'ts_progress',
        async (job) => {
          await job.progress(30, 'a third');
          await job.sleep(300);
          await job.progress(60, 'two thirds');
          await job.sleep(300);
          return { sum: job.input.a + job.input.b, shop: job.shopId, attempt: job.attempt };
        },
      )
      .processor('flaky', (job) => {
        if (job.attempt === 1) throw new Error('boom');
        return { ok: true };
      })
      .processor('doomed', () => {
        throw new JobFailure('bad input', { permanent: true });
      })
      .processor('bad_output', () => 'not a map' as unknown as Record<string, unknown>)
      .processor('long', async (job) => {
        try {
          await job.sleep(20000);
        } catch (err) {
          aborted.add(job.id);
          throw err;
        }
      })
      .processor('outlives_broker', async (job) => {
        await job.progress(50, 'half');
        await job.sleep(1500);
        return { attempt: job.attempt };
      })
      .processor('echo', (job) => job.input)
      .processor('conc', async (job) => {
        maxConcurrent = Math.max(maxConcurrent, ++concurrent);
        await job.sleep(300);
        concurrent--;
      });
    running = worker.run();
    await waitFor('the worker to register', async () => (await client.stats()).capacity === 2);
  });
  after(async () => {
    worker.stop();
    await running;
    client.close();
    await stopAll();
  });

  test('a TypeScript processor runs a job with progress and output', async () => {
    const id = await client.enqueueJob('ts_progress', 'shop-t', { a: 2, b: 3 });
    const states: Job[] = [];
    for await (const job of client.watchJob(id, { timeoutMs: 10000 })) states.push(job);
    const last = states.at(-1)!;
    assert.equal(last.status, 'completed');
    assert.deepEqual(last.output, { sum: 5, shop: 'shop-t', attempt: 1 });
    assert.equal(last.worker, null);
    const seen = states.filter((s) => s.status === 'running').map((s) => `${s.progress} ${s.message ?? ''}`);
    assert.ok(seen.includes('30 a third') && seen.includes('60 two thirds'), seen.join(', '));
  });

  test('a thrown error fails the attempt and the job is retried', async () => {
    const id = await client.enqueueJob('flaky', 'shop-t');
    const job = await client.waitForJob(id, { timeoutMs: 10000 });
    assert.equal(job.status, 'completed');
    assert.equal(job.attempts, 2);
    assert.deepEqual(job.output, { ok: true });
    assert.deepEqual(
      job.errors.map((e) => [e.attempt, e.error]),
      [[1, 'boom']],
    );
  });

  test('a JobFailure with permanent fails the job at once; a bad output fails it too', async () => {
    const doomed = await client.waitForJob(await client.enqueueJob('doomed', 'shop-t'), { timeoutMs: 10000 });
    assert.equal(doomed.status, 'failed');
    assert.equal(doomed.attempts, 1);
    assert.equal(doomed.error, 'bad input');
    const bad = await client.waitForJob(await client.enqueueJob('bad_output', 'shop-t'), { timeoutMs: 10000 });
    assert.equal(bad.status, 'failed');
    assert.match(bad.error ?? '', /^processor output is not one valid msgpack map/);
  });

  test('a cancel reaches the running job as its AbortSignal', async () => {
    const id = await client.enqueueJob('long', 'shop-t');
    await waitFor('the job to run', async () => (await client.getJobStatus(id)).status === 'running');
    const cancelled = await client.cancelJob(id);
    assert.equal(cancelled.status, 'cancelled');
    await waitFor('the processor to see the cancel', () => aborted.has(id), 5000);
    await waitFor('the slot to be free', async () => (await client.stats()).busy === 0, 5000);
    assert.equal((await client.getJobStatus(id)).status, 'cancelled');
  });

  test('an attempt past its timeout is cancelled by the broker and fails', async () => {
    const id = await client.enqueueJob('long', 'shop-t', {}, { timeoutMs: 300, maxAttempts: 1 });
    const job = await client.waitForJob(id, { timeoutMs: 10000 });
    assert.equal(job.status, 'failed');
    assert.equal(job.error, 'timed out after 300 ms');
    await waitFor('the processor to see the cancel', () => aborted.has(id), 5000);
  });

  test('a result made while the broker is down is sent again and taken: no rerun', async () => {
    const id = await client.enqueueJob('outlives_broker', 'shop-t');
    await waitFor('the job to report', async () => (await client.getJobStatus(id)).progress === 50, 5000);
    await broker.kill();
    await sleep(2000); // the job ends meanwhile: its COMPLETE waits for an ACK
    await broker.restart();
    const job = await client.waitForJob(id, { timeoutMs: 15000 });
    assert.equal(job.status, 'completed');
    assert.equal(job.attempts, 1);
    assert.deepEqual(job.output, { attempt: 1 });
    assert.deepEqual(job.errors, []);
  });

  test('a JOB whose input has a __proto__ key runs, and its output keeps the key', async () => {
    const input = JSON.parse('{"__proto__": {"x": 1}, "n": 1}') as Record<string, unknown>;
    const job = await client.waitForJob(await client.enqueueJob('echo', 'shop-t', input), { timeoutMs: 10000 });
    assert.equal(job.status, 'completed');
    assert.equal(job.attempts, 1);
    assert.deepEqual(Object.keys(job.output!), ['__proto__', 'n']);
    assert.deepEqual(Object.getOwnPropertyDescriptor(job.output, '__proto__')?.value, { x: 1 });
  });

  test('no more jobs run at once than the concurrency', async () => {
    const { ids } = await client.enqueueBatch(Array.from({ length: 5 }, () => ({ type: 'conc', shopId: 'shop-t' })));
    for (const id of ids) assert.equal((await client.waitForJob(id, { timeoutMs: 10000 })).status, 'completed');
    assert.equal(maxConcurrent, 2);
  });

  test('a worker killed mid-job: the job runs again after the lease, the old attempt fenced', async () => {
    const child = startNode(CHILD, [broker.workers, 'child-killed', '10000']);
    const id = await client.enqueueJob('resumable', 'shop-k');
    await waitFor('attempt 1 to report', async () => (await client.getJobStatus(id)).progress === 10, 10000);
    await child.stop('SIGKILL');
    // Another worker takes the job over once the broker gives attempt 1 up.
    const rescuer = startNode(CHILD, [broker.workers, 'child-rescuer', '10000']);
    const done = await client.waitForJob(id, { timeoutMs: 15000 });
    assert.equal(done.status, 'completed');
    assert.deepEqual(done.output, { attempt: 2 });
    assert.equal(done.attempts, 2);
    assert.deepEqual(
      done.errors.map((e) => e.attempt),
      [1],
    );
    // The broker notices the closed connection, or else the silence.
    assert.match(done.errors[0]!.error, /^worker (unreachable|lost \(no heartbeat\))$/);
    // The killed worker's name comes back with the result of attempt 1: fenced.
    const ghost = new Dealer({ routingId: 'child-killed', linger: 0, receiveTimeout: 3000 });
    ghost.connect(broker.workers);
    try {
      await ghost.send(frames(Cmd.COMPLETE, encodeBody({ id, attempt: 1, output: { stale: true } })));
      let ack;
      for (let i = 0; i < 5 && !ack; i++) {
        const msg = parseMessage((await ghost.receive()) as Buffer[]);
        if (msg?.cmd === Cmd.ACK) ack = msg.body;
      }
      assert.deepEqual(ack, { id, attempt: 1, taken: false });
    } finally {
      ghost.close();
    }
    assert.deepEqual((await client.getJobStatus(id)).output, { attempt: 2 });
    await rescuer.stop('SIGTERM');
  });

  test('a frozen worker that comes back has its old attempt cancelled, and its result is not taken', async () => {
    const frozen = startNode(CHILD, [broker.workers, 'child-frozen', '10000']);
    const id = await client.enqueueJob('resumable', 'shop-f');
    await waitFor('attempt 1 to report', async () => (await client.getJobStatus(id)).progress === 10, 10000);
    frozen.child.kill('SIGSTOP');
    const rescuer = startNode(CHILD, [broker.workers, 'child-rescuer-2', '10000']);
    try {
      const done = await client.waitForJob(id, { timeoutMs: 15000 });
      assert.deepEqual(done.output, { attempt: 2 });
      assert.deepEqual(
        done.errors.map((e) => [e.attempt, e.error]),
        [[1, 'worker lost (no heartbeat)']],
      );
    } finally {
      frozen.child.kill('SIGCONT');
    }
    // Back, it lists attempt 1 as held: the broker cancels it, and the FAIL
    // that follows is acknowledged as not taken.
    await waitFor('the stale result to be refused', () => /attempt 1: result not taken/.test(frozen.output), 10000);
    assert.deepEqual((await client.getJobStatus(id)).output, { attempt: 2 });
    await Promise.all([frozen.stop('SIGTERM'), rescuer.stop('SIGTERM')]);
  });

  test('SIGTERM drains: the running job finishes, no new job is taken, the worker exits', async () => {
    const child = startNode(CHILD, [broker.workers, 'child-drained', '10000']);
    const id = await client.enqueueJob('slow', 'shop-d', { ms: 1500 });
    await waitFor('the job to report', async () => (await client.getJobStatus(id)).progress >= 20, 10000);
    child.child.kill('SIGTERM');
    await sleep(200);
    const later = await client.enqueueJob('slow', 'shop-d', { ms: 100 });
    assert.equal(await child.exited(), 0);
    assert.match(child.output, /stopped/);
    const job = await client.getJobStatus(id);
    assert.equal(job.status, 'completed', child.output);
    assert.equal(job.attempts, 1);
    const waiting = await client.getJobStatus(later);
    assert.equal(waiting.status, 'pending');
    assert.equal(waiting.attempts, 0);
    await client.cancelJob(later);
  });
});

const JOB_ID = '0123456789abcdef';

/** A JOB body for attempt of job id. */
function jobBody(id: string, attempt: number, type: string): Uint8Array {
  return encode({ id, attempt, type, shop_id: 'shop-fake', input: {}, timeout: 0 });
}

describe('Worker against a broker a test plays', () => {
  let fake: FakeRouter;
  let worker: Worker | undefined;
  let running: Promise<void> | undefined;

  before(async () => {
    fake = await FakeRouter.start();
  });
  after(() => fake.close());

  /** Run a worker against the fake broker; resolves with its routing id once it sent READY. */
  async function start(w: Worker): Promise<Buffer> {
    worker = w;
    const from = fake.received.length;
    running = w.run();
    return (await fake.next((m) => m.cmd === Cmd.READY && m.body.name === w.name, from)).from;
  }

  async function stop(): Promise<void> {
    worker?.stop();
    worker?.stop();
    await running;
    worker = undefined;
  }

  test('a JOB repeated after its attempt ended is not run again: its result goes again', async () => {
    let runs = 0;
    const to = await start(
      new Worker({ broker: fake.endpoint, name: 'fake-repeat', stopSignals: [] }).processor('count', () => {
        runs++;
        return { runs };
      }),
    );
    try {
      await fake.send(to, Cmd.JOB, jobBody(JOB_ID, 1, 'count'));
      const first = await fake.next((m) => m.cmd === Cmd.COMPLETE);
      const from = fake.received.length;
      await fake.send(to, Cmd.JOB, jobBody(JOB_ID, 1, 'count'));
      const again = await fake.next((m) => m.cmd === Cmd.COMPLETE, from);
      assert.deepEqual(again.body, first.body);
      await sleep(200);
      assert.equal(runs, 1);
      await fake.send(to, Cmd.ACK, encode({ id: JOB_ID, attempt: 1, taken: true }));
    } finally {
      await stop();
    }
  });

  test('a JOB that cannot be decoded is failed for good, saying why', async () => {
    let runs = 0;
    const to = await start(
      new Worker({ broker: fake.endpoint, name: 'fake-undecodable', stopSignals: [] }).processor('count', () => {
        runs++;
      }),
    );
    try {
      const from = fake.received.length;
      const body = Buffer.concat([
        Buffer.from([0x86]),
        encode('id'),
        encode(JOB_ID),
        encode('attempt'),
        encode(3),
        encode('type'),
        encode('count'),
        encode('shop_id'),
        encode('s'),
        encode('input'),
        Buffer.from([0x81, 0x01, 0x01]), // a map key that is not a string
        encode('timeout'),
        encode(0),
      ]);
      await fake.send(to, Cmd.JOB, body);
      const fail = await fake.next((m) => m.cmd === Cmd.FAIL, from);
      assert.equal(fail.body.id, JOB_ID);
      assert.equal(fail.body.attempt, 3);
      assert.equal(fail.body.permanent, true);
      assert.match(String(fail.body.error), /^job could not be decoded: body: map key is not a string/);
      assert.equal(runs, 0);
      await fake.send(to, Cmd.ACK, encode({ id: JOB_ID, attempt: 3, taken: true }));
    } finally {
      await stop();
    }
  });

  test('its job lists hold at most 1024 attempts, and it keeps a bounded number of results', async () => {
    const to = await start(
      new Worker({ broker: fake.endpoint, name: 'fake-flood', concurrency: 1, heartbeatMs: 100, stopSignals: [] }).processor(
        'hang',
        (job) => job.sleep(60000),
      ),
    );
    try {
      const from = fake.received.length;
      for (let i = 1; i <= 2100; i++) {
        await fake.send(to, Cmd.JOB, jobBody(i.toString(16).padStart(16, '0'), 1, 'hang'));
      }
      // The first runs; each next one is handed back with a FAIL kept until
      // its ACK (none comes), up to a bound; past it JOBs are dropped.
      await waitFor('the FAILs', () => fake.received.slice(from).filter((m) => m.cmd === Cmd.FAIL).length >= 2048);
      const fence = fake.received.length;
      const beat = await fake.next((m) => m.cmd === Cmd.HEARTBEAT, fence);
      const jobs = beat.body.jobs as Array<{ id: string; attempt: number }>;
      assert.equal(jobs.length, 1024);
      assert.deepEqual(jobs[0], { id: '0000000000000001', attempt: 1 }, 'the running attempt first');
      await sleep(300);
      const fails = fake.received.slice(from).filter((m) => m.cmd === Cmd.FAIL);
      assert.equal(new Set(fails.map((m) => m.body.id)).size, 2048);
    } finally {
      await stop();
    }
  });
});

describe('Worker with an endpoint that is not one', () => {
  test('run() rejects, and leaves no signal handler behind', async () => {
    const before = process.listenerCount('SIGUSR2');
    const w = new Worker({ broker: 'not an endpoint', stopSignals: ['SIGUSR2'] }).processor('x', () => undefined);
    await assert.rejects(w.run(), (err: unknown) => err instanceof JobqError && err.code === 'bad_request');
    assert.equal(process.listenerCount('SIGUSR2'), before);
  });
});
