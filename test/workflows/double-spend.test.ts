/**
 * INC-08 drills on the real drill target with a real engine worker process: duplicate charges are
 * really planted in the ledger; the runbook really pauses traffic, refunds through the target's admin
 * API after two approvals and lifts maintenance mode. The worker is SIGKILLed while the refunds are
 * being applied and a new one takes over: every duplicate is refunded exactly once.
 */
import { randomUUID } from 'node:crypto';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { runFault } from '../../drill/src/faults/catalog';
import { DrillContainers } from '../../drill/src/faults/containers';
import { loadDrillEnv } from '../../drill/src/faults/env';
import { FaultContext } from '../../drill/src/faults/context';
import { buildIncidentInput } from '../../src/lib/incident-input';
import { approveSignal, statusQuery, type IncidentRecord } from '../../src/workflows/contracts';
import { clearGuards, recordHistories, testConfig, waitUntil, type IncidentWorkflow } from '../helpers/engine';
import { freePort, health } from '../helpers/drill';
import { startWorkerProcess, type WorkerProcess } from '../helpers/worker-process';
import { testDataConverter } from '../helpers/codec';

jest.setTimeout(180_000);

interface PlantedPair {
  user_id: string;
  original_id: string;
  duplicate_id: string;
  amount: number;
}

let client: Client;
let connection: Connection;
let worker: WorkerProcess | undefined;
let taskQueue: string;
let metricsPort: number;
const started: string[] = [];
const drill = new FaultContext();

async function startWorker(): Promise<void> {
  worker = await startWorkerProcess({ taskQueue, metricsPort });
}

function killWorker(): void {
  worker?.kill();
  worker = undefined;
}

async function startIncident(): Promise<WorkflowHandle<IncidentWorkflow>> {
  const { input } = buildIncidentInput(testConfig(), { runbook: 'doubleSpend', target: 'alfred', requestedBy: 'test-requester' });
  const workflowId = `test-doubleSpend-${randomUUID().slice(0, 8)}`;
  started.push(workflowId);
  return client.workflow.start<IncidentWorkflow>('doubleSpend', { taskQueue, workflowId, args: [input] });
}

async function waitRecord(h: WorkflowHandle<IncidentWorkflow>, pred: (r: IncidentRecord) => boolean, timeoutMs = 90_000): Promise<IncidentRecord> {
  let last: IncidentRecord | undefined;
  await waitUntil(
    `${h.workflowId} state`,
    async () => {
      last = await h.query(statusQuery);
      return pred(last);
    },
    timeoutMs,
  );
  return last as IncidentRecord;
}

async function refundsOf(ids: string[]): Promise<Map<string, number>> {
  const { rows } = await (await drill.pg()).query<{ refund_of: string; n: string }>(
    'SELECT refund_of::text AS refund_of, count(*)::text AS n FROM request_logs WHERE refund_of = ANY($1::bigint[]) GROUP BY refund_of',
    [ids],
  );
  return new Map(rows.map((r) => [r.refund_of, Number(r.n)]));
}

async function refundCounter(): Promise<number> {
  const r = await drill.api.admin<{ counters: Record<string, number> }>('GET', '/v1/drill/counters');
  return r.counters.refunds ?? 0;
}

async function maintenance(): Promise<boolean> {
  const r = await drill.api.admin<{ settings: { maintenance_mode: boolean } }>('GET', '/v1/governance/settings');
  return r.settings.maintenance_mode;
}

beforeAll(async () => {
  connection = await Connection.connect({ address: '127.0.0.1:7233' });
  client = new Client({ connection, dataConverter: testDataConverter() });
  await clearGuards(client);
  taskQueue = `double-spend-${randomUUID().slice(0, 8)}`;
  metricsPort = await freePort();
  await runFault('duplicate-charges', true);
  // The api as first deployed: an earlier drill's rollback and restore would otherwise leave an older
  // release in its deploy history, and the double charges would be put down to that "upgrade".
  await new DrillContainers(loadDrillEnv().dockerSocket).recreate('api', { freshHistory: true });
  await waitUntil('api healthy', async () => (await health())?.status === 'ok');
  await startWorker();
});

afterAll(async () => {
  if (process.env.RECORD_HISTORIES) await recordHistories(client, started, taskQueue);
  killWorker();
  for await (const wf of client.workflow.list({ query: `TaskQueue = '${taskQueue}' AND ExecutionStatus = 'Running'` })) {
    await client.workflow.getHandle(wf.workflowId, wf.runId).terminate('test finished').catch(() => undefined);
  }
  // Leave the drill as we found it: no planted charges or their refunds, traffic flowing.
  await runFault('duplicate-charges', true);
  if (await maintenance()) await drill.api.admin('POST', '/v1/governance/settings', { maintenance_mode: false, reason: 'test cleanup' });
  await drill.close();
  await connection.close();
});

