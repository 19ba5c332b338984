#!/usr/bin/env node
// bull_bench.mjs: BullMQ on Redis, measured the way jobq_bench and
// jobq_latency measure jobq (bench/README.md, "BullMQ").
//
//   node bull_bench.mjs cycle --port P --mode MODE --producers N --workers W --jobs J
//   node bull_bench.mjs idle  --port P --mode MODE --jobs N
//   options for both: [--timeout S] (default 120) [--payload BYTES] (default 300)
//
// Talks only to Redis on 127.0.0.1:P. The worker runs in a separate Node
// process (this script, sub-mode `worker`, forked with an IPC channel).
// Every loop is bounded by a count and by the time limit; on the limit, or
// any failure, the CSV rows are empty and the exit code is 2. The last
// line(s) are CSV: system,mode,scenario,jobs_per_s,p50_us,p99_us,p999_us,
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Queue, Worker } from 'bullmq';

const SELF = fileURLToPath(import.meta.url);
const now = () => process.hrtime.bigint(); // CLOCK_MONOTONIC, ns, system-wide
const log = (...a) => process.stderr.write(a.join(' ') + '\n');
// The same error (a refused connection, say) is told once, not per retry.
const told = new Set();
const logOnce = (msg) => { if (!told.has(msg)) { told.add(msg); log(msg); } };

// ---------------------------------------------------------------- arguments
function parseArgs(argv) {
  const sub = argv[0];
  const o = { sub, timeout: 120, payload: 300 };
  for (let i = 1; i < argv.length; i++) {
    const k = argv[i];
    if (!k.startsWith('--') || i + 1 >= argv.length) usage(`bad argument ${k}`);
    o[k.slice(2)] = argv[++i];
  }
  for (const k of ['port', 'producers', 'workers', 'jobs', 'timeout',
    'payload', 'concurrency', 'warm', 'deadline'])
    if (o[k] !== undefined) {
      const v = Number(o[k]);
      if (!Number.isInteger(v) || v < 0) usage(`--${k} needs a whole number`);
      o[k] = v;
    }
  return o;
}

function usage(msg) {
  if (msg) log(`bull_bench: ${msg}`);
  log('usage: bull_bench.mjs cycle --port P --mode MODE --producers N --workers W --jobs J [--timeout S] [--payload B]\n' +
      '       bull_bench.mjs idle  --port P --mode MODE --jobs N [--timeout S] [--payload B]');
  process.exit(64);
}

const connection = (port, worker) => ({
  host: '127.0.0.1',
  port,
  connectTimeout: 5000,
  // A Worker's connections must not give up on a command; a producer's may.
  maxRetriesPerRequest: worker ? null : 3,
  // Never reconnect for ever: past the time limit the process is gone anyway.
  retryStrategy: (times) => (times > 20 ? null : 100),
});

// ---------------------------------------------------------------- helpers
// p50, p99 and p99.9 of the first n samples (ns) in whole µs, read as the
// C tools read them (sorted[n * q]).
function pct(ns, n) {
  if (n === 0) return ['', '', ''];
  const a = Float64Array.from(ns.subarray(0, n), (v) => Math.floor(v / 1000)).sort();
  return [a[Math.floor(n / 2)], a[Math.floor((n * 99) / 100)], a[Math.floor((n * 999) / 1000)]];
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Resolves with the promise's value, or with `fallback` after `ms`.
function within(p, ms, fallback) {
  let t;
  return Promise.race([
    Promise.resolve(p).catch(() => fallback),
    new Promise((r) => { t = setTimeout(() => r(fallback), ms); }),
  ]).finally(() => clearTimeout(t));
}

// ---------------------------------------------------------------- child
let child = null;
let childExit = null;

function killChild() {
  if (child && child.exitCode === null && child.signalCode === null) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
}
process.on('exit', killChild);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'])
  process.on(sig, () => { killChild(); process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1)); });

function startChild(args) {
  // The child's stdout goes to our stderr: our stdout carries only results.
  child = fork(SELF, args, { stdio: ['ignore', 2, 2, 'ipc'] });
  childExit = new Promise((r) => child.once('exit', (code, sig) => r(code ?? sig)));
  child.on('error', (e) => log(`bull_bench: worker process: ${e.message}`));
  return child;
}

async function stopChild() {
  if (!child) return;
  if (child.connected) child.send({ type: 'stop' }, () => {});
  const r = await within(childExit, 5000, 'timeout');
  if (r === 'timeout') killChild();
}

// ---------------------------------------------------------------- worker
// Sub-mode `worker`: --port --queue --concurrency --warm --jobs --deadline.
// Counts `completed` events (emitted after the job's moveToFinished script
// has returned). Messages to the parent:
//   {type:'warm'}                   all warm-up jobs are done
//   {type:'done', t}                the jobs-th measured job completed at t
//   {type:'job', i, enter}          idle mode: job i's processor entered at enter
const tell = (m) => { if (process.connected) process.send(m, () => {}); };

