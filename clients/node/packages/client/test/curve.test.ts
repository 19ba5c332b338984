/**
 * A broker with keys (PROTOCOL.md section 13): CURVE for the client, its
 * watch and the worker; a client without keys or with a key the broker
 * refuses gets no answer.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BIN_DIR, Broker, stopAll, tempDir } from '@jobq/testkit';
import {
  JobqClient,
  JobqError,
  Worker,
  closeJobq,
  curveKeysFromEnv,
  curveKeysFromFiles,
  enqueueJob,
  waitForJob,
  configureJobq,
  type CurveKeys,
} from '../src';

/** A key pair made by `jobq keygen`: its public key. */
function keygen(dir: string, name: string): string {
  const out = execFileSync(join(BIN_DIR, 'jobq'), ['keygen', join(dir, name), '--name', name], { encoding: 'utf8' });
  const line = out.split('\n').find((l) => l.startsWith('public key: '));
  assert.ok(line, out);
  return line.slice('public key: '.length);
}

async function noAnswer(promise: Promise<unknown>, hint: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof JobqError, String(err));
    assert.equal(err.code, 'unavailable', err.message);
    assert.match(err.message, hint);
    return true;
  });
}

describe('CURVE', () => {
  let dir: string;
  let broker: Broker;
  const curve = (name: string): CurveKeys => curveKeysFromFiles(join(dir, `${name}_secret`), join(dir, 'broker'));

  before(async () => {
    dir = tempDir('jobq-keys-');
    keygen(dir, 'broker');
    const lines = [
      `api client,watcher s ${keygen(dir, 'api')}`,
      `w1 worker * ${keygen(dir, 'w1')}`,
      `other client s ${keygen(dir, 'other')}`,
    ];
    keygen(dir, 'stranger'); // not in the key file
    writeFileSync(join(dir, 'keys'), lines.join('\n') + '\n');
    broker = await Broker.start({ args: ['--keys', join(dir, 'keys'), '--cert', join(dir, 'broker_secret')] });
  });
  after(async () => {
    await stopAll();
  });

  test('a client enqueues and watches, and a worker runs the job, with keys', async () => {
    const worker = new Worker({ broker: broker.workers, name: 'w1', stopSignals: [], curve: curve('w1') }).processor<
      { name: string },
      { hello: string }
    >('greet', (job) => ({ hello: job.input.name }));
    const running = worker.run();
    const client = new JobqClient({ broker: broker.clients, events: broker.events, curve: curve('api') });
    try {
      // (STATS to a key of some shops leaves out the workers: the job waits for the worker.)
      const id = await client.enqueueJob('greet', 's', { name: 'ada' });
      const states: string[] = [];
      let last;
      for await (const job of client.watchJob<{ name: string }, { hello: string }>(id, { shopId: 's', timeoutMs: 20000 })) {
        states.push(job.status);
        last = job;
      }
      assert.equal(last?.status, 'completed', states.join(','));
      assert.deepEqual(last?.output, { hello: 'ada' });
    } finally {
      client.close();
      worker.stop();
      await running;
    }
  });

  test('the free functions take their keys from JOBQ_CERT and JOBQ_BROKER_KEY', async () => {
    const saved = { ...process.env };
    Object.assign(process.env, {
      JOBQ_BROKER: broker.clients,
      JOBQ_EVENTS: broker.events,
      JOBQ_CERT: join(dir, 'api_secret'),
      JOBQ_BROKER_KEY: curve('api').serverKey,
    });
    configureJobq({});
    try {
      const id = await enqueueJob('nobody_runs_this', 's', {});
      await assert.rejects(waitForJob(id, { shopId: 's', timeoutMs: 300 }), { code: 'timeout' });
    } finally {
      closeJobq();
      process.env = saved;
    }
  });

  test('a client without keys gets no answer, with a hint', async () => {
    const client = new JobqClient({ broker: broker.clients, timeoutMs: 300, retries: 0, curve: null });
    try {
      await noAnswer(client.stats(), /does the broker run with keys\?.*JOBQ_CERT/);
    } finally {
      client.close();
    }
  });

  test('a key the broker does not hold, a wrong broker key and a worker key get no answer', async () => {
    const wrongBroker = { ...curve('api'), serverKey: curve('api').publicKey };
    for (const keys of [curve('stranger'), wrongBroker, curve('w1')]) {
      const client = new JobqClient({ broker: broker.clients, timeoutMs: 300, retries: 0, curve: keys });
      try {
        await noAnswer(client.stats(), /key file.*broker's public key/);
      } finally {
        client.close();
      }
    }
  });

  test('a key of other shops may not enqueue there', async () => {
    const client = new JobqClient({ broker: broker.clients, curve: curve('other') });
    try {
      await assert.rejects(client.enqueueJob('greet', 'elsewhere', {}), { code: 'forbidden' });
    } finally {
      client.close();
    }
  });
});

describe('CURVE key files', () => {
  test('keys from files and the environment; clear errors for the wrong files', () => {
    const dir = tempDir('jobq-keys-');
    const brokerKey = keygen(dir, 'broker');
    const apiKey = keygen(dir, 'api');
    const keys = curveKeysFromFiles(join(dir, 'api_secret'), brokerKey);
    assert.deepEqual([keys.publicKey, keys.serverKey], [apiKey, brokerKey]);
    assert.deepEqual(curveKeysFromFiles(join(dir, 'api_secret'), join(dir, 'broker')), keys);
    assert.throws(() => curveKeysFromFiles(join(dir, 'api'), brokerKey), {
      code: 'bad_request',
      message: /no secret-key; give the secret certificate \(PATH_secret\)/,
    });
    writeFileSync(join(dir, 'junk'), 'curve\n    public-key = "short"\n');
    assert.throws(() => curveKeysFromFiles(join(dir, 'junk'), brokerKey), {
      message: /junk: not a CURVE certificate/,
    });
    assert.throws(() => curveKeysFromFiles(join(dir, 'missing'), brokerKey), { message: /missing: ENOENT/ });
    assert.throws(() => new JobqClient({ curve: { ...keys, publicKey: 'short' } }), {
      code: 'bad_request',
      message: /publicKey: not a CURVE key/,
    });
    assert.deepEqual(
      curveKeysFromEnv({ JOBQ_CERT: join(dir, 'api_secret'), JOBQ_BROKER_KEY: join(dir, 'broker') }),
      keys,
    );
    assert.equal(curveKeysFromEnv({ JOBQ_CERT: '', JOBQ_BROKER_KEY: '' }), undefined);
    assert.throws(() => curveKeysFromEnv({ JOBQ_CERT: join(dir, 'api_secret') }), {
      message: 'CURVE needs both JOBQ_CERT and JOBQ_BROKER_KEY',
    });
  });
});
