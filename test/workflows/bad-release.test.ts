/**
 * INC-12 drills on the real drill target: a broken release is really deployed and really serves
 * errors through the TLS proxy; the runbook compares errors before and after the deploy, rolls back
 * through a child rollback incident and downgrades the migration the release brought.
 */
import { request } from 'node:https';
import { DrillContainers } from '../../drill/src/faults/containers';
import { loadDrillEnv } from '../../drill/src/faults/env';
import { approveSignal, closeSignal, rejectSignal, type IncidentRecord } from '../../src/workflows/contracts';
import { drillContainer, startEngine, waitUntil, type Engine } from '../helpers/engine';
import { adminKey, API, health, injectFault, undoFault } from '../helpers/drill';

jest.setTimeout(180_000);

let engine: Engine;

/** GET /health through the TLS proxy (self-signed certificate), so the proxy's log sees the traffic. */
function viaProxy(): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port: 58443, path: '/health', rejectUnauthorized: false, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

async function traffic(n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await viaProxy());
  return out;
}

async function schemaVersion(): Promise<number> {
  const res = await fetch(`${API}/v1/admin/migrations`, { headers: { authorization: `Bearer ${adminKey()}` } });
  return ((await res.json()) as { current: number }).current;
}

/** The same good release deployed again: a recent deploy whose logs hold only this test's traffic. */
async function redeployGoodRelease(): Promise<void> {
  const containers = new DrillContainers(loadDrillEnv().dockerSocket);
  expect((await containers.find('api')).image).toMatch(/:1\.1\.0$/);
  await containers.recreate('api', { env: {} });
  // Its start is awaited in its own log, not with requests: a /health asked before the schema is ready
  // answers 503, and that line would count as an error of the release.
  await waitUntil('api database ready and listening', async () => {
    const logs = (await (await drillContainer(engine.docker, 'api')).logs({ stdout: true, stderr: true })).toString();
    return logs.includes('database ready') && logs.includes('alfred api listening');
  });
  await waitUntil('api healthy', async () => (await health())?.status === 'ok');
}

async function apiImage(): Promise<string> {
  return (await (await drillContainer(engine.docker, 'api')).inspect()).Config.Image;
}

beforeAll(async () => {
  engine = await startEngine();
  // Admin sign-in must work when the drills start: a drill left with SSO down is put right first.
  await undoFault('sso-down');
  // The good release on the schema it migrates to (an earlier drill may have left a newer one).
  await undoFault('bad-release');
});

afterAll(async () => {
  await undoFault('bad-release').catch(() => undefined);
  await waitUntil('api healthy', async () => (await health())?.status === 'ok');
  await engine.stop();
});

test('a fresh deploy of the good release at baseline is a false alarm: nothing is done', async () => {
  await redeployGoodRelease();
  expect((await traffic(10)).every((s) => s === 200)).toBe(true);
  const before = await (await drillContainer(engine.docker, 'api')).inspect();

  const h = await engine.start({ runbook: 'badRelease', target: 'alfred' });
  const rec = await engine.result(h);

  expect(rec.outcome).toBe('false-alarm');
  expect(rec.diagnosis).toMatch(/^api 1\.1\.0 deployed .*: at baseline$/);
  expect(rec.findings.find((f) => f.check === 'errors after the deploy')?.ok).toBe(true);
  expect(rec.actions).toEqual([]);
  expect(rec.children).toEqual([]);
  const after = await (await drillContainer(engine.docker, 'api')).inspect();
  expect([after.Id, after.Config.Image]).toEqual([before.Id, before.Config.Image]);
});

test('request lines the log settings do not recognise are no evidence: escalated with what could not be observed, never a false alarm', async () => {
  await redeployGoodRelease();
  expect((await traffic(10)).every((s) => s === 200)).toBe(true);
  // An engine whose target logs JSON: the replica's logfmt request lines match none of its patterns.
  const json = await startEngine({
    configure: (c) => {
      (c.targets.alfred as (typeof c.targets)[string]).logs.status = '"status":\\s*(?<status>\\d{3})';
    },
  });
  try {
    const h = await json.start({ runbook: 'badRelease', target: 'alfred' });
    const rec = await json.waitFor(h, (s) => s.phase === 'ESCALATED');
    expect(rec.findings.find((f) => f.check === 'errors after the deploy')).toEqual({
      check: 'errors after the deploy',
      ok: false,
      unknown: true,
      detail: 'no request line recognised in the logs of api and proxy since the deploy (settings logs.status, logs.path, logs.timestamp)',
    });
    expect(rec.escalations.join(' ')).toMatch(/not a false alarm without evidence: could not observe errors after the deploy/);
    expect(rec.outcome).toBeUndefined();
    expect(rec.actions).toEqual([]);
    await h.signal(closeSignal, { incidentId: h.workflowId, by: 'alice', note: 'checked by hand' });
    expect((await json.result(h)).outcome).toBe('escalated');
  } finally {
    await json.stop();
  }
});

