/**
 * Test harness: the real engine worker on a unique task queue against the real Temporal dev server,
 * real containers (Podman's Docker API), real PostgreSQL and Redis of the drill target.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Docker from 'dockerode';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { loadConfig, type EngineConfig } from '../../src/config';
import { buildIncidentInput, type IncidentRequest } from '../../src/lib/incident-input';
import { createActivities, type Activities } from '../../src/activities';
import { connectionOptions } from '../../src/lib/temporal';
import { createEngineWorker, installRuntime } from '../../src/workers/worker';
import { budgetWorkflowId, guardWorkflowId, maintenanceWorkflowId, statusQuery, type IncidentInput, type IncidentPolicy, type IncidentRecord } from '../../src/workflows/contracts';
import { CODEC_FIXTURE, testDataConverter } from './codec';
import { testLogger } from './test-logs';

export type IncidentWorkflow = (input: IncidentInput) => Promise<IncidentRecord>;
export type IncidentHandle = WorkflowHandle<IncidentWorkflow>;

export const REPO = path.resolve(__dirname, '../..');
export const STACK_DIR = process.env.STACK_DIR ?? path.join(REPO, '.stack');
const BUNDLE = path.join(REPO, '.stack/build/test-workflow-bundle.js');

/** Short timings so escalation and verification finish within a test. */
export const TEST_POLICY: Partial<IncidentPolicy> = {
  tiers: [
    { name: 'tier-1 on-call', contacts: ['@on-call'], waitMs: 60_000 },
    { name: 'tier-2 senior', contacts: ['@platform-lead'], waitMs: 60_000 },
  ],
  verifyDeadlineMs: 60_000,
  cooldownMs: 0,
  lockWaitMs: 30_000,
  escalatedHoldMs: 3600_000,
  settleMs: 0,
  // Drills that are not about it are not held back by the action budget (kernel.test.ts gives a target one of 1).
  actionBudget: { maxActions: 1000, windowMs: 3600_000 },
};

export function testConfig(): EngineConfig {
  const cfg = loadConfig(path.join(REPO, 'config/engine.yaml'), { ...process.env, STACK_DIR });
  cfg.docker.socketPath = path.resolve(REPO, cfg.docker.socketPath);
  cfg.notify.file = path.join(STACK_DIR, 'test-notifications.jsonl');
  // The TEST-ONLY codec secrets (test/helpers/codec.ts): the tests' workers encrypt with its keys.
  cfg.codec.secretsFile = CODEC_FIXTURE;
  return cfg;
}

/**
 * The test configuration with the short timings of TEST_POLICY: the worker's own policy (a start
 * request carries none). Per target, runbook or severity, tests add `policy.overrides`.
 */
export function testEngineConfig(): EngineConfig {
  const cfg = testConfig();
  cfg.policy = { ...cfg.policy, ...TEST_POLICY };
  // Drills that are not about it resolve INC-05 on PONG, a write and the api's view of Redis: the
  // quiet drill serves no traffic to measure a hit rate by (test/workflows/cache-failure.test.ts
  // watches it with the runbook's parameter).
  const alfred = cfg.targets.alfred;
  if (alfred) alfred.limits.cacheRecoverySeconds = 0;
  return cfg;
}

export interface Engine {
  config: EngineConfig;
  client: Client;
  docker: Docker;
  taskQueue: string;
  worker: Worker;
  /** The real activities, bound to this engine's configuration (for tests that act on the drill directly). */
  activities: Activities;
  start(req: Omit<IncidentRequest, 'requestedBy'> & { requestedBy?: string; workflowId?: string }): Promise<IncidentHandle>;
  waitFor(h: IncidentHandle, pred: (r: IncidentRecord) => boolean, timeoutMs?: number): Promise<IncidentRecord>;
  /** The incident's final record; fails with its current state instead of hanging. */
  result(h: IncidentHandle, timeoutMs?: number): Promise<IncidentRecord>;
  /** A workflow started elsewhere (by a schedule, as an abandoned child): stopped and recorded like the others. */
  track(workflowId: string): IncidentHandle;
  stop(): Promise<void>;
}

/**
 * Starts a worker on its own task queue (or the one given, e.g. a test receiver's); extra targets
 * are added to the configuration (copies of `alfred` under another name). Call stop() in afterAll.
 */
