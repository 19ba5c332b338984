/**
 * Test helpers: jobq-broker, jobq-worker and jobq-gateway from $JOBQ_BIN_DIR
 * (default: the repository's build/apps) on free loopback ports, each broker
 * in a temporary data directory. Every process started here is stopped, and
 * every directory removed, by `stopAll()` and, failing that, when the test
 * process exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const BIN_DIR = process.env.JOBQ_BIN_DIR || resolve(__dirname, '../../../../build/apps');

const children = new Set<ChildProcess>();
const dirs = new Set<string>();

process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A TCP port on 127.0.0.1 that nothing listens on now. */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.add(dir);
  return dir;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Poll check every 50 ms until it returns true, at most timeoutMs. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(50);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((r) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      r(true);
    });
    socket.once('error', () => r(false));
  });
}

/** A child process with its output kept for failure messages. */
export class Proc {
  readonly name: string;
  readonly child: ChildProcess;
  #output = '';

  constructor(name: string, command: string, args: string[], env: NodeJS.ProcessEnv = {}) {
    this.name = name;
    this.child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    children.add(this.child);
    const keep = (chunk: Buffer): void => {
      this.#output = (this.#output + chunk.toString()).slice(-20000);
    };
    this.child.stdout?.on('data', keep);
    this.child.stderr?.on('data', keep);
    this.child.once('exit', () => children.delete(this.child));
  }

  get output(): string {
    return this.#output;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves with the exit code (or the signal's name) once the process has ended. */
  exited(): Promise<number | string> {
    if (!this.running) return Promise.resolve(this.child.exitCode ?? this.child.signalCode!);
    return new Promise((r) => this.child.once('exit', (code, signal) => r(code ?? signal!)));
  }

  /** Send signal, wait up to timeoutMs for the end, then SIGKILL. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 5000): Promise<number | string> {
    if (!this.running) return this.exited();
    const ended = this.exited();
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const result = await ended;
    clearTimeout(timer);
    return result;
  }
}

const started = new Set<{ stop(): Promise<unknown> }>();

/** Stop everything started here, newest first. */
export async function stopAll(): Promise<void> {
  for (const thing of [...started].reverse()) {
    await thing.stop();
    started.delete(thing);
  }
}

export interface BrokerOptions {
  leaseMs?: number;
  workerTimeoutMs?: number;
  retryBaseMs?: number;
  args?: string[];
}

export class Broker {
  readonly clients: string;
  readonly workers: string;
  readonly events: string;
  readonly dataDir: string;
  readonly #args: string[];
  readonly #clientPort: number;
  proc: Proc | undefined;

  private constructor(ports: number[], options: BrokerOptions) {
    const [c, w, e] = ports as [number, number, number];
    this.#clientPort = c;
    this.clients = `tcp://127.0.0.1:${c}`;
    this.workers = `tcp://127.0.0.1:${w}`;
    this.events = `tcp://127.0.0.1:${e}`;
    this.dataDir = tempDir('jobq-broker-');
    this.#args = [
      '--data',
      this.dataDir,
      '--clients',
      this.clients,
      '--workers',
      this.workers,
      '--events',
      this.events,
      '--quiet',
      ...(options.leaseMs ? ['--lease-ms', String(options.leaseMs)] : []),
      ...(options.workerTimeoutMs ? ['--worker-timeout-ms', String(options.workerTimeoutMs)] : []),
      ...(options.retryBaseMs !== undefined ? ['--retry-base-ms', String(options.retryBaseMs)] : []),
      ...(options.args ?? []),
    ];
  }

  /** A broker on three free ports in a new data directory, up and answering. */
  static async start(options: BrokerOptions = {}): Promise<Broker> {
    const broker = new Broker([await freePort(), await freePort(), await freePort()], options);
    started.add(broker);
    await broker.restart();
    return broker;
  }

  /** Start the broker process again (same ports, same data), and wait until it listens. */
  async restart(): Promise<void> {
    const proc = new Proc('jobq-broker', join(BIN_DIR, 'jobq-broker'), this.#args);
    this.proc = proc;
    await waitFor('jobq-broker to listen', async () => {
      if (!proc.running) throw new Error(`jobq-broker exited: ${proc.output}`);
      return portOpen(this.#clientPort);
    });
  }

  /** SIGKILL the broker (no drain, no goodbye). */
  async kill(): Promise<void> {
    await this.proc?.stop('SIGKILL');
  }

  async stop(): Promise<void> {
    await this.proc?.stop('SIGTERM');
    rmSync(this.dataDir, { recursive: true, force: true });
    dirs.delete(this.dataDir);
  }
}

export interface WorkerProcOptions {
  types?: string[];
  concurrency?: number;
  name?: string;
  graceMs?: number;
}

/** jobq-worker (the C worker with its processors noop, sleep, fail, ...) for broker. */
export function startCWorker(broker: Broker, options: WorkerProcOptions = {}): Proc {
  const args = ['--broker', broker.workers, '--clients', broker.clients, '--quiet'];
  if (options.types) args.push('--types', options.types.join(','));
  if (options.concurrency) args.push('--concurrency', String(options.concurrency));
  if (options.name) args.push('--name', options.name);
  if (options.graceMs) args.push('--grace-ms', String(options.graceMs));
  args.push('--export-dir', tempDir('jobq-exports-'));
  const proc = new Proc('jobq-worker', join(BIN_DIR, 'jobq-worker'), args);
  started.add(proc);
  return proc;
}

/** Any Node.js script as a child process (for example a worker to SIGKILL). */
export function startNode(script: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Proc {
  const proc = new Proc(script, process.execPath, [script, ...args], env);
  started.add(proc);
  return proc;
}

export class Gateway {
  readonly url: string;
  readonly proc: Proc;

  private constructor(url: string, proc: Proc) {
    this.url = url;
    this.proc = proc;
  }

  /** jobq-gateway for broker on a free port, answering /healthz. */
  static async start(broker: Broker): Promise<Gateway> {
    const port = await freePort();
    const proc = new Proc('jobq-gateway', join(BIN_DIR, 'jobq-gateway'), [
      '--listen',
      `127.0.0.1:${port}`,
      '--broker',
      broker.clients,
      '--events',
      broker.events,
    ]);
    const gateway = new Gateway(`http://127.0.0.1:${port}`, proc);
    started.add(gateway);
    await waitFor('jobq-gateway to answer', async () => {
      if (!proc.running) throw new Error(`jobq-gateway exited: ${proc.output}`);
      return fetch(`${gateway.url}/healthz`).then(
        (r) => r.ok,
        () => false,
      );
    });
    return gateway;
  }

  async stop(): Promise<void> {
    await this.proc.stop('SIGTERM');
  }
}