test('a release that raised errors: child rollback, then its migration downgraded, SEV-1, verified', async () => {
  expect(await schemaVersion()).toBe(3);
  expect((await traffic(10)).every((s) => s === 200)).toBe(true);
  await injectFault('bad-release');
  expect(await apiImage()).toMatch(/:1\.2\.0-bad$/);
  await waitUntil('schema migrated by the release', async () => (await schemaVersion()) === 4);
  expect((await traffic(10)).every((s) => s === 500)).toBe(true);

  const h = await engine.start({ runbook: 'badRelease', target: 'alfred', requestedBy: 'alertmanager' });
  await engine.waitFor(h, (s) => s.pending.some((p) => p.stepId === 'rollback-release'));
  await h.signal(approveSignal, { incidentId: h.workflowId, stepId: 'rollback-release', approver: 'alice' });
  await engine.waitFor(h, (s) => s.pending.some((p) => p.stepId === 'migration-downgrade'));
  await h.signal(approveSignal, { incidentId: h.workflowId, stepId: 'migration-downgrade', approver: 'bob' });
  // Users keep calling: recovery is what the rolled-back release serves them, not a quiet log.
  let serving = true;
  const users = (async () => {
    while (serving) {
      await viaProxy();
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  const rec = await engine.result(h).finally(() => (serving = false));
  await users;

  expect(rec.outcome).toBe('resolved');
  expect(rec.severity).toBe(1);
  expect(rec.diagnosis).toMatch(/api 1\.2\.0-bad deployed .*errors [\d.]+ % before, 100 % after.*downgrade migration 0004$/);
  // Before: whatever the proxy saw in the hour before the deploy (earlier drills included); after: every request failed.
  expect(rec.findings.find((f) => f.check === 'errors before the deploy')?.detail).toMatch(/^\d+\/\d+ .* at the proxy/);
  expect(rec.findings.find((f) => f.check === 'errors after the deploy')).toMatchObject({ ok: false, detail: expect.stringMatching(/\(100 %\)/) });
  expect(rec.actions).toEqual([
    expect.objectContaining({ stepId: 'rollback-release', state: 'done', approvals: ['alice'] }),
    expect.objectContaining({ stepId: 'migration-downgrade', state: 'done', approvals: ['bob'] }),
  ]);
  // alembic in the api container: the database at 0004, which the good release (up to 0003) does not ship.
  expect(rec.findings.find((f) => f.check === 'migration revision')).toEqual(
    expect.objectContaining({ ok: false, detail: 'current 0004; 1.1.0 ships up to 0003; brought by 1.2.0-bad: 0004' }),
  );
  // Reverted after the rollback, with the bad release's own alembic (1.1.0 cannot revert what it does not know).
  expect(rec.actions[1]?.detail).toBe('reverted 0004 with localhost/alfred-api:1.2.0-bad; the database is at 0003');
  expect(rec.children).toEqual([`${h.workflowId}.rollback.1`]);
  const child = (await engine.client.workflow.getHandle(rec.children[0] as string).result()) as IncidentRecord;
  expect(child).toMatchObject({ outcome: 'resolved', parentIncidentId: h.workflowId });
  expect(child.actions).toEqual([expect.objectContaining({ stepId: 'recreate-api', state: 'done', approvals: ['alice'] })]);
  expect(rec.timeline.some((t) => /^\[rollback\] recreate-api health gate passed/.test(t.event))).toBe(true);
  expect(rec.timeline.some((t) => /verification passed: \/health ok; api 1\.1\.0 errors 0\/[1-9]/.test(t.event))).toBe(true);
  expect(await apiImage()).toMatch(/:1\.1\.0$/);
  expect(await schemaVersion()).toBe(3);
});

test('rollback rejected: the incident escalates, stays open, and the bad release keeps running', async () => {
  await injectFault('bad-release');
  expect((await traffic(5)).every((s) => s === 500)).toBe(true);

  const h = await engine.start({ runbook: 'badRelease', target: 'alfred', requestedBy: 'alertmanager' });
  await engine.waitFor(h, (s) => s.pending.some((p) => p.stepId === 'rollback-release'));
  await h.signal(rejectSignal, { incidentId: h.workflowId, stepId: 'rollback-release', approver: 'bob', comment: 'hotfix instead' });
  const rec = await engine.waitFor(h, (s) => s.phase === 'ESCALATED');

  expect(rec.actions).toEqual([
    expect.objectContaining({ stepId: 'rollback-release', state: 'rejected', rejectedBy: 'bob' }),
    expect.objectContaining({ stepId: 'migration-downgrade', state: 'planned' }),
  ]);
  expect(rec.children).toEqual([]);
  expect((await h.describe()).status.name).toBe('RUNNING');
  expect(await apiImage()).toMatch(/:1\.2\.0-bad$/);
  expect(await schemaVersion()).toBe(4);
  await h.signal(closeSignal, { incidentId: h.workflowId, by: 'bob', note: 'hotfix deployed by hand' });
  expect((await engine.result(h)).outcome).toBe('escalated');
  await undoFault('bad-release');
});
