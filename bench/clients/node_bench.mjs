#!/usr/bin/env node
// node_bench.mjs: jobq's TypeScript client and worker (@jobq/client, built
// from clients/node), measured as jobq_bench and jobq_watch measure libjobq
// (bench/README.md, "Clients"). bench/clients/node.sh copies this file next
// to the built client (BUILD/bench/node), where `@jobq/client` resolves.
//
//   node node_bench.mjs BIN_DIR --scenario S [--jobs N] [--producers P]
//                       [--workers W] [--timeout SECONDS]
//
// Each run starts its own jobq-broker (full sync, as bench.h does: three
// loopback ports that were free, a temporary data directory, stopped and
// removed at the end) and its own worker, then one of:
//
//   sync       P JobqClients (one connection each), each an async loop that
//              enqueues one `noop` job and awaits its reply before the next;
//              one C `jobq-worker --concurrency W`. jobs/s from the start
//              until STATS counts every job completed; p50/p99/p99.9 of the
//              enqueue acknowledgement.
//   batched    the same with enqueueBatch of 64, the worker --prefetch 512.
//   pipelined  64 enqueues in flight per client, the worker --prefetch 512.
//   watch      one `sleep` job (50 ms) at a time, followed with watchJob; a
//              separate Node process subscribed to every event notes when it
//              saw each job's `completed` event; the sample runs from then to
//              when watchJob yields the final state (read with STATUS).
//   worker     `sync`'s producers, but the worker is @jobq/client's Worker
//              (a Node process of its own), `noop` processor, concurrency W.
//   worker-batched
//              `batched`'s producers (faster than the worker, so the rate is
//              the worker's) and the Worker with prefetch 512.
//
// Producers use retries: 0, as jobq_bench does (no made-up idempotency
// keys). Bounded: N jobs and the timeout (default 120 s); every process it
// starts is stopped, and killed if this one ends. The last line is CSV:
// system,mode,scenario,jobs_per_s,p50_us,p99_us,p999_us,rss_kb
import { fork, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SELF = fileURLToPath(import.meta.url);
const require = createRequire(import.meta.url);
const { JobqClient, Worker } = require('@jobq/client');

const BATCH = 64, IN_FLIGHT = 64, WATCH_MS = 50, WATCH_WARMUP = 10;
const INPUT = { n: 1 };
const nowUs = () => Number(process.hrtime.bigint() / 1000n); // CLOCK_MONOTONIC, as bench.h
const log = (...a) => process.stderr.write(`node_bench: ${a.join(' ')}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------- processes
const children = new Set();
function killChildren() {
  for (const c of children)
    if (c.exitCode === null && c.signalCode === null) try { c.kill('SIGKILL'); } catch { /* gone */ }
}
process.on('exit', killChildren);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'])
  process.on(sig, () => { killChildren(); process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1)); });

function track(c) {
  children.add(c);
  c.exited = new Promise((r) => c.once('exit', () => { children.delete(c); r(); }));
  return c;
}

async function stop(c, ms = 15000) {
  if (!c || c.exitCode !== null || c.signalCode !== null) return;
  c.kill('SIGTERM');
  let t;
  await Promise.race([c.exited, new Promise((r) => { t = setTimeout(r, ms); })]);
  clearTimeout(t);
  if (c.exitCode === null && c.signalCode === null) { c.kill('SIGKILL'); await c.exited; }
}

// Three loopback ports that are free now, held open together so they differ.
async function freePorts(n) {
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => res(s));
  })));
  const ports = servers.map((s) => s.address().port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

async function startBroker(binDir) {
  const [c, w, e] = await freePorts(3);
  const dir = mkdtempSync(join(tmpdir(), 'jobq-bench-node-'));
  const b = { dir, clients: `tcp://127.0.0.1:${c}`, workers: `tcp://127.0.0.1:${w}`, events: `tcp://127.0.0.1:${e}` };
  b.proc = track(spawn(join(binDir, 'jobq-broker'), ['--data', join(dir, 'data'), '--clients', b.clients,
    '--workers', b.workers, '--events', b.events, '--quiet'], { stdio: 'ignore' }));
  return b;
}

async function stopBroker(b) {
  await stop(b.proc);
  rmSync(b.dir, { recursive: true, force: true });
}

// ------------------------------------------------------------- figures
function row(label, rate, lat) {
  if (!lat.length) return `${label},,,,,`;
  const a = Float64Array.from(lat).sort(), n = a.length;
  return `${label},${rate ? rate.toFixed(0) : ''},${a[n >> 1]},${a[Math.floor((n * 99) / 100)]},${a[Math.floor((n * 999) / 1000)]},`;
}

async function waitReady(c, deadline) {
  while (Date.now() < deadline) {
    try { if ((await c.stats()).workers.length) return; } catch { /* not up yet */ }
    await sleep(50);
  }
  throw new Error('broker or worker not ready');
}

const completed = async (c) => (await c.stats()).totals.completed ?? 0;

// ------------------------------------------------------------- cycles
async function runCycle(b, o, c, deadline) {
  const per = Math.floor(o.jobs / o.producers);
  const batch = o.scenario.endsWith('batched') ? BATCH : 1;
  const lanes = o.scenario === 'pipelined' ? IN_FLIGHT : 1;
  const clients = Array.from({ length: o.producers }, () =>
    new JobqClient({ broker: b.clients, events: b.events, timeoutMs: 5000, retries: 0 }));
  const specs = Array.from({ length: batch }, () => ({ type: 'noop', shopId: 'bench', input: INPUT }));
  const lat = [];
  let errors = 0;
  const start = Date.now();
  await Promise.all(clients.map(async (cl) => {
    let left = per;
    await Promise.all(Array.from({ length: lanes }, async () => {
      while (left > 0 && Date.now() < deadline) {
        const n = Math.min(batch, left);
        left -= n;
        const t0 = nowUs();
        try {
          if (n === 1) await cl.enqueueJob('noop', 'bench', INPUT);
          else await cl.enqueueBatch(specs.slice(0, n));
          const dt = nowUs() - t0;
          for (let k = 0; k < n; k++) lat.push(dt);
        } catch (e) {
          errors += n;
          if (errors <= 3) log(`enqueue: ${e.message}`);
        }
      }
    }));
  }));
  let done = 0;
  while (Date.now() < deadline) {
    done = await completed(c);
    if (done >= lat.length) break;
    await sleep(5);
  }
  const secs = (Date.now() - start) / 1000;
  for (const cl of clients) cl.close();
  log(`jobs=${lat.length} completed=${done} errors=${errors} in ${secs.toFixed(2)} s`);
  const label = { sync: 'node,sync', batched: 'node,sync-batched', pipelined: 'node,sync-pipelined',
    worker: 'node-worker,sync', 'worker-batched': 'node-worker,sync-batched' }[o.scenario];
  const ok = done === lat.length && lat.length === per * o.producers;
  console.log(row(`${label},cycle-${o.producers}x${o.workers}`, ok ? done / secs : 0, ok ? lat : []));
  return ok;
}

// ------------------------------------------------------------- watch
// Sub-mode `subscriber EVENTS`: every completed event as {id, t} to the parent.
async function subscriberMain(events) {
  const { Subscriber } = require('zeromq');
  const { decode } = require('@msgpack/msgpack');
  process.on('disconnect', () => process.exit(0));
  setTimeout(() => process.exit(0), 600000).unref();
  const sub = new Subscriber({ linger: 0, receiveHighWaterMark: 100000 });
  sub.subscribe('');
  sub.connect(events);
  for await (const frames of sub) {
    const t = nowUs();
    if (frames.length !== 3) continue;
    let job;
    try { job = decode(frames[2]); } catch { continue; }
    if (job && job.status === 'completed') process.send({ id: job.id, t });
  }
}

async function runWatch(b, o, c, deadline) {
  const seen = new Map();
  const sub = track(fork(SELF, ['subscriber', b.events], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] }));
  sub.on('message', (m) => { if (!seen.has(m.id)) seen.set(m.id, m.t); });
  const ends = [];
  let missed = 0, warm = 0, tries = 0;
  try {
    while (ends.length < o.jobs && missed < 10 && Date.now() < deadline) {
      const id = await c.enqueueJob('sleep', 'watch', { ms: WATCH_MS, steps: 1 });
      let end = null;
      try {
        for await (const job of c.watchJob(id, { timeoutMs: 5000 }))
          if (job.status === 'completed' || job.status === 'failed' || job.status === 'cancelled') end = nowUs();
      } catch (e) { log(`watch: ${e.message}`); }
      if (end === null) { missed++; continue; }
      if (warm < WATCH_WARMUP) {
        // Until the subscriber has seen an end (at most 50 tries).
        await sleep(5);
        if (seen.has(id) || ++tries > 50) warm++;
        continue;
      }
      ends.push([id, end]);
    }
    await sleep(200);
  } finally {
    await stop(sub, 5000);
  }
  const v = ends.filter(([id]) => seen.has(id)).map(([id, end]) => end - seen.get(id));
  missed += ends.length - v.length;
  log(`watch: jobs=${v.length} missed=${missed} (us from the direct subscriber's end to the final state from watchJob)`);
  console.log(row('node,watch,delay', 0, v));
  return v.length === o.jobs && missed === 0;
}

