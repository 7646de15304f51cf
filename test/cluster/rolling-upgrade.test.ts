/**
 * A rolling upgrade while an incident waits for approval, on the cluster profile (scripts/cluster.sh:
 * the Temporal server on PostgreSQL, its frontend behind mTLS) with the engine's worker as real
 * processes of two builds (docs/production.md, "Upgrading without stopping incidents"):
 *
 * 1. Build v1 is the current version of the worker deployment. A killed Redis is restarted by an
 *    incident on v1, which starts the target's keepers (its guard and its action budget) on v1. Then
 *    Redis fills up: that incident waits for approval to evict, pinned to v1.
 * 2. Build v2 polls beside it, and `scripts/rollout.ts promote v2` makes it current: the keepers move
 *    to v2, the waiting incident stays on v1 (v1 is draining, held by it), a new incident runs on v2.
 * 3. The waiting incident is approved (sealed as alice) while v1 still runs; it evicts and resolves on
 *    v1 (every workflow task and the eviction itself ran there), taking its lock and budget from the
 *    keepers now on v2. Then `rollout.ts status v1` says nothing holds v1, and v1 stops.
 *
 * Everything reaches the cluster as an operator does after `eval "$(scripts/cluster.sh env)"`: the
 * workers, rollout.ts and the temporal CLI read the cluster's TEMPORAL_* variables, mTLS included.
 * The cluster's dynamic config re-checks a draining version every second (Temporal's default is
 * every 3 minutes), so `drained` comes within seconds. Its database outlives the run: the deployment
 * and the task queue are the run's own, and deployments of earlier runs are deleted.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { buildIncidentInput, type IncidentRequest } from '../../src/lib/incident-input';
import { connectionOptions } from '../../src/lib/temporal';
import {
  approveSignal,
  budgetWorkflowId,
  guardWorkflowId,
  statusQuery,
  type IncidentRecord,
} from '../../src/workflows/contracts';
import { CLUSTER_UP_TIMEOUT_MS, clusterEnv, clusterUp, onCluster } from '../helpers/cluster';
import { testDataConverter } from '../helpers/codec';
import { fillRedis, freePort, health, redisUp, unfillRedis } from '../helpers/drill';
import {
  clearGuards,
  drillContainer,
  REPO,
  STACK_DIR,
  temporalBin,
  testConfig,
  testEngineConfig,
  waitUntil,
  type IncidentWorkflow,
} from '../helpers/engine';
import { startWorkerProcess, type WorkerProcess } from '../helpers/worker-process';
import { terminateRun } from '../receiver/helpers';

jest.setTimeout(180_000);

const run = promisify(execFile);
const { VERSIONING_BEHAVIOR_PINNED } = temporal.api.enums.v1.VersioningBehavior;

/** The run's own worker deployment and task queue: nothing of an earlier run is counted or moved. */
const DEPLOYMENT_PREFIX = 'upgrade-test-';
const deployment = `${DEPLOYMENT_PREFIX}${randomUUID().slice(0, 8)}`;
const taskQueue = `upgrade-${randomUUID().slice(0, 8)}`;
const FILL = 'alfred:cache:test-upgrade:';
/**
 * A namespace holds at most 100 worker deployments (`matching.maxDeployments`). A version can be
 * deleted only once the server has forgotten its pollers (`matching.PollerHistoryTTL`, 5 minutes),
 * so a run deletes those of earlier runs, not its own.
 */
const RETIRE_AFTER_MS = 15 * 60_000;

let connection: Connection;
let client: Client;
let namespace: string;
const docker = new Docker({ socketPath: testConfig().docker.socketPath });
const workers: Partial<Record<'v1' | 'v2', WorkerProcess>> = {};

async function healRedis(): Promise<void> {
  const c = await drillContainer(docker, 'redis');
  if (!(await c.inspect()).State.Running) await c.start();
  await waitUntil('redis up', redisUp);
  await unfillRedis(FILL);
  await waitUntil('api sees redis', async () => (await health())?.redis === 'healthy');
}

