/**
 * Benchmarks run the engine as users run it: the worker and the receiver each in a process of its
 * own (one process each, so /proc/<pid> is the process itself; the worker compiled, as the image runs
 * it, `node dist/src/workers/main.js` from scripts/build-cli.sh, the receiver through tsx), against the
 * real Temporal dev server and the real drill target. The load generator is the benchmark process.
 * `useCluster()` points them all at the cluster profile instead (scripts/cluster.sh: the
 * multi-service server on PostgreSQL, its frontend behind mTLS).
 *
 * Each run gets a private task queue, a private config (targets `bench-<run>-<i>` that are copies of
 * the drill target `alfred`, or `alfred` itself) and a private state directory. Payloads are
 * encrypted with the stack's codec secrets (codec.secretsFile of config/engine.yaml), as the engine's
 * own processes encrypt them; operators decide through the stack's codec server (`operatorClient`).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { PayloadCodec } from '@temporalio/common';
import { bundleWorkflowCode } from '@temporalio/worker';
import { loadConfig, type EngineConfig } from '../src/config';
import { engineCodecs } from '../src/lib/codec';
import { RemoteCodec } from '../src/lib/codec/remote';
import { decodeHistoryPayloads } from '../src/lib/history';
import { connectClient, connectionOptions, loadCodecSecrets } from '../src/lib/temporal';
import { workflowBundleOptions } from '../src/workers/bundle';
import { budgetWorkflowId, guardWorkflowId } from '../src/workflows/contracts';

export const REPO = path.resolve(__dirname, '..');
const BUNDLE_DIR = path.join(REPO, '.stack/build');
const STACK_DIR = process.env.STACK_DIR ?? path.join(REPO, '.stack');

/** Which Temporal the benchmark's processes use: the dev server (scripts/stack.sh) or the cluster profile. */
export type TemporalProfile = 'dev' | 'cluster';
let profile: TemporalProfile = 'dev';

export function temporalProfile(): TemporalProfile {
  return profile;
}

/**
 * Brings the cluster profile up (`scripts/cluster.sh up`: seconds when it runs) and points every
 * process of the benchmark at it from then on: the configuration `stackConfig()` gives (and so the
 * engine config the worker, receiver and thin front read) carries the cluster's address and client
 * certificate, and `temporalServerPid()` is the cluster server's.
 */
export function useCluster(): void {
  execFileSync('bash', [path.join(REPO, 'scripts/cluster.sh'), 'up'], { stdio: ['ignore', 2, 2], env: { ...process.env, STACK_DIR } });
  profile = 'cluster';
}

/**
 * The `--temporal dev|cluster` option of the benchmarks that use a server: switches to the cluster
 * profile when asked, and returns the title of the BENCHMARKS.md section for the profile (the
 * cluster's figures go to a section of their own, "<title> (cluster profile)") with the command that
 * reproduces them. Any other value prints the usage and exits with 2.
 */
export function chooseProfile(value: string | undefined, title: string, command: string, usage: string): { section: string; command: string } {
  if (value !== 'dev' && value !== 'cluster') {
    console.error(`--temporal must be dev or cluster, not "${value}"\n${usage}`);
    process.exit(2);
  }
  if (value === 'dev') return { section: title, command };
  useCluster();
  return { section: `${title} (cluster profile)`, command: `${command} --temporal cluster` };
}

/** The variables scripts/cluster.sh writes for the engine (.stack/cluster/engine.env): address, namespace, mTLS files. */
function clusterEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(path.join(STACK_DIR, 'cluster/engine.env'), 'utf8').split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m) out[m[1] as string] = m[2] as string;
  }
  return out;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/**
 * The workflow bundle the bench worker loads (built once per benchmark process): the engine's own,
 * or with `sdkDefaults` the one the SDK builds when given only the workflows path (no preloading).
 */