// ------------------------------------------------------------- worker
// Sub-mode `worker BROKER CONCURRENCY PREFETCH`: the TypeScript Worker, noop.
async function workerMain(broker, concurrency, prefetch) {
  process.on('disconnect', () => process.exit(0));
  const w = new Worker({ broker, concurrency, prefetch, graceMs: 2000, stopSignals: ['SIGTERM'] });
  w.processor('noop', async (job) => job.input); // as the C noop: the output is the input
  await w.run();
  process.exit(0);
}

// ------------------------------------------------------------- main
function parse(argv) {
  const o = { binDir: argv[0], producers: 16, workers: 16, timeout: 120 };
  for (let i = 1; i < argv.length; i += 2) {
    const k = argv[i], v = argv[i + 1];
    if (!k?.startsWith('--') || v === undefined) return null;
    o[k.slice(2)] = k === '--scenario' ? v : Number(v);
  }
  o.jobs ??= o.scenario === 'watch' ? 300 : 8000;
  const ok = o.binDir && ['sync', 'batched', 'pipelined', 'watch', 'worker', 'worker-batched'].includes(o.scenario) &&
    [o.jobs, o.producers, o.workers, o.timeout].every(Number.isInteger) &&
    o.jobs >= 1 && o.jobs <= 1e6 && o.producers >= 1 && o.producers <= 256 &&
    o.workers >= 1 && o.workers <= 1024 && o.timeout >= 1 && o.timeout <= 600;
  return ok ? o : null;
}