/** Deletes the deployments earlier runs left (their workers stopped long ago): routing off, versions, deployment. */
async function retireEarlierDeployments(): Promise<void> {
  const svc = connection.workflowService;
  const identity = 'remediation-engine tests (rolling upgrade)';
  const old: string[] = [];
  let nextPageToken: Uint8Array | undefined;
  do {
    const page = await svc.listWorkerDeployments({ namespace, nextPageToken });
    for (const d of page.workerDeployments ?? []) {
      const created = Number(d.createTime?.seconds ?? 0) * 1000;
      if (d.name?.startsWith(DEPLOYMENT_PREFIX) && created < Date.now() - RETIRE_AFTER_MS) old.push(d.name);
    }
    nextPageToken = page.nextPageToken?.length ? page.nextPageToken : undefined;
  } while (nextPageToken);
  for (const deploymentName of old) {
    try {
      // An empty build id makes unversioned workers current: no version is current any more.
      await svc.setWorkerDeploymentCurrentVersion({ namespace, deploymentName, buildId: '', identity });
      const info = (await svc.describeWorkerDeployment({ namespace, deploymentName })).workerDeploymentInfo;
      for (const v of info?.versionSummaries ?? []) {
        await svc.deleteWorkerDeploymentVersion({
          namespace,
          deploymentVersion: v.deploymentVersion,
          skipDrainage: true,
          identity,
        });
      }
      await svc.deleteWorkerDeployment({ namespace, deploymentName, identity });
    } catch (err) {
      // Left for a later run (e.g. its pollers are still remembered); this run does not depend on it.
      console.warn(`could not delete worker deployment ${deploymentName}: ${(err as Error).message}`);
    }
  }
}

beforeAll(async () => {
  await Promise.all([clusterUp(), healRedis()]);
  const cfg = testConfig();
  onCluster(cfg);
  namespace = cfg.temporal.namespace;
  connection = await Connection.connect(connectionOptions(cfg));
  client = new Client({ connection, namespace, dataConverter: testDataConverter() });
  // The keepers of alfred's redis must start on this run's workers (another file's may still run).
  await clearGuards(client);
  await retireEarlierDeployments();
}, CLUSTER_UP_TIMEOUT_MS);

afterAll(async () => {
  for (const w of Object.values(workers)) w?.kill();
  if (client) {
    await terminateRun(client, taskQueue);
    await clearGuards(client);
  }
  await healRedis();
  await connection?.close();
});

function startWorker(buildId: 'v1' | 'v2'): Promise<WorkerProcess> {
  return freePort().then((metricsPort) =>
    startWorkerProcess({
      taskQueue,
      metricsPort,
      deployment: { name: deployment, buildId, defaultBehavior: 'pinned' },
      configure: onCluster,
    }),
  );
}

/** The environment of an operator's shell after `eval "$(scripts/cluster.sh env)"`. */
function operatorEnv(): NodeJS.ProcessEnv {
  return { ...process.env, STACK_DIR, ...clusterEnv(), WORKER_DEPLOYMENT_NAME: deployment };
}

/** The temporal CLI as docs/production.md runs it: address, namespace and mTLS from the environment. */
async function temporalCli(...args: string[]): Promise<string> {
  return (await run(temporalBin(), args, { env: operatorEnv() })).stdout;
}

/** scripts/rollout.ts as an operator runs it, configured by the engine's config and the environment. */
async function rollout(...args: string[]): Promise<{ code: number; out: Record<string, unknown>; text: string }> {
  try {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'scripts/rollout.ts', ...args, '--json'], {
      cwd: REPO,
      env: { ...operatorEnv(), ENGINE_CONFIG: 'config/engine.yaml' },
    });
    return { code: 0, out: JSON.parse(stdout) as Record<string, unknown>, text: stdout };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw err;
    return {
      code: e.code,
      out: e.stdout ? (JSON.parse(e.stdout) as Record<string, unknown>) : {},
      text: `${e.stdout ?? ''}${e.stderr ?? ''}`,
    };
  }
}