const bundles = new Map<boolean, string>();
export async function workflowBundle(sdkDefaults = false): Promise<string> {
  const known = bundles.get(sdkDefaults);
  if (known) return known;
  const opts = workflowBundleOptions();
  const { code } = await bundleWorkflowCode({
    ...(sdkDefaults ? { workflowsPath: opts.workflowsPath } : opts),
    logger: { log: () => undefined, trace: () => undefined, debug: () => undefined, info: () => undefined, warn: () => undefined, error: console.error },
  });
  const file = path.join(BUNDLE_DIR, sdkDefaults ? 'bench-workflow-bundle.sdk-defaults.js' : 'bench-workflow-bundle.js');
  mkdirSync(BUNDLE_DIR, { recursive: true });
  writeFileSync(file, code);
  bundles.set(sdkDefaults, file);
  return file;
}

/**
 * How the engine starts its worker (package.json "worker", scripts/up.sh, the Dockerfile): glibc
 * malloc limited to 2 arenas and V8 sized for memory rather than speed.
 */
const WORKER_NODE_FLAGS = ['--optimize-for-size'];
const WORKER_ENV = { MALLOC_ARENA_MAX: '2' };

export interface BenchEngine {
  run: string;
  dir: string;
  config: EngineConfig;
  taskQueue: string;
  targets: string[];
  token: string;
  client: Client;
  receiverUrl?: string;
  worker?: ChildProcess;
  receiver?: ChildProcess;
  /** Resident set size of the worker process now, in MiB. */
  workerRssMiB(): number;
  /** Posts one Alertmanager v4 notification for `target`; resolves with the HTTP status. */
  postAlert(alertname: string, target: string, fingerprint: string): Promise<number>;
  stop(): Promise<void>;
}

export interface BenchEngineOptions {
  /** Copies of `alfred` named bench-<run>-<i>; 0 = use `alfred` itself. */
  targets: number;
  worker: boolean;
  receiver: boolean;
  /** Alert name routed to `runbook` (receiver only). */
  route?: { alertname: string; runbook: string };
  policy?: Partial<EngineConfig['policy']>;
  workerOptions?: Partial<EngineConfig['worker']>;
  /** Run the worker as the SDK would by default: no preloaded bundle, no memory flags. */
  sdkDefaults?: boolean;
  /** In place of the receiver, the thinnest HTTP front to Temporal (bench/thin-front.ts). */
  thinFront?: boolean;
  /** Changes to every bench target's copy of `alfred` (e.g. a Redis of the benchmark's own). */
  targetOverrides?: Partial<EngineConfig['targets'][string]>;
  /** Limits changed on every bench target, the others the drill target's. */
  limitOverrides?: Partial<EngineConfig['targets'][string]['limits']>;
  /** The receiver's `lanes.coalesceWindowMs` (receiver only). */
  coalesceWindowMs?: number;
}

