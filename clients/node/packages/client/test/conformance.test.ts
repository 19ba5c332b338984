/**
 * The TypeScript driver of the conformance scenarios (tests/conformance/README.md):
 * every scenarios/*.json runs as one test, against a fresh broker with the
 * scenario's arguments, with JobqClient for every op and
 * fixtures/conf-worker.js for the scenarios that need a worker. It reads
 * the scenarios as tests/conformance/driver_c.c does: answers are compared as
 * JSON in the wire's shape (the job map of PROTOCOL.md 6 with snake_case
 * names and times in ms since the epoch, null when 0).
 *
 * The scenario directory is $JOBQ_CONFORMANCE_DIR, else this repository's
 * tests/conformance/scenarios.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { Broker, sleep, startNode, stopAll, type Proc } from '@jobq/testkit';
import { JobqClient, JobqError, type EnqueueRequest, type Job, type JobState, type Stats } from '../src';

const SCENARIO_DIR =
  process.env.JOBQ_CONFORMANCE_DIR || resolve(__dirname, '../../../../../../tests/conformance/scenarios');
const CONF_WORKER = join(__dirname, 'fixtures', 'conf-worker.js');

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonMap = { [key: string]: Json };

interface Scenario {
  name?: string;
  about?: string;
  worker?: boolean;
  broker?: string[];
  steps: JsonMap[];
}

/** A failed step: the test fails with this message. */
class StepError extends Error {}

// --- the wire's shape --------------------------------------------------------

const ms = (d: Date | null): number | null => (d && d.getTime() > 0 ? d.getTime() : null);

/** A Job as the job map of PROTOCOL.md 6 in JSON, plus `errors_count` (driver_c's s_job_json). */
function jobJson(job: Job): JsonMap {
  const out: JsonMap = {
    id: job.id,
    type: job.type,
    status: job.status,
    shop_id: job.shopId,
    input: (job.input ?? null) as Json,
    output: (job.output ?? null) as Json,
    progress: job.progress,
    message: job.message,
    error: job.error,
    errors: job.errors.map((e) => ({ attempt: e.attempt, error: e.error, at: ms(e.at) })),
    attempts: job.attempts,
    max_attempts: job.maxAttempts,
    priority: job.priority,
    run_at: ms(job.runAt),
    timeout: job.timeoutMs,
    key: job.key,
    created_at: ms(job.createdAt),
    updated_at: ms(job.updatedAt),
    started_at: ms(job.startedAt),
    completed_at: ms(job.completedAt),
    worker: job.worker,
    lease_until: ms(job.leaseUntil),
    version: job.version,
    seq: job.seq,
  };
  if (job.wait) out.wait = { reason: job.wait.reason, until: ms(job.wait.until) };
  out.errors_count = job.errors.length;
  return out;
}

/** Stats as the STATS reply of PROTOCOL.md 8.7 (without `rid`). */
function statsJson(s: Stats): JsonMap {
  const out: JsonMap = {
    counts: s.counts,
    totals: s.totals,
    workers: s.workers.map((w) => ({
      name: w.name,
      seen_ms: w.seenMs,
      types: w.types,
      capacity: w.capacity,
      active: w.active,
    })),
    capacity: s.capacity,
    busy: s.busy,
    served: s.served,
    refused: s.refused,
    counters: s.counters,
    oldest: s.oldest,
  };
  if (s.commitUs) out.commit_us = { le: s.commitUs.le, counts: s.commitUs.counts, sum: s.commitUs.sum };
  if (s.shops) out.shops = s.shops;
  return out;
}

// --- matching ----------------------------------------------------------------

const isMap = (v: unknown): v is JsonMap => typeof v === 'object' && v !== null && !Array.isArray(v);

function show(v: Json | undefined): string {
  return v === undefined ? '(nothing)' : JSON.stringify(v).slice(0, 300);
}

/**
 * Why got does not match want (README, "Matching"), or undefined when it
 * does. Numbers compare as JavaScript numbers: `1` and `1.0` are one value
 * here, both in the scenario's JSON and in decoded msgpack.
 */
function mismatch(saved: Map<string, string>, want: Json, got: Json | undefined, path: string): string | undefined {
  const differ = (): string => `${path}: want ${show(want)}, got ${show(got)}`;
  if (typeof want === 'string' && want.startsWith('$')) {
    const id = saved.get(want.slice(1));
    return id !== undefined && got === id ? undefined : differ();
  }
  if (isMap(want)) {
    if (!isMap(got)) return differ();
    for (const [k, v] of Object.entries(want)) {
      const why = mismatch(saved, v, Object.hasOwn(got, k) ? got[k] : undefined, `${path}/${k}`);
      if (why) return why;
    }
    return undefined;
  }
  if (Array.isArray(want)) {
    if (!Array.isArray(got) || got.length !== want.length) return differ();
    for (let i = 0; i < want.length; i++) {
      const why = mismatch(saved, want[i]!, got[i], `${path}[${i}]`);
      if (why) return why;
    }
    return undefined;
  }
  return want === got ? undefined : differ();
}