async function startIncident(req: Omit<IncidentRequest, 'requestedBy'>): Promise<WorkflowHandle<IncidentWorkflow>> {
  const { runbook, input } = buildIncidentInput(testEngineConfig(), { requestedBy: 'alertmanager', ...req });
  return client.workflow.start<IncidentWorkflow>(runbook, {
    taskQueue,
    workflowId: `upgrade-${runbook}-${randomUUID().slice(0, 8)}`,
    args: [input],
  });
}

async function waitForState(
  h: WorkflowHandle<IncidentWorkflow>,
  pred: (r: IncidentRecord) => boolean,
): Promise<IncidentRecord> {
  let last: IncidentRecord | undefined;
  await waitUntil(
    `${h.workflowId} in the awaited state`,
    async () => pred((last = await h.query(statusQuery))),
    60_000,
  );
  return last as IncidentRecord;
}

/** The build id of the worker that completed each workflow task of the workflow's current run. */
async function taskBuilds(workflowId: string): Promise<string[]> {
  const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  return events.flatMap((e) =>
    e.workflowTaskCompletedEventAttributes
      ? [e.workflowTaskCompletedEventAttributes.deploymentVersion?.buildId ?? 'unversioned']
      : [],
  );
}

async function versioningOf(workflowId: string) {
  const d = await client.workflow.getHandle(workflowId).describe();
  const v = d.raw.workflowExecutionInfo?.versioningInfo;
  return {
    behavior: v?.behavior,
    buildId: v?.deploymentVersion?.buildId,
    autoUpgradeOverride: v?.versioningOverride?.autoUpgrade === true,
  };
}

