/**
 * INC-06 drills on the real drill target: the SSO provider really goes down, a release that refuses
 * every key is really deployed, the database is really stopped; the runbook really recreates the api
 * or runs child incidents (rollback, INC-01), and verification really signs in with the admin key.
 */
import { approveSignal, closeSignal, rejectSignal, type IncidentRecord } from '../../src/workflows/contracts';
import { drillContainer, startEngine, waitUntil, type Engine } from '../helpers/engine';
import { health, injectFault, undoFault } from '../helpers/drill';

jest.setTimeout(180_000);

let engine: Engine;

async function apiConfig(): Promise<{ image: string; env: string[]; startedAt: string }> {
  const info = await (await drillContainer(engine.docker, 'api')).inspect();
  return { image: info.Config.Image, env: info.Config.Env ?? [], startedAt: info.State.StartedAt };
}

async function childRecord(id: string): Promise<IncidentRecord> {
  return (await engine.client.workflow.getHandle(id).result()) as IncidentRecord;
}

beforeAll(async () => {
  engine = await startEngine();
  // Admin sign-in must work when the drills start: a drill left with SSO down is put right first.
  await undoFault('sso-down');
});

afterAll(async () => {
  // Leave the drill as we found it: SSO off, the good release, the database up.
  await undoFault('sso-down').catch(() => undefined);
  await undoFault('auth-bug-release').catch(() => undefined);
  await undoFault('stop-db').catch(() => undefined);
  await waitUntil('api healthy', async () => (await health())?.status === 'ok');
  await engine.stop();
});

test('a working admin sign-in is a false alarm: nothing is done', async () => {
  const before = await apiConfig();
  const h = await engine.start({ runbook: 'authFailure', target: 'alfred' });
  const rec = await engine.result(h);
  expect(rec.outcome).toBe('false-alarm');
  expect(rec.diagnosis).toMatch(/admin@alfred\.local/);
  expect(rec.findings.find((f) => f.check === 'key-hash self-check')?.ok).toBe(true);
  expect(rec.actions).toEqual([]);
  expect(rec.children).toEqual([]);
  expect((await apiConfig()).startedAt).toBe(before.startedAt);
});

test('SSO provider down: after approval the api is recreated with SSO_REQUIRED=false, same image', async () => {
  await injectFault('sso-down');
  const before = await apiConfig();
  // Booleans only: the container environment holds secrets that must not reach test output.
  expect(before.env.includes('SSO_REQUIRED=true')).toBe(true);

  const h = await engine.start({ runbook: 'authFailure', target: 'alfred', requestedBy: 'alertmanager' });
  await engine.waitFor(h, (s) => s.pending.some((p) => p.stepId === 'disable-sso'));
  await h.signal(approveSignal, { incidentId: h.workflowId, stepId: 'disable-sso', approver: 'alice' });
  const rec = await engine.result(h);

  expect(rec.outcome).toBe('resolved');
  expect(rec.diagnosis).toMatch(/SSO provider is unreachable/);
  expect(rec.findings.find((f) => f.check === 'auth errors in api logs')?.detail).toMatch(/sso_provider_unreachable/);
  expect(rec.actions).toEqual([expect.objectContaining({ stepId: 'disable-sso', state: 'done', approvals: ['alice'] })]);
  expect(rec.timeline.some((t) => /verification passed: \/v1\/users\/me returns admin@alfred\.local/.test(t.event))).toBe(true);
  const after = await apiConfig();
  expect(after.env.includes('SSO_REQUIRED=false')).toBe(true);
  expect(after.env.includes('SSO_REQUIRED=true')).toBe(false);
  expect(after.image).toBe(before.image);
  // Everything else of the container's environment is kept.
  const others = (env: string[]): string => env.filter((e) => !/^(SSO_REQUIRED|HOSTNAME)=/.test(e)).sort().join('\n');
  expect(others(after.env) === others(before.env)).toBe(true);
  await undoFault('sso-down');
});