/** The value at a "/"-separated path of o (stats' expectations). */
function atPath(o: Json, path: string): Json | undefined {
  let v: Json | undefined = o;
  for (const k of path.split('/').filter((p) => p !== '')) {
    v = isMap(v) && Object.hasOwn(v, k) ? v[k] : undefined;
    if (v === undefined) return undefined;
  }
  return v;
}

// --- one scenario ------------------------------------------------------------

const str = (v: Json | undefined): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: Json | undefined): number | undefined => (typeof v === 'number' ? v : undefined);

class Run {
  readonly saved = new Map<string, string>();
  worker: Proc | undefined;
  workersStarted = 0;

  constructor(
    readonly broker: Broker,
    readonly client: JobqClient,
  ) {}

  startWorker(): void {
    this.worker = startNode(CONF_WORKER, [this.broker.workers, `conf-ts-${++this.workersStarted}`]);
  }

  /** A step's job: "=<id>" is that id, anything else a saved name. */
  job(step: JsonMap): string {
    const ref = str(step.job) ?? '';
    if (ref.startsWith('=')) return ref.slice(1);
    const id = this.saved.get(ref);
    if (id === undefined) throw new StepError(`no job saved as '${ref}'`);
    return id;
  }

  /** An enqueue step (or one entry of a batch) as the client's request. */
  static request(s: JsonMap): EnqueueRequest {
    return {
      type: str(s.type) ?? '',
      shopId: str(s.shop) ?? '',
      input: s.input === undefined ? undefined : (s.input as Record<string, unknown>),
      priority: num(s.priority),
      delayMs: num(s.delay_ms),
      maxAttempts: num(s.max_attempts),
      timeoutMs: num(s.timeout_ms),
      key: str(s.key),
    };
  }

  /**
   * Run one step; resolves with the answer to match against `expect`, or
   * undefined for an op without one. JobqErrors are the step's error.
   */
  async op(s: JsonMap, n: number): Promise<Json | undefined> {
    const op = str(s.op);
    const c = this.client;
    switch (op) {
      case 'enqueue': {
        const r = await c.enqueue(Run.request(s));
        const as = str(s.as);
        if (as !== undefined) this.saved.set(as, r.id);
        return { id: r.id, created: r.created };
      }
      case 'enqueue_batch': {
        const jobs = Array.isArray(s.jobs) ? s.jobs.filter(isMap) : [];
        const r = await c.enqueueBatch(jobs.map(Run.request));
        const as = Array.isArray(s.as) ? s.as : [];
        r.ids.forEach((id, i) => {
          const name = str(as[i]);
          if (name !== undefined) this.saved.set(name, id);
        });
        return { ids: r.ids, created: r.created };
      }
      case 'status':
        return jobJson(await c.getJobStatus(this.job(s)));
      case 'cancel':
        return jobJson(await c.cancelJob(this.job(s)));
      case 'retry':
        return jobJson(await c.retryJob(this.job(s)));
      case 'wait': {
        const id = this.job(s);
        const status = str(s.status);
        const within = num(s.within_ms) ?? 0;
        const until = Date.now() + within;
        for (;;) {
          const job = await c.getJobStatus(id);
          if (job.status === status) return jobJson(job);
          if (Date.now() > until) {
            throw new StepError(`step ${n}: job ${id} not ${status} within ${within} ms (it is ${job.status})`);
          }
          await sleep(20);
        }
      }
      case 'watch': {
        const id = this.job(s);
        let states = 0;
        let last: Job | undefined;
        for await (const job of c.watchJob(id, { timeoutMs: num(s.within_ms) })) {
          // Versions must grow. PROTOCOL.md 10.2 has the library report a
          // snapshot of the same version when only its `wait` changed (no
          // change of the job): that one is let through.
          if (last && !(job.version > last.version || sameVersionNewWait(last, job))) {
            throw new StepError(`step ${n}: watch saw version ${job.version} after ${last.version}`);
          }
          last = job;
          states++;
        }
        const got = jobJson(await c.getJobStatus(id));
        got.final = got.status as Json;
        got.states = states;
        const want = isMap(s.expect) ? s.expect : {};
        const min = num(want.min_states);
        if (min !== undefined && states < min) {
          throw new StepError(`step ${n}: watch saw ${states} states, want ${min} or more`);
        }
        if (min !== undefined) got.min_states = min;
        return got;
      }
      case 'list':
      case 'list_all': {
        const filter = {
          shopId: str(s.shop),
          type: str(s.type),
          status: str(s.status) as JobState | undefined,
          limit: num(s.limit),
        };
        const ids: string[] = [];
        let cursor: string | null = null;
        for (let page = 0; page < 1000; page++) {
          const p: Awaited<ReturnType<JobqClient['listJobsPage']>> = await c.listJobsPage({ ...filter, cursor });
          ids.push(...p.jobs.map((j) => j.id));
          cursor = p.next;
          if (op === 'list' || !cursor) break;
        }
        return { count: ids.length, more: cursor !== null, ids };
      }
      case 'stats': {
        const st = statsJson(await c.stats());
        // Expectations name paths: flatten them into the answer.
        const got: JsonMap = {};
        for (const k of Object.keys(isMap(s.expect) ? s.expect : {})) {
          const v = atPath(st, k);
          if (v !== undefined) got[k] = v;
        }
        return got;
      }
      case 'same': {
        const names = Array.isArray(s.jobs) ? s.jobs.map((j) => str(j) ?? '') : [];
        const [a, b] = names.map((name) => this.saved.get(name));
        if (a === undefined || a !== b) throw new StepError(`step ${n}: ${a ?? '?'} and ${b ?? '?'} differ`);
        return undefined;
      }
      case 'sleep':
        await sleep(num(s.ms) ?? 0);
        return undefined;
      case 'kill_worker':
        if (!this.worker?.running) throw new StepError(`step ${n}: no worker to kill`);
        await this.worker.stop('SIGKILL');
        this.worker = undefined;
        return undefined;
      case 'start_worker':
        this.startWorker();
        return undefined;
      default:
        throw new StepError(`step ${n}: unknown op '${String(op)}'`);
    }
  }