test('an incident waiting for approval finishes on the build it started on, while new incidents and the keepers move to the new build', async () => {
  // ---- v1 is current
  [workers.v1, workers.v2] = await Promise.all([startWorker('v1'), startWorker('v2')]);
  // The documented first step: the version exists once its workers have polled.
  await waitUntil(
    'v1 current',
    async () =>
      /Successfully set/.test(
        await temporalCli(
          'worker',
          'deployment',
          'set-current-version',
          '--deployment-name',
          deployment,
          '--build-id',
          'v1',
          '--yes',
        ),
      ),
    30_000,
  );
  const described = JSON.parse(
    await temporalCli('worker', 'deployment', 'describe', '--name', deployment, '-o', 'json'),
  ) as { routingConfig: { currentVersionBuildID: string } };
  expect(described.routingConfig.currentVersionBuildID).toBe('v1');

  // An incident on v1 that acts: the keepers of alfred's redis start on v1.
  const redis = await drillContainer(docker, 'redis');
  await redis.kill();
  await waitUntil('redis down', async () => !(await redisUp()));
  const restart = await startIncident({ runbook: 'cacheFailure', target: 'alfred' });
  const restarted = await restart.result();
  expect(restarted.outcome).toBe('resolved');
  expect(restarted.actions).toEqual([expect.objectContaining({ stepId: 'restart-redis', state: 'done' })]);
  const keepers = [guardWorkflowId('alfred', 'redis'), budgetWorkflowId('alfred')];
  for (const id of keepers)
    expect(await versioningOf(id)).toEqual({
      behavior: VERSIONING_BEHAVIOR_PINNED,
      buildId: 'v1',
      autoUpgradeOverride: false,
    });
  await waitUntil('api sees redis', async () => (await health())?.redis === 'healthy');

  // Redis fills up: this incident waits for a person, pinned to v1.
  await fillRedis(FILL);
  const waiting = await startIncident({ runbook: 'cacheFailure', target: 'alfred' });
  await waitForState(waiting, (s) => s.pending.some((p) => p.stepId === 'evict-cache'));
  expect(await versioningOf(waiting.workflowId)).toEqual({
    behavior: VERSIONING_BEHAVIOR_PINNED,
    buildId: 'v1',
    autoUpgradeOverride: false,
  });

  // ---- v2 becomes current
  const promoted = await rollout('promote', 'v2');
  expect(promoted).toMatchObject({ code: 0, out: { deployment, current: 'v2', previous: 'v1' } });
  expect((promoted.out.movedKeepers as { workflowId: string }[]).map((k) => k.workflowId).sort()).toEqual(
    [...keepers].sort(),
  );
  for (const id of keepers) expect(await versioningOf(id)).toMatchObject({ autoUpgradeOverride: true });
  // The waiting incident holds v1: it is draining, not drained.
  // (Visibility takes a moment to show the keepers' overrides: until then they count as pinned too.)
  let draining: Awaited<ReturnType<typeof rollout>> | undefined;
  await waitUntil(
    'only the waiting incident on v1',
    async () => (draining = await rollout('status', 'v1')).out.pinned === 1,
    10_000,
  ).catch(() => undefined);
  expect(draining).toMatchObject({
    code: 1,
    out: {
      status: 'draining',
      pinned: 1,
      inUse: true,
      workflows: [{ workflowId: waiting.workflowId, type: 'cacheFailure' }],
    },
  });
  expect(await versioningOf(waiting.workflowId)).toEqual({
    behavior: VERSIONING_BEHAVIOR_PINNED,
    buildId: 'v1',
    autoUpgradeOverride: false,
  });

  // A new incident runs on v2 (a dry run: Redis is still full, the plan is written down).
  const fresh = await startIncident({ runbook: 'cacheFailure', target: 'alfred', dryRun: true });
  const planned = await fresh.result();
  expect(planned.outcome).toBe('dry-run');
  expect(planned.actions.map((a) => [a.stepId, a.state])).toEqual([
    ['evict-cache', 'would-do'],
    ['raise-maxmemory', 'would-do'],
  ]);
  expect(new Set(await taskBuilds(fresh.workflowId))).toEqual(new Set(['v2']));

  // ---- the waiting incident is approved while v1 still runs, and finishes there
  expect(workers.v1.running()).toBe(true);
  await waiting.signal(approveSignal, {
    incidentId: waiting.workflowId,
    stepId: 'evict-cache',
    approver: 'alice',
    comment: 'evict during the upgrade',
  });
  const done = await waiting.result();
  const resolvedAt = Date.now();
  expect(done.outcome).toBe('resolved');
  expect(done.actions.find((a) => a.stepId === 'evict-cache')).toMatchObject({ state: 'done', approvals: ['alice'] });
  expect(new Set(await taskBuilds(waiting.workflowId))).toEqual(new Set(['v1']));
  // The eviction itself ran on v1's worker (the identity of a worker is <pid>@<host>).
  const events = (await waiting.fetchHistory()).events ?? [];
  const evict = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'unlinkByPattern');
  const evictStarted = events.find(
    (e) => e.activityTaskStartedEventAttributes?.scheduledEventId?.toString() === evict?.eventId?.toString(),
  );
  expect(evictStarted?.activityTaskStartedEventAttributes?.identity).toMatch(new RegExp(`^${workers.v1.pid}@`));
  // The lock and the budget came from the keepers, now on v2.
  for (const id of keepers) {
    const builds = await taskBuilds(id);
    expect([builds[0], builds.at(-1)]).toEqual(['v1', 'v2']);
  }

  // ---- nothing holds v1 any more: it is drained, and its worker stops
  let drained: Awaited<ReturnType<typeof rollout>> | undefined;
  await waitUntil('v1 drained', async () => (drained = await rollout('status', 'v1')).code === 0, 30_000);
  expect(drained).toMatchObject({ code: 0, out: { status: 'drained', pinned: 0, inUse: false } });
  console.log(
    `rolling upgrade on the cluster (${deployment}): v1 drained ${((Date.now() - resolvedAt) / 1000).toFixed(1)} s after its last incident resolved`,
  );
  expect(await workers.v1.stop()).toBe(0);
  const current = await rollout('status');
  expect(current.out).toMatchObject({
    current: 'v2',
    versions: expect.arrayContaining([
      { buildId: 'v1', status: 'drained' },
      { buildId: 'v2', status: 'current' },
    ]),
  });
});