test('bad deploy: a parent approval covers the child rollback, whose timeline joins the parent record', async () => {
  await injectFault('auth-bug-release');
  expect((await apiConfig()).image).toMatch(/:1\.2\.1-authbug$/);

  const h = await engine.start({ runbook: 'authFailure', target: 'alfred', requestedBy: 'alertmanager' });
  await engine.waitFor(h, (s) => s.pending.some((p) => p.stepId === 'rollback-release'));
  await h.signal(approveSignal, { incidentId: h.workflowId, stepId: 'rollback-release', approver: 'alice' });
  const rec = await engine.result(h);

  expect(rec.outcome).toBe('resolved');
  expect(rec.diagnosis).toMatch(/1\.2\.1-authbug .*bad deploy/);
  expect(rec.actions).toEqual([expect.objectContaining({ stepId: 'rollback-release', state: 'done', approvals: ['alice'] })]);
  expect(rec.children).toEqual([`${h.workflowId}.rollback.1`]);
  const child = await childRecord(rec.children[0] as string);
  expect(child).toMatchObject({ outcome: 'resolved', parentIncidentId: h.workflowId });
  // The parent's approver counts for the child's single-approver step: nobody was asked twice.
  expect(child.actions).toEqual([expect.objectContaining({ stepId: 'recreate-api', state: 'done', approvals: ['alice'] })]);
  expect(rec.timeline.some((t) => /^\[rollback\] recreate-api approved by alice through step rollback-release/.test(t.event))).toBe(true);
  expect(rec.timeline.some((t) => /^\[rollback\] recreate-api health gate passed/.test(t.event))).toBe(true);
  const after = await apiConfig();
  expect(after.image).toMatch(/:1\.1\.0$/);
  expect(after.env.includes('DRILL_AUTH_BUG=1')).toBe(false);
});

test('bad deploy, rollback rejected: the parent escalates, stays open and nothing changes', async () => {
  await injectFault('auth-bug-release');
  const h = await engine.start({ runbook: 'authFailure', target: 'alfred', requestedBy: 'alertmanager' });
  await engine.waitFor(h, (s) => s.pending.some((p) => p.stepId === 'rollback-release'));
  await h.signal(rejectSignal, { incidentId: h.workflowId, stepId: 'rollback-release', approver: 'bob', comment: 'roll forward instead' });
  const rec = await engine.waitFor(h, (s) => s.phase === 'ESCALATED');
  expect(rec.actions).toEqual([expect.objectContaining({ stepId: 'rollback-release', state: 'rejected', rejectedBy: 'bob' })]);
  expect(rec.children).toEqual([]);
  expect((await h.describe()).status.name).toBe('RUNNING');
  expect((await apiConfig()).image).toMatch(/:1\.2\.1-authbug$/);
  await h.signal(closeSignal, { incidentId: h.workflowId, by: 'bob', note: 'rolled forward by hand' });
  expect((await engine.result(h)).outcome).toBe('escalated');
  await undoFault('auth-bug-release');
});

test('database down: a child INC-01 restarts the database on its own, then sign-in is verified', async () => {
  await injectFault('stop-db');
  const h = await engine.start({ runbook: 'authFailure', target: 'alfred', requestedBy: 'alertmanager' });
  const rec = await engine.result(h);

  expect(rec.outcome).toBe('resolved');
  expect(rec.findings.find((f) => f.check === 'users table')?.ok).toBe(false);
  expect(rec.actions).toEqual([expect.objectContaining({ stepId: 'database-incident', state: 'done', risk: 'auto' })]);
  expect(rec.children).toEqual([`${h.workflowId}.databaseUnreachable.1`]);
  const child = await childRecord(rec.children[0] as string);
  expect(child.outcome).toBe('resolved');
  expect(child.actions.find((a) => a.stepId === 'restart-db')?.state).toBe('done');
  expect(rec.timeline.some((t) => /^\[databaseUnreachable\] restart-db:/.test(t.event))).toBe(true);
  expect((await (await drillContainer(engine.docker, 'db')).inspect()).State.Running).toBe(true);
});
