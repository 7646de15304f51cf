/**
 * A flapping alert: fired and resolved 50 times in well under a minute while Redis is really down.
 * Repeats join the running incident; later firings open incidents that find Redis fixed (false
 * alarms) or are held back by the cooldown. Exactly one remediation happens.
 */
import { incidentWorkflowId, type IncidentRecord } from '../../src/workflows/contracts';
import { drillContainer, startEngine, waitUntil, type Engine } from '../helpers/engine';
import { health, redisUp } from '../helpers/drill';
import { startTestReceiver, type TestReceiver } from '../receiver/helpers';

jest.setTimeout(180_000);


let t: TestReceiver;
let engine: Engine;

beforeAll(async () => {
  t = await startTestReceiver();
  // Resolved incidents stay open 20 s for repeats of their alert (flap protection): the worker's policy.
  engine = await startEngine({
    taskQueue: t.taskQueue,
    extraTargets: [t.target],
    configure: (c) => {
      c.policy.settleMs = 20_000;
    },
  });
});

afterAll(async () => {
  const c = await drillContainer(engine.docker, 'redis');
  if (!(await c.inspect()).State.Running) await c.start();
  await waitUntil('redis up', redisUp);
  await engine.stop();
  await t.stop();
});

test('50 fire/resolve cycles in under a minute yield exactly one remediation', async () => {
  const c = await drillContainer(engine.docker, 'redis');
  const startedBefore = (await c.inspect()).State.StartedAt;
  await c.kill();
  await waitUntil('redis down', async () => !(await redisUp()));

  const t0 = Date.now();
  const actions: string[] = [];
  for (let i = 0; i < 50; i++) {
    for (const status of ['firing', 'resolved'] as const) {
      const res = await t.post('generic', { alertname: 'CacheFailure', status, target: t.target });
      expect(res.status).toBeLessThan(300);
      actions.push(...(res.json.results ?? []).map((r) => (r as { action: string }).action));
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  expect(Date.now() - t0).toBeLessThan(60_000);

  const id = incidentWorkflowId('cacheFailure', t.target);
  await waitUntil(
    'every run closed',
    async () => {
      for await (const wf of engine.client.workflow.list({ query: `WorkflowId = '${id}' AND ExecutionStatus = 'Running'` })) {
        if (wf) return false;
      }
      return true;
    },
    120_000,
  );
  const records: IncidentRecord[] = [];
  for await (const wf of engine.client.workflow.list({ query: `WorkflowId = '${id}'` })) {
    records.push((await engine.client.workflow.getHandle(id, wf.runId).result()) as IncidentRecord);
  }
  const restarts = records.flatMap((r) => r.actions).filter((a) => a.stepId === 'restart-redis' && a.state === 'done');
  expect(restarts).toHaveLength(1);
  expect(records.filter((r) => r.outcome === 'resolved').length).toBeGreaterThanOrEqual(1);
  // Every other run found nothing to do.
  for (const r of records) if (r.outcome !== 'resolved') expect(['false-alarm']).toContain(r.outcome);
  // Repeats were folded into running incidents rather than each starting one.
  expect(actions.filter((a) => a === 'deduplicated' || a === 'resolved-signalled').length).toBeGreaterThan(0);
  // Flap protection: the settle window folds the repeats into a handful of incidents.
  expect(records.length).toBeLessThanOrEqual(3);
  const startedAfter = (await c.inspect()).State.StartedAt;
  expect(startedAfter).not.toBe(startedBefore);
  await waitUntil('api sees redis', async () => (await health())?.redis === 'healthy');
  console.log(`flapping: 100 alerts, ${records.length} incident runs, ${restarts.length} restart; actions ${JSON.stringify(countBy(actions))}`);
});

function countBy(xs: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) out[x] = (out[x] ?? 0) + 1;
  return out;
}
