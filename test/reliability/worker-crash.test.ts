/**
 * The worker is SIGKILLed over and over (20 times by default) while incidents are in mitigation and
 * restarted each time, as a process supervisor would. Every incident completes, and each
 * mitigation's side effect happens exactly once: the Docker host's own event log (Podman's) counts
 * the container starts.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { buildIncidentInput } from '../../src/lib/incident-input';
import { type IncidentRecord } from '../../src/workflows/contracts';
import { clearGuards, drillContainer, STACK_DIR, testConfig, waitUntil, type IncidentWorkflow } from '../helpers/engine';
import { freePort, health, redisUp } from '../helpers/drill';
import { startWorkerProcess, type WorkerProcess } from '../helpers/worker-process';
import { testDataConverter } from '../helpers/codec';
import Docker from 'dockerode';

jest.setTimeout(600_000);

const KILLS = Number(process.env.CRASH_KILLS ?? 12);
const ROUNDS = 4;
const EVENTS = path.join(STACK_DIR, 'podman/events.log');

interface PodmanEvent {
  Name: string;
  Status: string;
  Time: string;
}

function startsSince(since: number, name: string): number {
  if (!existsSync(EVENTS)) return 0;
  return readFileSync(EVENTS, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as PodmanEvent)
    .filter((e) => e.Name === name && e.Status === 'start' && Date.parse(e.Time) >= since).length;
}

let client: Client;
let connection: Connection;
let worker: WorkerProcess | undefined;
let taskQueue: string;
let metricsPort: number;
let kills = 0;
const docker = new Docker({ socketPath: testConfig().docker.socketPath });

async function startWorker(): Promise<void> {
  worker = await startWorkerProcess({ taskQueue, metricsPort });
}

function killWorker(): void {
  if (worker) kills += 1;
  worker?.kill();
  worker = undefined;
}

beforeAll(async () => {
  connection = await Connection.connect({ address: '127.0.0.1:7233' });
  client = new Client({ connection, dataConverter: testDataConverter() });
  await clearGuards(client);
  taskQueue = `crash-${randomUUID().slice(0, 8)}`;
  metricsPort = await freePort();
  await startWorker();
});

afterAll(async () => {
  if (worker) killWorker();
  for await (const wf of client.workflow.list({ query: `TaskQueue = '${taskQueue}' AND ExecutionStatus = 'Running'` })) {
    await client.workflow.getHandle(wf.workflowId, wf.runId).terminate('test finished').catch(() => undefined);
  }
  for (const c of ['redis', 'db']) {
    const ct = await drillContainer(docker, c);
    if (!(await ct.inspect()).State.Running) await ct.start();
  }
  await waitUntil('api healthy', async () => (await health())?.status === 'ok', 60_000);
  await connection.close();
});

test(`${KILLS} worker SIGKILLs during mitigation: every incident completes, every side effect happens once`, async () => {
  const cfg = testConfig();
  const perRound = Math.ceil(KILLS / ROUNDS);
  const records: IncidentRecord[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const since = Date.now();
    await (await drillContainer(docker, 'redis')).kill();
    await (await drillContainer(docker, 'db')).stop({ t: 2 });
    await waitUntil('both down', async () => !(await redisUp()) && (await health())?.database !== 'healthy');

    const handles = await Promise.all(
      (['cacheFailure', 'databaseUnreachable'] as const).map((runbook) => {
        const { input } = buildIncidentInput(cfg, { runbook, target: 'alfred', requestedBy: 'crash-test' });
        return client.workflow.start<IncidentWorkflow>(runbook, { taskQueue, workflowId: `crash-${runbook}-${round}-${randomUUID().slice(0, 6)}`, args: [input] });
      }),
    );
    // Kill at random points while the incidents diagnose, take locks and restart containers.
    for (let k = 0; k < perRound && kills < KILLS; k++) {
      await new Promise((r) => setTimeout(r, 200 + Math.random() * 1200));
      killWorker();
      await startWorker();
    }
    for (const h of handles) {
      await waitUntil(`${h.workflowId} to finish`, async () => (await h.describe()).status.name !== 'RUNNING', 240_000);
      const rec = await h.result();
      records.push(rec);
      expect({ id: h.workflowId, outcome: rec.outcome }).toEqual({ id: h.workflowId, outcome: 'resolved' });
    }
    // Each broken container was started exactly once, however often the worker died.
    expect({ round, redis: startsSince(since, 'alfred-redis'), db: startsSince(since, 'alfred-db') }).toEqual({ round, redis: 1, db: 1 });
    await waitUntil('api healthy', async () => (await health())?.status === 'ok', 60_000);
  }
  const done = records.flatMap((r) => r.actions).filter((a) => a.state === 'done');
  console.log(`worker crash: ${kills} SIGKILLs survived, ${records.length} incidents completed, ${done.length} mitigations, duplicates 0`);
  expect(kills).toBeGreaterThanOrEqual(KILLS);
  expect(records).toHaveLength(ROUNDS * 2);
});
