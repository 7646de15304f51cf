/**
 * Workers are SIGKILLed while incidents restart containers, and restarted each time, as a process
 * supervisor would. Every kill is aimed: the test watches each incident's pending activities and
 * kills its worker the moment a restartContainer attempt is running there (started, not completed).
 * The history afterwards shows that the kill landed in the restart: the attempt that completed is a
 * later one, whose predecessor ended by its start-to-close timeout, completed by another worker than
 * the one killed. Every incident completes, and each mitigation's side effect happens exactly once:
 * the Docker host's own event log (Podman's) counts the container starts.
 *
 * The two incidents of a round run on workers of their own (one task queue each), so a kill aimed at
 * one incident's restart costs only that incident its restart's timeout (30 s) and the two kills of a
 * round overlap. CRASH_KILLS (default 2: one round, one kill per incident, so the file stays under a
 * minute) sets the number of kills, two a round.
 */
import { randomUUID } from 'node:crypto';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import Docker from 'dockerode';
import { buildIncidentInput } from '../../src/lib/incident-input';
import { type IncidentRecord } from '../../src/workflows/contracts';
import { clearGuards, drillContainer, testConfig, waitUntil, type IncidentWorkflow } from '../helpers/engine';
import { freePort, health, redisUp } from '../helpers/drill';
import { startWorkerProcess, type WorkerProcess } from '../helpers/worker-process';
import { testDataConverter } from '../helpers/codec';
import { startsSince } from '../helpers/podman-events';

jest.setTimeout(600_000);

const KILLS = Number(process.env.CRASH_KILLS ?? 2);
const RUNBOOKS = ['cacheFailure', 'databaseUnreachable'] as const;
const ROUNDS = Math.max(1, Math.ceil(KILLS / RUNBOOKS.length));
const RESTART = 'restartContainer';
/** How long after a kill its replacement starts: well inside the 30 s before the lost attempt is retried. */
const REPLACE_AFTER_MS = 12_000;
const { PENDING_ACTIVITY_STATE_STARTED } = temporal.api.enums.v1.PendingActivityState;
const { TIMEOUT_TYPE_START_TO_CLOSE } = temporal.api.enums.v1.TimeoutType;

let client: Client;
let connection: Connection;
const docker = new Docker({ socketPath: testConfig().docker.socketPath });
const runId = randomUUID().slice(0, 8);

/** One incident's worker: its own task queue and metrics port, restarted after each kill. */
interface Lane {
  runbook: (typeof RUNBOOKS)[number];
  taskQueue: string;
  metricsPort: number;
  worker?: WorkerProcess;
  /** A replacement being started (afterAll waits for it, so no worker outlives the test). */
  replacing?: Promise<unknown>;
}
const lanes: Lane[] = [];

/** One aimed kill: the incident, the restart attempt it was running, the worker that ran it. */
interface Kill {
  workflowId: string;
  attempt: number;
  pid: number;
  identity: string;
}
const kills: Kill[] = [];

beforeAll(async () => {
  connection = await Connection.connect({ address: '127.0.0.1:7233' });
  client = new Client({ connection, dataConverter: testDataConverter() });
  await clearGuards(client);
  for (const runbook of RUNBOOKS) {
    // A port of its own: no lane's worker has bound one yet.
    let metricsPort = await freePort();
    while (lanes.some((l) => l.metricsPort === metricsPort)) metricsPort = await freePort();
    lanes.push({ runbook, taskQueue: `crash-${runId}-${runbook}`, metricsPort });
  }
  // The lanes' first workers start side by side.
  await Promise.all(
    lanes.map(async (lane) => {
      lane.worker = await startWorkerProcess({ taskQueue: lane.taskQueue, metricsPort: lane.metricsPort });
    }),
  );
});

afterAll(async () => {
  for (const lane of lanes) {
    await lane.replacing?.catch(() => undefined);
    lane.worker?.kill();
    for await (const wf of client.workflow.list({ query: `TaskQueue = '${lane.taskQueue}' AND ExecutionStatus = 'Running'` })) {
      await client.workflow.getHandle(wf.workflowId, wf.runId).terminate('test finished').catch(() => undefined);
    }
  }
  await clearGuards(client);
  for (const c of ['redis', 'db']) {
    const ct = await drillContainer(docker, c);
    if (!(await ct.inspect()).State.Running) await ct.start();
  }
  await waitUntil('api healthy', async () => (await health())?.status === 'ok', 60_000);
  await connection.close();
});

/**
 * Watches the incident and SIGKILLs its worker as soon as a restartContainer attempt runs there, then
 * starts a new worker on the lane. Returns the kill, or fails if no restart ran before `deadline`.
 */
