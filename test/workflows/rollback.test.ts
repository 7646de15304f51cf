/**
 * Rollback drills: real containers recreated on other image tags through the Docker API, one at a
 * time, each gated on real health.
 */
import { runFault } from '../../drill/src/faults/catalog';
import { closeSignal, decideUpdate } from '../../src/workflows/contracts';
import { drillContainer, startEngine, waitUntil, type Engine, type IncidentHandle } from '../helpers/engine';
import { drillPg, health } from '../helpers/drill';

jest.setTimeout(240_000);

let engine: Engine;

async function imageOf(component: string): Promise<string> {
  return (await (await drillContainer(engine.docker, component)).inspect()).Config.Image;
}

async function approveWhenPending(h: IncidentHandle, stepId: string, approver = 'alice'): Promise<void> {
  await engine.waitFor(h, (s) => s.pending.some((p) => p.stepId === stepId));
  await h.executeUpdate(decideUpdate, { args: [{ incidentId: h.workflowId, stepId, approver, decision: 'approve' }] });
}

beforeAll(async () => {
  engine = await startEngine();
});

afterAll(async () => {
  // Back to the release the stack runs.
  await runFault('bad-release', true, { tag: '1.1.0' }).catch(() => undefined);
  for (const c of ['api', 'worker']) {
    if (!(await imageOf(c)).endsWith(':1.1.0')) {
      await engine.start({ runbook: 'rollback', target: 'alfred', params: { services: [c], tag: '1.1.0' } }).then(async (h) => {
        await approveWhenPending(h, `recreate-${c}`);
        await engine.result(h);
      });
    }
  }
  await waitUntil('api healthy', async () => (await health())?.status === 'ok');
  await engine.stop();
});

test('dry-run rollback describes the plan and changes nothing', async () => {
  const before = (await (await drillContainer(engine.docker, 'api')).inspect()).State.StartedAt;
  const h = await engine.start({ runbook: 'rollback', target: 'alfred', dryRun: true, requestedBy: 'erin' });
  const rec = await engine.result(h);
  expect(rec.outcome).toBe('dry-run');
  expect(rec.diagnosis).toMatch(/api 1\.1\.0 → 1\.0\.0/);
  expect(rec.actions.map((a) => [a.stepId, a.state])).toEqual([
    ['recreate-api', 'would-do'],
    ['recreate-worker', 'would-do'],
  ]);
  expect((await (await drillContainer(engine.docker, 'api')).inspect()).State.StartedAt).toBe(before);
});

test('rollback to the last known good tag recreates api then worker, each health-gated', async () => {
  expect(await imageOf('api')).toMatch(/:1\.1\.0$/);
  const h = await engine.start({ runbook: 'rollback', target: 'alfred', requestedBy: 'erin', params: { reason: 'drill' } });
  await approveWhenPending(h, 'recreate-api');
  const rec = await engine.result(h);

  expect(rec.outcome).toBe('resolved');
  expect(rec.actions).toEqual([
    expect.objectContaining({ stepId: 'recreate-api', state: 'done', risk: 'approve', approvals: ['alice'] }),
    expect.objectContaining({ stepId: 'recreate-worker', state: 'done', risk: 'auto' }),
  ]);
  const apiAt = Date.parse(rec.actions[0]?.endedAt ?? '');
  const workerAt = Date.parse(rec.actions[1]?.startedAt ?? '');
  expect(workerAt).toBeGreaterThanOrEqual(apiAt); // one at a time
  expect(rec.timeline.some((t) => /recreate-api health gate passed/.test(t.event))).toBe(true);
  expect(await imageOf('api')).toMatch(/:1\.0\.0$/);
  expect(await imageOf('worker')).toMatch(/:1\.0\.0$/);
  const labels = (await (await drillContainer(engine.docker, 'api')).inspect()).Config.Labels;
  expect(labels['remediation.image-history']).toContain('1.1.0');
  expect((await health())?.status).toBe('ok');

  // 1.1.0 was rolled back from: it is never a "last known good" again, so a second rollback without
  // a tag finds nothing older to go to. Going back up is a deliberate choice, with an explicit tag.
  expect(labels['remediation.rolled-back-from']).toContain('1.1.0');
  const again = await engine.start({ runbook: 'rollback', target: 'alfred', requestedBy: 'erin', dryRun: true });
  const nothing = await engine.waitFor(again, (st) => st.phase === 'ESCALATED');
  expect(nothing.findings.find((f) => f.check === 'api release')?.detail).toMatch(/target none \(no older release found\)/);
  await again.signal(closeSignal, { incidentId: again.workflowId, by: 'alice', note: 'nothing older to go back to' });
  await engine.result(again);
  const back = await engine.start({ runbook: 'rollback', target: 'alfred', requestedBy: 'erin', params: { tag: '1.1.0' } });
  await approveWhenPending(back, 'recreate-api', 'bob');
  expect((await engine.result(back)).outcome).toBe('resolved');
  expect(await imageOf('api')).toMatch(/:1\.1\.0$/);
  expect(await imageOf('worker')).toMatch(/:1\.1\.0$/);
});