async function runWorker(o) {
  // Never outlive the parent, nor the deadline.
  process.on('disconnect', () => process.exit(3));
  setTimeout(() => { log('bull_bench worker: deadline passed'); process.exit(4); },
    o.deadline * 1000).unref();
  const idle = o.kind === 'idle';
  let warm = 0, done = 0;
  // The processor's first act is the stamp (idle: its result).
  const worker = new Worker(o.queue, async () => (idle ? String(now()) : 0),
    { connection: connection(o.port, true), concurrency: o.concurrency, autorun: true });
  worker.on('error', (e) => logOnce(`bull_bench worker: ${e.message}`));
  worker.on('failed', (job, e) => log(`bull_bench worker: job failed: ${e && e.message}`));
  worker.on('completed', (job, result) => {
    if (job.name === 'warm') { if (++warm === o.warm) tell({ type: 'warm' }); }
    else if (idle) tell({ type: 'job', i: job.data.i, enter: result });
    else if (++done === o.jobs) tell({ type: 'done', t: String(now()) });
  });
  process.on('message', async (m) => {
    if (m.type !== 'stop') return;
    await within(worker.close(true), 3000, null);
    process.exit(0);
  });
  await worker.waitUntilReady();
  tell({ type: 'ready' });
}

// Waits for a message of this type from the child, at most ms; null if none.
function fromChild(type, ms) {
  return within(new Promise((r) => {
    const h = (m) => { if (m.type === type) { child.off('message', h); r(m); } };
    child.on('message', h);
  }), ms, null);
}

async function closeAll(queues) {
  await within(Promise.all(queues.map((q) => q.close())), 3000, null);
}

// ---------------------------------------------------------------- cycle
async function runCycle(o) {
  for (const k of ['producers', 'workers', 'jobs'])
    if (!o[k]) usage(`cycle needs --${k} > 0`);
  const scenario = `cycle-${o.producers}x${o.workers}`;
  const J = o.jobs;
  const deadline = Date.now() + o.timeout * 1000;
  const name = `jobqbench-${process.pid}-${Date.now()}`;
  const opts = { removeOnComplete: true, removeOnFail: true };
  const body = 'x'.repeat(o.payload);
  // One Queue (so one Redis connection) per producer loop, like one
  // connection per producer thread in the C clients.
  const queues = [];
  for (let i = 0; i < o.producers; i++) {
    const q = new Queue(name, { connection: connection(o.port, false) });
    q.on('error', (e) => logOnce(`bull_bench queue: ${e.message}`));
    queues.push(q);
  }
  const warmN = 2 * o.producers;
  startChild(['worker', '--port', String(o.port), '--queue', name, '--kind', 'cycle',
    '--concurrency', String(o.workers), '--warm', String(warmN), '--jobs', String(J),
    '--deadline', String(o.timeout + 15)]);

  const lat = new Float64Array(J); // ns, per acknowledged add
  let next = 0, acked = 0, errors = 0, t0 = 0n, tAdds = 0n;
  let doneMsg = null;
  const timedOut = new Promise((r) => setTimeout(() => r('timeout'), Math.max(0, deadline - Date.now())));

  const result = await Promise.race([timedOut, (async () => {
    if (!(await fromChild('ready', 30000))) throw new Error('worker process did not start');
    await Promise.all(queues.map((q) => q.waitUntilReady()));
    // Warm-up: two jobs through each producer connection; the worker has
    // processed them all before the clock starts.
    const warmed = fromChild('warm', 30000);
    await Promise.all(queues.map(async (q) => {
      await q.add('warm', { body }, opts);
      await q.add('warm', { body }, opts);
    }));
    if (!(await warmed)) throw new Error('warm-up jobs were not processed');
    const doneP = fromChild('done', o.timeout * 1000);
    t0 = now();
    await Promise.all(queues.map(async (q) => {
      while (Date.now() < deadline) {
        const i = next++;
        if (i >= J) return;
        const a = now();
        try {
          await q.add('job', { body }, opts);
          lat[acked++] = Number(now() - a);
        } catch (e) {
          if (++errors <= 3) log(`bull_bench: add failed: ${e.message}`);
          if (errors > 100) throw new Error('too many failed adds');
        }
      }
    }));
    tAdds = now();
    doneMsg = await doneP;
    return doneMsg ? 'ok' : 'timeout';
  })().catch((e) => { log(`bull_bench: ${e.message}`); return 'error'; })]);

  const code = result === 'ok' ? 0 : 2;
  const end = code ? now() : BigInt(doneMsg.t), secs = t0 ? Number(end - t0) / 1e9 : 0;
  const rate = code ? '' : (J / secs).toFixed(0);
  process.stdout.write(`bullmq ${o.mode} cycle${code ? ' ' + result.toUpperCase() : ''}: ` +
    `jobs=${J} added=${acked} add-errors=${errors} in ${secs.toFixed(2)} s, adds alone ` +
    `${tAdds ? (acked / (Number(tAdds - t0) / 1e9)).toFixed(0) : '-'}/s\n`);
  process.stdout.write(`bullmq,${o.mode},${scenario},${rate},${code ? ',,' : pct(lat, acked).join(',')},\n`);
  await stopChild();
  await closeAll(queues);
  process.exit(code);
}