async function killDuringRestart(lane: Lane, h: WorkflowHandle, deadline: number): Promise<Kill> {
  while (Date.now() < deadline) {
    const d = await h.describe();
    const p = d.raw.pendingActivities?.find((a) => a.activityType?.name === RESTART && a.state === PENDING_ACTIVITY_STATE_STARTED);
    const worker = lane.worker;
    if (p && worker && (p.lastWorkerIdentity ?? '').startsWith(`${worker.pid}@`)) {
      worker.kill();
      lane.worker = undefined;
      const kill = { workflowId: h.workflowId, attempt: p.attempt ?? 0, pid: worker.pid, identity: p.lastWorkerIdentity ?? '' };
      kills.push(kill);
      // The lost attempt is handed out again only after its start-to-close timeout (30 s): the new
      // worker starts a while later, so its start-up does not slow the other incident's watcher (on
      // two cores a restart runs for a fifth of a second) while it waits for its own kill.
      lane.replacing = new Promise((r) => setTimeout(r, REPLACE_AFTER_MS)).then(async () => {
        lane.worker = await startWorkerProcess({ taskQueue: lane.taskQueue, metricsPort: lane.metricsPort });
      });
      await lane.replacing;
      return kill;
    }
    if (d.status.name !== 'RUNNING') break;
  }
  throw new Error(`${h.workflowId}: no ${RESTART} attempt was seen running on its worker, so no kill landed`);
}

/** What the history says of the incident's restart: the attempt that completed, how the one before it ended, who completed it. */
async function restartInHistory(h: WorkflowHandle): Promise<{ attempt: number; previousTimedOut: boolean; completedBy: string }> {
  const events = (await h.fetchHistory()).events ?? [];
  const scheduled = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === RESTART);
  const id = scheduled?.eventId?.toString() ?? 'none';
  const started = events.find((e) => e.activityTaskStartedEventAttributes?.scheduledEventId?.toString() === id)?.activityTaskStartedEventAttributes;
  const completed = events.find((e) => e.activityTaskCompletedEventAttributes?.scheduledEventId?.toString() === id)?.activityTaskCompletedEventAttributes;
  return {
    attempt: started?.attempt ?? 0,
    previousTimedOut: started?.lastFailure?.timeoutFailureInfo?.timeoutType === TIMEOUT_TYPE_START_TO_CLOSE,
    completedBy: completed?.identity ?? '',
  };
}

test(`${ROUNDS * RUNBOOKS.length} worker SIGKILLs, each while a restart runs on it: every incident completes, every side effect happens once`, async () => {
  const cfg = testConfig();
  const records: IncidentRecord[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const since = Date.now();
    await (await drillContainer(docker, 'redis')).kill();
    await (await drillContainer(docker, 'db')).stop({ t: 2 });
    await waitUntil('both down', async () => !(await redisUp()) && (await health())?.database !== 'healthy');

    const handles = await Promise.all(
      lanes.map((lane) => {
        const { input } = buildIncidentInput(cfg, { runbook: lane.runbook, target: 'alfred', requestedBy: 'crash-test' });
        return client.workflow.start<IncidentWorkflow>(lane.runbook, {
          taskQueue: lane.taskQueue,
          workflowId: `crash-${lane.runbook}-${round}-${runId}`,
          args: [input],
        });
      }),
    );
    // Both incidents are watched at once: each kill is aimed at its own incident's restart.
    const landed = await Promise.all(lanes.map((lane, i) => killDuringRestart(lane, handles[i] as WorkflowHandle, Date.now() + 90_000)));
    for (const [i, h] of handles.entries()) {
      await waitUntil(`${h.workflowId} to finish`, async () => (await h.describe()).status.name !== 'RUNNING', 240_000);
      const rec = await h.result();
      records.push(rec);
      // The kill landed in the restart: the attempt that completed is the one after the killed one,
      // which ended by its start-to-close timeout, and another worker completed it.
      const kill = landed[i] as Kill;
      const history = await restartInHistory(h);
      expect({ id: h.workflowId, outcome: rec.outcome, attempt: history.attempt, previousTimedOut: history.previousTimedOut }).toEqual({
        id: h.workflowId,
        outcome: 'resolved',
        attempt: kill.attempt + 1,
        previousTimedOut: true,
      });
      expect(history.completedBy).toMatch(/^\d+@/);
      expect(history.completedBy).not.toBe(kill.identity);
    }
    // Each broken container was started exactly once, however the workers died.
    expect({ round, redis: startsSince(since, 'alfred-redis'), db: startsSince(since, 'alfred-db') }).toEqual({ round, redis: 1, db: 1 });
    await waitUntil('api healthy', async () => (await health())?.status === 'ok', 60_000);
  }
  const done = records.flatMap((r) => r.actions).filter((a) => a.state === 'done');
  console.log(
    `worker crash: ${kills.length} SIGKILLs, each while a restart attempt ran on the killed worker ` +
      `(${kills.map((k) => `${k.workflowId.split('-')[1]} attempt ${k.attempt}`).join(', ')}); ` +
      `${records.length} incidents resolved, ${done.length} mitigations, 1 container start per mitigation`,
  );
  expect(kills).toHaveLength(ROUNDS * RUNBOOKS.length);
  expect(new Set(kills.map((k) => k.pid)).size).toBe(kills.length);
  expect(records).toHaveLength(ROUNDS * RUNBOOKS.length);
});