test('a rollback onto an unhealthy tag stops at the failed gate, escalates and stays open', async () => {
  const h = await engine.start({
    runbook: 'rollback',
    target: 'alfred',
    requestedBy: 'erin',
    params: { tag: '1.2.0-bad', gateDeadlineMs: 8000 },
  });
  await approveWhenPending(h, 'recreate-api');
  const rec = await engine.waitFor(h, (s) => s.phase === 'ESCALATED');
  expect(rec.actions.find((a) => a.stepId === 'recreate-api')).toMatchObject({ state: 'failed' });
  expect(rec.actions.find((a) => a.stepId === 'recreate-api')?.detail).toMatch(/health gate failed/);
  // The rollout stopped: the worker was not touched.
  expect(rec.actions.find((a) => a.stepId === 'recreate-worker')?.state).toBe('planned');
  expect(await imageOf('worker')).toMatch(/:1\.1\.0$/);
  expect((await h.describe()).status.name).toBe('RUNNING');
  await h.signal(closeSignal, { incidentId: h.workflowId, by: 'alice', note: 'rolled forward by hand' });
  expect((await engine.result(h)).outcome).toBe('escalated');
});

test('a rollback with migrationDowngrade reverts the newest migration with the alembic of the release rolled back from', async () => {
  await runFault('bad-release', false);
  expect(await imageOf('api')).toMatch(/:1\.2\.0-bad$/);
  const revision = async (): Promise<string | undefined> => {
    const pg = drillPg();
    await pg.connect();
    try {
      return (await pg.query<{ v: string }>('SELECT version_num AS v FROM alembic_version')).rows[0]?.v;
    } finally {
      await pg.end();
    }
  };
  await waitUntil('the bad release migrated to 0004', async () => (await revision()) === '0004');

  const h = await engine.start({
    runbook: 'rollback',
    target: 'alfred',
    requestedBy: 'erin',
    params: { services: ['api'], tag: '1.1.0', migrationDowngrade: true },
  });
  await approveWhenPending(h, 'recreate-api');
  await approveWhenPending(h, 'migration-downgrade', 'bob');
  const rec = await engine.result(h);

  expect(rec.outcome).toBe('resolved');
  expect(rec.actions.map((a) => [a.stepId, a.state])).toEqual([
    ['recreate-api', 'done'],
    ['migration-downgrade', 'done'],
  ]);
  // 1.1.0 ships migrations up to 0003 only: the downgrade ran with 1.2.0-bad's code, in a one-off container.
  expect(rec.actions[1]?.detail).toBe('reverted 0004 with localhost/alfred-api:1.2.0-bad; the database is at 0003');
  expect(await imageOf('api')).toMatch(/:1\.1\.0$/);
  expect(await revision()).toBe('0003');
});