// ---------------------------------------------------------------- idle
async function runIdle(o) {
  if (!o.jobs) usage('idle needs --jobs > 0');
  const WARM = 50, GAP_NS = 3_000_000n, SETTLE_NS = 1_000_000n, PER_JOB_MS = 5000;
  const N = o.jobs, total = WARM + N;
  const deadline = Date.now() + o.timeout * 1000;
  const name = `jobqbench-${process.pid}-${Date.now()}`;
  const opts = { removeOnComplete: true, removeOnFail: true };
  const body = 'x'.repeat(o.payload);
  const q = new Queue(name, { connection: connection(o.port, false) });
  q.on('error', (e) => logOnce(`bull_bench queue: ${e.message}`));
  startChild(['worker', '--port', String(o.port), '--queue', name, '--kind', 'idle',
    '--concurrency', '1', '--warm', '0', '--jobs', String(total),
    '--deadline', String(o.timeout + 15)]);

  const start = new Array(total); // bigint ns, just before add()
  const ack = new Float64Array(N), run = new Float64Array(N); // ns
  let nAck = 0, nRun = 0, missed = 0, sent = 0;
  // Job i's completion (with its processor-entry stamp) arrives by IPC after
  // the worker has finished it; the next add waits for it, so every job
  // finds the worker idle and waiting.
  const waiters = new Map();
  child.on('message', (m) => {
    if (m.type !== 'job') return;
    const i = m.i;
    if (i >= WARM && start[i] !== undefined) {
      run[nRun++] = Number(BigInt(m.enter) - start[i]);
    }
    const w = waiters.get(i);
    if (w) { waiters.delete(i); w(now()); }
  });
  const completion = (i) => within(new Promise((r) => waiters.set(i, r)), PER_JOB_MS, null);

  const timedOut = new Promise((r) => setTimeout(() => r('timeout'), Math.max(0, deadline - Date.now())));
  const result = await Promise.race([timedOut, (async () => {
    if (!(await fromChild('ready', 30000))) throw new Error('worker process did not start');
    await q.waitUntilReady();
    for (let i = 0; i < total && Date.now() < deadline; i++) {
      const done = completion(i);
      const t0 = now();
      start[i] = t0;
      await q.add('job', { i, body }, opts);
      const t1 = now();
      sent++;
      if (i >= WARM) ack[nAck++] = Number(t1 - t0);
      const tDone = await done;
      if (tDone === null) {
        if (++missed >= 10) throw new Error('10 jobs were not seen processed');
        continue;
      }
      // Next add: at least 3 ms after this one started and 1 ms after the
      // worker reported this job finished.
      let wait = t0 + GAP_NS - now();
      const w2 = tDone + SETTLE_NS - now();
      if (w2 > wait) wait = w2;
      if (wait > 0n) await sleep(Math.ceil(Number(wait) / 1e6));
    }
    return sent === total ? 'ok' : 'timeout';
  })().catch((e) => { log(`bull_bench: ${e.message}`); return 'error'; })]);

  const code = result === 'ok' && missed === 0 ? 0 : 2;
  process.stdout.write(`bullmq ${o.mode} idle${code ? ' ' + result.toUpperCase() : ''}: ` +
    `jobs=${nRun} of ${N} (after ${WARM} warm-up) missed=${missed}\n`);
  for (const [sc, v, n] of [['enqueue-ack', ack, nAck], ['idle-dispatch', run, nRun]])
    process.stdout.write(`bullmq,${o.mode},${sc},,${code ? ',,' : pct(v, n).join(',')},\n`);
  await stopChild();
  await closeAll([q]);
  process.exit(code);
}

// ---------------------------------------------------------------- main
const o = parseArgs(process.argv.slice(2));
if (!o.port || o.port > 65535) usage('--port P (1..65535) is required');
process.on('unhandledRejection', (e) => {
  log(`bull_bench: ${e && e.message ? e.message : e}`);
  process.exit(1);
});
if (o.sub === 'worker') {
  if (!process.send) usage('worker is started by the benchmark itself');
  runWorker(o).catch((e) => { log(`bull_bench worker: ${e.message}`); process.exit(1); });
} else {
  if (!o.mode) usage('--mode MODE is required');
  if (o.sub === 'cycle') runCycle(o);
  else if (o.sub === 'idle') runIdle(o);
  else usage(`unknown sub-mode ${o.sub}`);
}