async function waitForLine(child: ChildProcess, pattern: RegExp, what: string, timeoutMs = 60_000): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`${what} not ready in ${timeoutMs} ms:\n${seen.slice(-2000)}`)), timeoutMs);
    const onData = (b: Buffer): void => {
      seen += b.toString();
      if (pattern.test(seen)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with ${code}:\n${seen.slice(-2000)}`));
    });
  });
}

/** Engine processes still running: killed if the benchmark itself exits early (Ctrl-C, an error). */
const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});
// Without these, Ctrl-C would end the benchmark without running the exit hooks above.
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));

function node(script: string, args: string[], env: Record<string, string>, flags: string[] = []): ChildProcess {
  const base: NodeJS.ProcessEnv = { ...process.env };
  delete base.MALLOC_ARENA_MAX;
  const loader = script.endsWith('.ts') ? ['--import', 'tsx'] : [];
  const child = spawn(process.execPath, [...flags, ...loader, script, ...args], {
    cwd: REPO,
    env: { ...base, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

async function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

/**
 * The stack's engine config (config/engine.yaml), its file paths made absolute; on the cluster
 * profile, read with the variables scripts/cluster.sh writes (its `temporal:` is the cluster's).
 */
export function stackConfig(): EngineConfig {
  const env = profile === 'cluster' ? { ...process.env, ...clusterEnv() } : process.env;
  const config = loadConfig(path.join(REPO, 'config/engine.yaml'), env);
  config.docker.socketPath = path.resolve(REPO, config.docker.socketPath);
  config.codec.secretsFile = path.resolve(REPO, config.codec.secretsFile);
  return config;
}

/** The engine's codecs with the stack's keys: what the worker and the receiver encrypt with. */
export function benchCodecs(config: EngineConfig = stackConfig()): PayloadCodec[] {
  return engineCodecs(loadCodecSecrets(config));
}

/** A client that encrypts and decodes as the engine's own processes do, connected as they connect (TLS included). */
export async function connect(config: EngineConfig = stackConfig()): Promise<Client> {
  const connection = await Connection.connect(connectionOptions(config));
  return new Client({ connection, namespace: config.temporal.namespace, dataConverter: { payloadCodecs: benchCodecs(config) } });
}

/**
 * A client as an operator uses it: through the stack's codec server (codec.serverUrl) with their
 * personal token from $STACK_DIR/secrets/tokens/<name>, so what it sends arrives sealed with their name.
 */
export async function operatorClient(name: string, config: EngineConfig = stackConfig()): Promise<Client> {
  const token = readFileSync(path.join(STACK_DIR, 'secrets', 'tokens', name), 'utf8').trim();
  return connectClient(config, { payloadCodecs: [new RemoteCodec({ url: config.codec.serverUrl, token, namespace: config.temporal.namespace })] });
}

/** A workflow's history with its payloads decrypted (Temporal holds them encrypted). */
export async function decodedHistory(client: Client, workflowId: string, codecs: PayloadCodec[] = benchCodecs()) {
  return decodeHistoryPayloads(await client.workflow.getHandle(workflowId).fetchHistory(), codecs);
}

/**
 * Ends the per-resource guards and the action budget keeper of `target` left on other task queues
 * (they would never grant a lock or answer here).
 */
export async function clearGuards(client: Client, target: string): Promise<void> {
  for await (const wf of client.workflow.list({ query: "WorkflowType IN ('targetGuard', 'actionBudget') AND ExecutionStatus = 'Running'" })) {
    if (wf.workflowId.startsWith(guardWorkflowId(target, '')) || wf.workflowId === budgetWorkflowId(target)) {
      await client.workflow.getHandle(wf.workflowId).terminate('benchmark starting').catch(() => undefined);
    }
  }
}

export async function startBenchEngine(opts: BenchEngineOptions): Promise<BenchEngine> {
  const run = randomUUID().slice(0, 6);
  const dir = mkdtempSync(path.join(tmpdir(), `bench-${run}-`));
  const config = stackConfig();
  const alfred = config.targets.alfred as EngineConfig['targets'][string];
  const targets = opts.targets > 0 ? Array.from({ length: opts.targets }, (_, i) => `bench-${run}-${i}`) : ['alfred'];
  const bench = { ...alfred, ...opts.targetOverrides, limits: { ...alfred.limits, ...opts.limitOverrides } };
  config.targets = Object.fromEntries(targets.map((t) => [t, bench]));
  const taskQueue = `bench-${run}`;
  config.temporal.taskQueue = taskQueue;
  config.notify = { ...config.notify, file: path.join(dir, 'notifications.jsonl'), stdout: false };
  config.policy = { ...config.policy, settleMs: 0, ...opts.policy };
  config.worker = { ...config.worker, metricsAddress: `127.0.0.1:${await freePort()}`, ...opts.workerOptions };
  const engineFile = path.join(dir, 'engine.json');
  // JSON is YAML: the engine's own loader reads it back (secret references stay references).
  writeFileSync(engineFile, JSON.stringify(config, null, 1));
  const token = `bench-${randomUUID()}`;
  const client = await connect(config);

  let worker: ChildProcess | undefined;
  if (opts.worker) {
    const sdk = opts.sdkDefaults === true;
    // Compiled, as the image runs it: tsx's loader costs the worker memory the image does not spend.
    execFileSync(path.join(REPO, 'scripts/build-cli.sh'), { cwd: REPO, stdio: 'inherit' });
    worker = node(
      'dist/src/workers/main.js',
      [],
      { ENGINE_CONFIG: engineFile, WORKFLOW_BUNDLE: await workflowBundle(sdk), LOG_LEVEL: 'info', ...(sdk ? {} : WORKER_ENV) },
      sdk ? [] : WORKER_NODE_FLAGS,
    );
    await waitForLine(worker, /worker started/, 'bench worker');
  }
  let receiver: ChildProcess | undefined;
  let receiverUrl: string | undefined;
  if (opts.thinFront) {
    const port = await freePort();
    receiver = node('bench/thin-front.ts', [], { ENGINE_CONFIG: engineFile, TASK_QUEUE: taskQueue, PORT: String(port) });
    await waitForLine(receiver, /thin front listening/, 'thin front');
    receiverUrl = `http://127.0.0.1:${port}`;
  } else if (opts.receiver) {
    const port = await freePort();
    const routesFile = path.join(dir, 'routes.json');
    const route = opts.route ?? { alertname: 'BenchAlert', runbook: 'cacheFailure' };
    writeFileSync(
      routesFile,
      JSON.stringify({ catalogDefaults: false, rules: [{ name: 'bench', match: { alertname: route.alertname }, runbook: route.runbook, target: { fromLabel: 'target' } }] }),
    );
    const receiverFile = path.join(dir, 'receiver.json');
    writeFileSync(
      receiverFile,
      JSON.stringify({
        listen: { host: '127.0.0.1', port },
        routesFile,
        stateDir: path.join(dir, 'receiver'),
        logLevel: 'warn',
        sources: { alertmanager: { bearerTokens: [{ value: token }] } },
        ...(opts.coalesceWindowMs !== undefined ? { lanes: { coalesceWindowMs: opts.coalesceWindowMs } } : {}),
      }),
    );
    receiver = node('src/receiver/main.ts', ['--config', receiverFile, '--engine-config', engineFile], {});
    receiverUrl = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 60_000;
    for (;;) {
      const ok = await fetch(`${receiverUrl}/healthz`).then((r) => r.ok, () => false);
      if (ok) break;
      if (Date.now() > deadline || receiver.exitCode !== null) throw new Error('bench receiver did not start');
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  return {
    run,
    dir,
    config,
    taskQueue,
    targets,
    token,
    client,
    worker,
    receiver,
    ...(receiverUrl ? { receiverUrl } : {}),
    workerRssMiB() {
      if (!worker?.pid) return Number.NaN;
      const status = readFileSync(`/proc/${worker.pid}/status`, 'utf8');
      const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 'NaN');
      return kb / 1024;
    },
    async postAlert(alertname, target, fingerprint) {
      const body = JSON.stringify({
        version: '4',
        groupKey: `{}:{target="${target}"}`,
        status: 'firing',
        receiver: 'remediation',
        groupLabels: { target },
        commonLabels: { alertname, target },
        commonAnnotations: {},
        externalURL: 'http://alertmanager',
        alerts: [{ status: 'firing', labels: { alertname, target }, annotations: {}, startsAt: new Date().toISOString(), fingerprint }],
      });
      const res = await fetch(`${receiverUrl}/alerts/alertmanager`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body,
      });
      await res.arrayBuffer();
      return res.status;
    },
    async stop() {
      await stopChild(receiver);
      // Whatever this run left open is ended, so the next run and the tests start clean.
      for await (const wf of client.workflow.list({ query: `TaskQueue = '${taskQueue}' AND ExecutionStatus = 'Running'` })) {
        await client.workflow.getHandle(wf.workflowId, wf.runId).terminate('benchmark finished').catch(() => undefined);
      }
      await stopChild(worker);
      await client.connection.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** CPU seconds (user + system) a process has used so far, from /proc; NaN if it is gone. */
export function cpuSeconds(pid: number | undefined): number {
  if (!pid) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/**
 * The Temporal server's pid: TEMPORAL_SERVER_PID, or as the script that started it recorded it (the
 * dev server's by scripts/stack.sh, the cluster server's by scripts/cluster.sh).
 */
export function temporalServerPid(): number | undefined {
  if (process.env.TEMPORAL_SERVER_PID) return Number(process.env.TEMPORAL_SERVER_PID) || undefined;
  const file = profile === 'cluster' ? 'temporal-cluster.pid' : 'temporal.pid';
  try {
    return Number(readFileSync(path.join(STACK_DIR, 'started', file), 'utf8').trim()) || undefined;
  } catch {
    return undefined;
  }
}