  /** Run step n and check its answer against `expect` or `error`. */
  async step(s: JsonMap, n: number): Promise<void> {
    const op = str(s.op);
    const wantErr = str(s.error);
    let got: Json | undefined;
    try {
      got = await this.op(s, n);
    } catch (err) {
      if (!(err instanceof JobqError)) throw err;
      // A watch out of time is not a JOBQ/1 code; driver_c reads its own the same way.
      const code = err.code === 'timeout' ? 'unavailable' : err.code;
      if (wantErr === undefined) throw new StepError(`step ${n} (${op}): ${code}: ${err.message}`);
      if (code !== wantErr) throw new StepError(`step ${n} (${op}): want error ${wantErr}, got ${code} (${err.message})`);
      return;
    }
    if (wantErr !== undefined) throw new StepError(`step ${n} (${op}): want error ${wantErr}, got success`);
    if (s.expect !== undefined && got !== undefined) {
      const why = mismatch(this.saved, s.expect, got, String(op));
      if (why) throw new StepError(`step ${n}: ${why}`);
    }
  }
}

function sameVersionNewWait(before: Job, now: Job): boolean {
  const w = (j: Job): string => (j.wait ? `${j.wait.reason}@${j.wait.until?.getTime() ?? 0}` : '');
  return now.version === before.version && w(now) !== w(before);
}

async function runScenario(scenario: Scenario): Promise<void> {
  assert.ok(Array.isArray(scenario.steps) && scenario.steps.length > 0, 'a scenario has steps');
  const broker = await Broker.start({ args: scenario.broker ?? [] });
  const client = new JobqClient({ broker: broker.clients, events: broker.events, timeoutMs: 5000 });
  const run = new Run(broker, client);
  try {
    if (scenario.worker === true) run.startWorker();
    for (const [n, s] of scenario.steps.entries()) {
      try {
        await run.step(s, n);
      } catch (err) {
        if (err instanceof StepError && run.worker) {
          err.message += `\nworker output:\n${run.worker.output.slice(-4000)}`;
        }
        throw err;
      }
    }
  } finally {
    client.close();
    if (run.worker) {
      const worker = run.worker;
      const code = await worker.stop('SIGTERM', 5000);
      assert.equal(code, 0, `conf-worker did not stop cleanly on SIGTERM: ${code}\n${worker.output}`);
    }
    await broker.stop();
  }
}

// --- one test per file -------------------------------------------------------

const files = readdirSync(SCENARIO_DIR)
  .filter((f) => f.endsWith('.json'))
  .sort();

test('conformance scenarios are found', () => {
  assert.ok(files.length > 0, `no scenarios in ${SCENARIO_DIR}`);
});

for (const file of files) {
  test(file, async () => {
    const scenario = JSON.parse(readFileSync(join(SCENARIO_DIR, file), 'utf8')) as Scenario;
    await runScenario(scenario);
  });
}

after(async () => {
  await stopAll();
});
