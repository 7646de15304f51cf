/**
 * The engine's worker as a process of its own, started as `npm run worker` starts it (same node
 * flags and environment), for tests that SIGKILL it mid-incident and start another, or that run two
 * builds of it side by side as versions of a worker deployment.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { EngineConfig } from '../../src/config';
import { REPO, STACK_DIR, testEngineConfig, waitUntil } from './engine';
import { testLogFile } from './test-logs';

export interface WorkerProcess {
  /** The process id: the worker's Temporal identity is `<pid>@<host>`. */
  pid: number;
  /** SIGKILLs the worker at once: no graceful shutdown, in-flight activities are lost mid-way. */
  kill(): void;
  /** SIGTERM, as a supervisor stops it: resolves with its exit code once it has shut down. */
  stop(): Promise<number | null>;
  /** Whether the process still runs. */
  running(): boolean;
}

export interface WorkerProcessOptions {
  taskQueue: string;
  metricsPort: number;
  /** Runs as this version of a worker deployment (`worker.deployment`). */
  deployment?: NonNullable<EngineConfig['worker']['deployment']>;
  /**
   * Changes the worker's configuration, e.g. `onCluster` (test/helpers/cluster.ts) points it at the
   * cluster profile: its address, namespace and mTLS files, written into the worker's config file.
   */
  configure?: (cfg: EngineConfig) => void;
}

export async function startWorkerProcess(opts: WorkerProcessOptions): Promise<WorkerProcess> {
  // The worker owns the incident policy: it reads the tests' short timings from its configuration
  // (JSON is YAML: the engine's own loader reads it back, secret references stay references). One file
  // per worker: workers of one task queue differ in their metrics address (and build id).
  const config = path.join(STACK_DIR, 'build', `worker-${opts.taskQueue}-${opts.metricsPort}${opts.deployment ? `-${opts.deployment.buildId}` : ''}.json`);
  mkdirSync(path.dirname(config), { recursive: true });
  const cfg = testEngineConfig();
  cfg.temporal.taskQueue = opts.taskQueue;
  cfg.worker.metricsAddress = `127.0.0.1:${opts.metricsPort}`;
  if (opts.deployment) cfg.worker.deployment = opts.deployment;
  opts.configure?.(cfg);
  writeFileSync(config, JSON.stringify(cfg));
  // Its output is appended to the test worker log, which the secrets scan reads.
  const out = openSync(testLogFile('worker'), 'a');
  let child: ChildProcess | undefined = spawn(process.execPath, ['--optimize-for-size', '--import', 'tsx', 'src/workers/main.ts'], {
    cwd: REPO,
    env: {
      ...process.env,
      MALLOC_ARENA_MAX: '2',
      STACK_DIR,
      ENGINE_CONFIG: config,
      TEMPORAL_TASK_QUEUE: opts.taskQueue,
      TEMPORAL_ADDRESS: cfg.temporal.address,
      WORKER_METRICS_ADDRESS: `127.0.0.1:${opts.metricsPort}`,
      WORKFLOW_BUNDLE: path.join(REPO, '.stack/build/test-workflow-bundle.js'),
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', out, out],
    detached: true,
  });
  closeSync(out);
  const pid = child.pid ?? 0;
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) =>
    child?.once('exit', (code) => {
      exitCode = code;
      resolve(code);
    }),
  );
  await waitUntil('worker metrics', async () => (await fetch(`http://127.0.0.1:${opts.metricsPort}/metrics`)).ok, 60_000);
  return {
    pid,
    kill() {
      // The whole process group, in case anything runs under the worker.
      if (child?.pid) process.kill(-child.pid, 'SIGKILL');
      child = undefined;
    },
    async stop() {
      if (child?.pid && exitCode === undefined) process.kill(child.pid, 'SIGTERM');
      child = undefined;
      return exited;
    },
    running: () => exitCode === undefined,
  };
}