test('a ledger without double charges is a false alarm: nothing is done', async () => {
  const before = await refundCounter();
  const h = await startIncident();
  const rec = await h.result();
  expect(rec.outcome).toBe('false-alarm');
  expect(rec.diagnosis).toMatch(/ledger reconciles: no request charged twice; audit chain valid/);
  expect(rec.actions).toEqual([]);
  expect(await maintenance()).toBe(false);
  expect(await refundCounter()).toBe(before);
});

test('double charges: maintenance on, two-person refunds survive a worker kill and apply once, maintenance off', async () => {
  await runFault('duplicate-charges', false);
  const { rows } = await (await drill.pg()).query<{ data: PlantedPair[] }>(`SELECT data FROM drill_fault_state WHERE name = 'duplicate-charges'`);
  const pairs = rows[0]?.data ?? [];
  expect(pairs).toHaveLength(3);
  const dupIds = pairs.map((p) => p.duplicate_id);
  const counterBefore = await refundCounter();

  const h = await startIncident();
  let rec = await waitRecord(h, (r) => r.pending.some((p) => p.stepId === 'maintenance-on'));
  expect(rec.diagnosis).toMatch(/double-spend: 3 duplicate charges \(\d+ credits\) on 3 requests for 3 users; audit chain valid/);
  expect(rec.actions.map((a) => a.stepId)).toEqual(['maintenance-on', 'refund-duplicates', 'maintenance-off']);
  expect(rec.findings.filter((f) => f.check.startsWith('reconciliation user') && !f.ok)).toHaveLength(3);
  expect(rec.timeline.some((t) => /notified @sergey-bar: Double charges confirmed/.test(t.event))).toBe(true);

  await h.signal(approveSignal, { incidentId: h.workflowId, stepId: 'maintenance-on', approver: 'alice' });
  rec = await waitRecord(h, (r) => r.pending.some((p) => p.stepId === 'refund-duplicates'));
  expect(await maintenance()).toBe(true);
  const chat = await drill.api.request('POST', '/v1/chat/completions', {
    key: 'test-key-1',
    body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'ping' }] },
  });
  expect(chat.status).toBe(503);

  // One approval is not enough for a two-person step.
  await h.signal(approveSignal, { incidentId: h.workflowId, stepId: 'refund-duplicates', approver: 'alice' });
  rec = await waitRecord(h, (r) => r.pending.some((p) => p.stepId === 'refund-duplicates' && p.approvals.length === 1));
  expect((await refundsOf(dupIds)).size).toBe(0);

  // The second approval starts the refunds; the worker dies as soon as the first one lands.
  await h.signal(approveSignal, { incidentId: h.workflowId, stepId: 'refund-duplicates', approver: 'bob' });
  // Poll tightly: the three refunds are a few workflow tasks apart.
  const deadline = Date.now() + 60_000;
  while ((await refundsOf(dupIds)).size === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  killWorker();
  const atKill = (await refundsOf(dupIds)).size;
  await startWorker();

  rec = await waitRecord(h, (r) => r.pending.some((p) => p.stepId === 'maintenance-off'), 120_000);
  await h.signal(approveSignal, { incidentId: h.workflowId, stepId: 'maintenance-off', approver: 'carol' });
  rec = await h.result();

  expect(rec.outcome).toBe('resolved');
  expect(rec.actions.find((a) => a.stepId === 'refund-duplicates')).toMatchObject({ state: 'done', approvals: ['alice', 'bob'] });
  expect(rec.timeline.some((t) => /verification passed: audit chain valid, 0 unrefunded duplicate charges/.test(t.event))).toBe(true);
  // Exactly one refund per duplicate, none for the original charges, and the target counted three.
  const refunds = await refundsOf(dupIds);
  expect(Object.fromEntries(refunds)).toEqual(Object.fromEntries(dupIds.map((id) => [id, 1])));
  expect((await refundsOf(pairs.map((p) => p.original_id))).size).toBe(0);
  expect((await refundCounter()) - counterBefore).toBe(3);
  expect(await maintenance()).toBe(false);
  console.log(`double-spend: worker killed with ${atKill} of 3 refunds applied; each duplicate refunded once`);
});
