/**
 * Two engine workers, processes of their own, poll the same task queue on the cluster profile. An
 * INC-05 restarts the killed Redis; the worker running that restart is SIGKILLed in the middle of it
 * and never comes back. The other worker takes the incident over: it retries the restart once the
 * lost attempt's start-to-close timeout passes, verifies and resolves. The history shows the
 * handover (the completed attempt is the next one, completed by the surviving worker), and the
 * Docker host's own event log shows Redis started exactly once.
 */
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import Docker from 'dockerode';
import { buildIncidentInput } from '../../src/lib/incident-input';
import { connectionOptions } from '../../src/lib/temporal';
import { clearGuards, drillContainer, testConfig, waitUntil, type IncidentWorkflow } from '../helpers/engine';
import { freePort, health, redisUp } from '../helpers/drill';
import { startWorkerProcess, type WorkerProcess } from '../helpers/worker-process';
import { testDataConverter } from '../helpers/codec';
import { startsSince } from '../helpers/podman-events';
import { CLUSTER_UP_TIMEOUT_MS, clusterUp, onCluster } from '../helpers/cluster';
import { terminateRun } from '../receiver/helpers';

jest.setTimeout(180_000);

const RESTART = 'restartContainer';
const { PENDING_ACTIVITY_STATE_STARTED } = temporal.api.enums.v1.PendingActivityState;
const { TIMEOUT_TYPE_START_TO_CLOSE } = temporal.api.enums.v1.TimeoutType;

const taskQueue = `cluster-failover-${randomUUID().slice(0, 8)}`;
const docker = new Docker({ socketPath: testConfig().docker.socketPath });
let connection: Connection;
let client: Client;
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  await clusterUp();
  const cfg = testConfig();
  onCluster(cfg);
  connection = await Connection.connect(connectionOptions(cfg));
  client = new Client({ connection, namespace: cfg.temporal.namespace, dataConverter: testDataConverter() });
  await clearGuards(client);
  // Two metrics ports (freePort may hand out the same one twice in a row).
  const ports = [await freePort()];
  while (ports.length < 2) {
    const p = await freePort();
    if (!ports.includes(p)) ports.push(p);
  }
  workers.push(
    ...(await Promise.all(
      ports.map((metricsPort) => startWorkerProcess({ taskQueue, metricsPort, configure: onCluster })),
    )),
  );
}, CLUSTER_UP_TIMEOUT_MS);

afterAll(async () => {
  for (const w of workers) w.kill();
  if (client) {
    await terminateRun(client, taskQueue);
    await clearGuards(client);
  }
  const redis = await drillContainer(docker, 'redis');
  if (!(await redis.inspect()).State.Running) await redis.start();
  await waitUntil('redis back', redisUp);
  await connection?.close();
});

test('a worker SIGKILLed in the middle of a restart for good: the other worker finishes the incident, the restart happens once', async () => {
  const since = Date.now();
  const redis = await drillContainer(docker, 'redis');
  await redis.kill();
  await waitUntil('redis down', async () => !(await redisUp()));

  const { input } = buildIncidentInput(testConfig(), {
    runbook: 'cacheFailure',
    target: 'alfred',
    requestedBy: 'failover-test',
  });
  const h = await client.workflow.start<IncidentWorkflow>('cacheFailure', {
    taskQueue,
    workflowId: `cluster-failover-${randomUUID().slice(0, 8)}`,
    args: [input],
  });

  // Watch the incident and kill whichever worker the restart attempt runs on, the moment it runs.
  let killed: { worker: WorkerProcess; identity: string; attempt: number } | undefined;
  const deadline = Date.now() + 60_000;
  while (!killed && Date.now() < deadline) {
    const d = await h.describe();
    const p = d.raw.pendingActivities?.find(
      (a) => a.activityType?.name === RESTART && a.state === PENDING_ACTIVITY_STATE_STARTED,
    );
    const worker = p && workers.find((w) => (p.lastWorkerIdentity ?? '').startsWith(`${w.pid}@`));
    if (p && worker) {
      worker.kill();
      killed = { worker, identity: p.lastWorkerIdentity ?? '', attempt: p.attempt ?? 0 };
    }
    if (d.status.name !== 'RUNNING') break;
  }
  if (!killed) throw new Error(`no ${RESTART} attempt was seen running on either worker, so no kill landed`);
  const kill = killed;
  const survivor = workers.find((w) => w !== kill.worker) as WorkerProcess;

  const rec = await h.result();
  expect(rec.outcome).toBe('resolved');
  expect(rec.actions).toEqual([expect.objectContaining({ stepId: 'restart-redis', state: 'done' })]);
  expect((await redis.inspect()).State.Running).toBe(true);

  // The history: the lost attempt ended by its start-to-close timeout, the next one completed on the survivor.
  const events = (await h.fetchHistory()).events ?? [];
  const scheduled = events
    .find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === RESTART)
    ?.eventId?.toString();
  const started = events.find(
    (e) => e.activityTaskStartedEventAttributes?.scheduledEventId?.toString() === scheduled,
  )?.activityTaskStartedEventAttributes;
  const completed = events.find(
    (e) => e.activityTaskCompletedEventAttributes?.scheduledEventId?.toString() === scheduled,
  )?.activityTaskCompletedEventAttributes;
  expect({
    attempt: started?.attempt,
    previousTimedOut: started?.lastFailure?.timeoutFailureInfo?.timeoutType === TIMEOUT_TYPE_START_TO_CLOSE,
  }).toEqual({ attempt: kill.attempt + 1, previousTimedOut: true });
  expect(completed?.identity).toMatch(new RegExp(`^${survivor.pid}@`));
  expect(completed?.identity).not.toBe(kill.identity);
  // Every workflow task after the kill ran on the survivor too: the killed worker completed none.
  const lastTask = events
    .filter((e) => e.workflowTaskCompletedEventAttributes)
    .at(-1)?.workflowTaskCompletedEventAttributes;
  expect(lastTask?.identity).toMatch(new RegExp(`^${survivor.pid}@`));
  // The killed worker stays dead; Redis was started once, however the attempts went.
  expect(() => process.kill(kill.worker.pid, 0)).toThrow();
  expect(startsSince(since, 'alfred-redis')).toBe(1);
  console.log(
    `worker failover on the cluster: worker ${kill.identity} SIGKILLed during ${RESTART} attempt ${kill.attempt}; ` +
      `attempt ${started?.attempt} completed by ${completed?.identity}`,
  );
  await waitUntil('api healthy', async () => (await health())?.status === 'ok', 60_000);
});