export async function startEngine(
  opts: {
    taskQueue?: string;
    extraTargets?: string[];
    configure?: (cfg: EngineConfig) => void;
    /** Replaces some of the real activities, e.g. to hold one until the test has acted. */
    wrapActivities?: (real: Activities) => Partial<Activities>;
  } = {},
): Promise<Engine> {
  installRuntime();
  const config = testEngineConfig();
  opts.configure?.(config);
  for (const name of opts.extraTargets ?? []) config.targets[name] = config.targets.alfred as EngineConfig['targets'][string];
  const taskQueue = opts.taskQueue ?? `test-${randomUUID().slice(0, 8)}`;
  config.temporal.taskQueue = taskQueue;
  // As the engine connects: with the configured TLS (the cluster profile's client certificate).
  const connection = await NativeConnection.connect(connectionOptions(config));
  const clientConn = await Connection.connect(connectionOptions(config));
  // Decisions that name a person arrive sealed as that person; every payload is encrypted.
  const client = new Client({ connection: clientConn, namespace: config.temporal.namespace, dataConverter: testDataConverter() });
  const docker = new Docker({ socketPath: config.docker.socketPath });
  // The worker's logs go where the secrets scan reads them (.stack/logs/test-worker.log).
  const logger = testLogger('worker');
  await clearGuards(client);
  // The real socket, even when a test configures the engine with a broken one.
  await ensureDrillRunning(new Docker({ socketPath: testConfig().docker.socketPath }));
  const activities = createActivities({ config, docker, client, logger });
  // The worker users run: the engine's codec with the keys of config.codec.secretsFile (the fixture's).
  const worker = await createEngineWorker({
    config,
    connection,
    client,
    logger,
    taskQueue,
    docker,
    workflowBundle: { codePath: BUNDLE },
    activities: opts.wrapActivities ? { ...activities, ...opts.wrapActivities(activities) } : activities,
  });
  const running = worker.run();
  const started: IncidentHandle[] = [];

  return {
    config,
    client,
    docker,
    taskQueue,
    worker,
    activities,
    async start(req) {
      const { runbook, input } = buildIncidentInput(config, { requestedBy: 'test-requester', ...req });
      const h = await client.workflow.start<IncidentWorkflow>(runbook, {
        taskQueue,
        workflowId: req.workflowId ?? `test-${runbook}-${randomUUID().slice(0, 8)}`,
        args: [input],
      });
      started.push(h);
      return h;
    },
    async waitFor(h, pred, timeoutMs = 90_000) {
      const deadline = Date.now() + timeoutMs;
      let last: IncidentRecord | undefined;
      while (Date.now() < deadline) {
        try {
          last = await h.query(statusQuery);
          if (pred(last)) return last;
        } catch {
          /* not started yet */
        }
        await new Promise((r) => setTimeout(r, 250));
      }
      throw new Error(`condition not reached in ${timeoutMs} ms; last state: ${JSON.stringify(last, null, 1)?.slice(0, 3000)}`);
    },
    async result(h, timeoutMs = 120_000) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          h.query(statusQuery)
            .then((st) => reject(new Error(`${h.workflowId} did not finish in ${timeoutMs} ms: ${JSON.stringify(st, null, 1).slice(0, 4000)}`)))
            .catch((err: unknown) => reject(new Error(`${h.workflowId} did not finish in ${timeoutMs} ms (${String(err)})`)));
        }, timeoutMs);
      });
      try {
        return await Promise.race([h.result(), timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
    track(workflowId) {
      const h = client.workflow.getHandle<IncidentWorkflow>(workflowId);
      started.push(h);
      return h;
    },
    async stop() {
      for (const h of started) {
        try {
          const d = await h.describe();
          if (d.status.name === 'RUNNING') await h.terminate('test finished');
        } catch {
          /* already gone */
        }
      }
      // Guards, budget and maintenance keepers started on this test's task queue would outlive its worker: end them.
      // (Every resource: containers, and the others runbooks lock, such as child:<runbook> or api-keys.)
      const guards = `WorkflowType IN ('targetGuard', 'actionBudget', 'maintenanceWindows') AND ExecutionStatus = 'Running' AND TaskQueue = '${taskQueue}'`;
      for await (const wf of client.workflow.list({ query: guards })) {
        await client.workflow
          .getHandle(wf.workflowId, wf.runId)
          .terminate('test finished')
          .catch(() => undefined);
      }
      if (process.env.RECORD_HISTORIES) {
        await recordHistories(client, [...started.map((h) => h.workflowId), ...Object.keys(config.targets).flatMap((t) => [budgetWorkflowId(t), maintenanceWorkflowId(t)])], taskQueue);
      }
      worker.shutdown();
      await running;
      await connection.close();
      await clientConn.close();
    },
  };
}

/**
 * A guard (or an action budget keeper) left running by a worker that is gone (another test run, a
 * stopped demo) would never grant its lock or answer: end every running one before a test engine
 * starts using them. (A test file's budget counts from zero.)
 */
export async function clearGuards(client: Client): Promise<void> {
  for await (const wf of client.workflow.list({ query: "WorkflowType IN ('targetGuard', 'actionBudget') AND ExecutionStatus = 'Running'" })) {
    await client.workflow
      .getHandle(wf.workflowId, wf.runId)
      .terminate('test engine starting')
      .catch(() => undefined);
  }
}

export function temporalBin(): string {
  if (process.env.TEMPORAL_BIN) return process.env.TEMPORAL_BIN;
  const gopath = execFileSync('go', ['env', 'GOPATH']).toString().trim();
  return path.join(gopath, 'bin/temporal');
}

/**
 * With RECORD_HISTORIES=1, keeps one history per workflow type and outcome in test/histories/ for
 * the replay test (determinism of every workflow type is checked in CI against these).
 */
export async function recordHistories(client: Client, ids: string[], taskQueue: string): Promise<void> {
  const dir = path.join(REPO, 'test/histories');
  mkdirSync(dir, { recursive: true });
  const guardIds = ['api', 'worker', 'db', 'redis', 'proxy'].map((r) => guardWorkflowId('alfred', r));
  for (const id of [...ids, ...guardIds]) {
    try {
      const h = client.workflow.getHandle(id);
      const d = await h.describe();
      if (d.taskQueue !== taskQueue || d.status.name === 'RUNNING' || d.status.name === 'FAILED') continue;
      let label = d.status.name.toLowerCase();
      if (d.status.name === 'COMPLETED' && d.type !== 'targetGuard' && d.type !== 'actionBudget' && d.type !== 'maintenanceWindows') label = String(((await h.result()) as IncidentRecord).outcome);
      // RECORD_HISTORIES_SUFFIX keeps a second history of a type next to an older one (e.g. after a patch).
      const file = path.join(dir, `${d.type}.${label}${process.env.RECORD_HISTORIES_SUFFIX ?? ''}.json`);
      if (existsSync(file)) continue;
      // The CLI writes the JSON form that historyFromJSON reads back.
      const json = execFileSync(temporalBin(), ['workflow', 'show', '-w', id, '-r', d.runId, '-o', 'json', '--address', '127.0.0.1:7233']);
      writeFileSync(file, json);
      // Replay must use the original workflow id: the kernel derives lock request ids from it.
      const index = path.join(dir, 'workflow-ids.json');
      const ids: Record<string, string> = existsSync(index) ? (JSON.parse(readFileSync(index, 'utf8')) as Record<string, string>) : {};
      ids[path.basename(file)] = id;
      writeFileSync(index, `${JSON.stringify(ids, null, 1)}\n`);
    } catch {
      /* not recordable */
    }
  }
}

/**
 * A test file that stopped a drill container and failed before restoring it would break every file
 * after it: each engine starts on a drill whose containers all run (and says which one it restarted).
 */
async function ensureDrillRunning(docker: Docker): Promise<void> {
  const list = await docker.listContainers({ all: true, filters: { label: ['com.docker.compose.project=alfred'] } });
  const stopped = list.filter((c) => c.State !== 'running' && !c.Names.some((n) => /-replaced-|alfred-worker-\d+$/.test(n)));
  if (stopped.length === 0) return;
  for (const c of stopped) {
    console.warn(`drill container ${c.Names.join(',')} was ${c.State}: a previous test left it so; starting it`);
    await docker.getContainer(c.Id).start().catch(() => undefined);
  }
  await waitUntil('the drill api healthy again', async () => {
    const res = await fetch('http://127.0.0.1:58000/health', { signal: AbortSignal.timeout(2000) });
    return res.ok;
  });
}

/** Finds a drill container by component label. */
export async function drillContainer(docker: Docker, component: string): Promise<Docker.Container> {
  const list = await docker.listContainers({ all: true, filters: { label: ['com.docker.compose.project=alfred', `com.docker.compose.service=${component}`] } });
  const live = list.filter((c) => !c.Names.some((n) => /-replaced-/.test(n)) && !c.Labels?.['remediation.replica']);
  const c = live[0] ?? list[0];
  if (!c) throw new Error(`no drill container for ${component}`);
  return docker.getContainer(c.Id);
}

export async function waitUntil(what: string, fn: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if (await fn()) return;
    } catch {
      /* keep polling */
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`timed out waiting for ${what}`);
}
