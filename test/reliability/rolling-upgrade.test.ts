/**
 * A rolling upgrade while an incident waits for approval, on a real Temporal server with the engine's
 * worker as real processes of two builds (docs/production.md, "Upgrading without stopping incidents"):
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
 * The server is the test's own dev server (test/helpers/temporal-dev-server.ts), because Temporal
 * refreshes a version's drainage status only every 3 minutes by default (see DRAIN_FAST), and so that
 * the deployment and its versions do not pile up in the shared server's database.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { buildIncidentInput, type IncidentRequest } from '../../src/lib/incident-input';
import {
  approveSignal,
  budgetWorkflowId,
  guardWorkflowId,
  statusQuery,
  type IncidentRecord,
} from '../../src/workflows/contracts';
import { testDataConverter } from '../helpers/codec';
import { fillRedis, freePort, health, redisUp, unfillRedis } from '../helpers/drill';
import {
  drillContainer,
  REPO,
  STACK_DIR,
  temporalBin,
  testConfig,
  testEngineConfig,
  waitUntil,
  type IncidentWorkflow,
} from '../helpers/engine';
import { startDevServer, type DevServer } from '../helpers/temporal-dev-server';
import { startWorkerProcess, type WorkerProcess } from '../helpers/worker-process';

jest.setTimeout(180_000);

const run = promisify(execFile);
const { VERSIONING_BEHAVIOR_PINNED } = temporal.api.enums.v1.VersioningBehavior;

/**
 * Dynamic config of the test's server: a version no longer current is re-checked for open pinned
 * workflows every second (default 3 minutes), after a grace period of a second for visibility to
 * catch up (default 3 minutes). Worker deployments themselves need nothing: server 1.29 has them on.
 */
const DRAIN_FAST = {
  'matching.wv.VersionDrainageStatusRefreshInterval': '1s',
  'matching.wv.VersionDrainageStatusVisibilityGracePeriod': '1s',
};
const DEPLOYMENT = 'remediation-engine';
const FILL = 'alfred:cache:test-upgrade:';

let server: DevServer;
let connection: Connection;
let client: Client;
const docker = new Docker({ socketPath: testConfig().docker.socketPath });
const taskQueue = `upgrade-${randomUUID().slice(0, 8)}`;
const workers: Partial<Record<'v1' | 'v2', WorkerProcess>> = {};

async function healRedis(): Promise<void> {
  const c = await drillContainer(docker, 'redis');
  if (!(await c.inspect()).State.Running) await c.start();
  await waitUntil('redis up', redisUp);
  await unfillRedis(FILL);
  await waitUntil('api sees redis', async () => (await health())?.redis === 'healthy');
}

beforeAll(async () => {
  const [srv] = await Promise.all([startDevServer({ dynamicConfig: DRAIN_FAST }), healRedis()]);
  server = srv;
  connection = await Connection.connect({ address: server.address });
  client = new Client({ connection, dataConverter: testDataConverter() });
});

afterAll(async () => {
  for (const w of Object.values(workers)) w?.kill();
  await healRedis();
  await connection?.close();
  await server?.stop();
});

function startWorker(buildId: 'v1' | 'v2'): Promise<WorkerProcess> {
  return freePort().then((metricsPort) =>
    startWorkerProcess({
      taskQueue,
      metricsPort,
      address: server.address,
      deployment: { name: DEPLOYMENT, buildId, defaultBehavior: 'pinned' },
    }),
  );
}

/** The temporal CLI against the test's server, as docs/production.md runs it. */
async function temporalCli(...args: string[]): Promise<string> {
  return (await run(temporalBin(), [...args, '--address', server.address])).stdout;
}

/** scripts/rollout.ts as an operator runs it, configured by the engine's config and the environment. */
async function rollout(...args: string[]): Promise<{ code: number; out: Record<string, unknown>; text: string }> {
  try {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'scripts/rollout.ts', ...args, '--json'], {
      cwd: REPO,
      env: { ...process.env, STACK_DIR, TEMPORAL_ADDRESS: server.address, ENGINE_CONFIG: 'config/engine.yaml' },
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
          DEPLOYMENT,
          '--build-id',
          'v1',
          '--yes',
        ),
      ),
    30_000,
  );
  const described = JSON.parse(
    await temporalCli('worker', 'deployment', 'describe', '--name', DEPLOYMENT, '-o', 'json'),
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
  expect(promoted).toMatchObject({ code: 0, out: { deployment: DEPLOYMENT, current: 'v2', previous: 'v1' } });
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