async function main() {
  const a = process.argv.slice(2);
  if (a[0] === 'subscriber') return subscriberMain(a[1]);
  if (a[0] === 'worker') return workerMain(a[1], Number(a[2]), Number(a[3]));
  const o = parse(a);
  if (!o) {
    log('usage: node_bench.mjs BIN_DIR --scenario sync|batched|pipelined|watch|worker|worker-batched ' +
        '[--jobs N] [--producers P] [--workers W] [--timeout S]');
    process.exit(2);
  }
  const deadline = Date.now() + o.timeout * 1000;
  const b = await startBroker(o.binDir);
  const prefetch = ['batched', 'pipelined', 'worker-batched'].includes(o.scenario) ? 512 : 0;
  const worker = o.scenario.startsWith('worker')
    ? track(fork(SELF, ['worker', b.workers, String(o.workers), String(prefetch)],
      { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] }))
    : track(spawn(join(o.binDir, 'jobq-worker'), ['--broker', b.workers, '--types',
      o.scenario === 'watch' ? 'sleep' : 'noop', '--concurrency', String(o.workers),
      '--prefetch', String(prefetch)], { stdio: 'ignore' }));
  const c = new JobqClient({ broker: b.clients, events: b.events, timeoutMs: 500, retries: 0 });
  let ok = false;
  try {
    await waitReady(c, Math.min(deadline, Date.now() + 20000));
    ok = o.scenario === 'watch' ? await runWatch(b, o, c, deadline) : await runCycle(b, o, c, deadline);
  } catch (e) {
    log(e.message);
  } finally {
    c.close();
    await stop(worker);
    await stopBroker(b);
  }
  process.exit(ok ? 0 : 1);
}

main().catch((e) => { log(e && e.message ? e.message : e); process.exit(1); });
