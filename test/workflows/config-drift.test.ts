/**
 * Config drift on the real drill target: the worker is really recreated with a JWT_SECRET of its
 * own (fault `jwt-drift`), the runbook compares the containers' environment by hash, and after
 * approval really recreates the worker with the api's value. No value, nor any piece of one, may
 * appear in the incident record.
 */
import { runFault } from '../../drill/src/faults/catalog';
import { approveSignal } from '../../src/workflows/contracts';
import { drillContainer, startEngine, type Engine } from '../helpers/engine';
import { decodedHistory } from '../helpers/codec';

jest.setTimeout(180_000);

let engine: Engine;

async function jwtSecret(component: string): Promise<string> {
  const info = await (await drillContainer(engine.docker, component)).inspect();
  const entry = (info.Config.Env ?? []).find((kv) => kv.startsWith('JWT_SECRET='));
  return entry?.slice('JWT_SECRET='.length) ?? '';
}

/** No run of 8 characters of the secret anywhere in the text. */
function leaks(text: string, secret: string): string[] {
  const found: string[] = [];
  for (let i = 0; i + 8 <= secret.length; i++) if (text.includes(secret.slice(i, i + 8))) found.push(secret.slice(i, i + 8));
  return found;
}

beforeAll(async () => {
  engine = await startEngine();
  await runFault('jwt-drift', true);
});

afterAll(async () => {
  await runFault('jwt-drift', true);
  await engine.stop();
});

test('matching secrets: a false alarm, nothing done', async () => {
  const workerBefore = (await (await drillContainer(engine.docker, 'worker')).inspect()).Id;
  const h = await engine.start({ runbook: 'configDrift', target: 'alfred' });
  const rec = await engine.result(h);
  expect(rec.outcome).toBe('false-alarm');
  expect(rec.actions).toEqual([]);
  expect(rec.diagnosis).toMatch(/no drift: JWT_SECRET \(api, worker\) match/);
  expect(rec.findings.find((f) => f.check === 'JWT_SECRET in worker')).toMatchObject({ ok: true });
  expect(rec.report).toMatch(/### Reply to the customer \(resolution\)/);
  expect((await (await drillContainer(engine.docker, 'worker')).inspect()).Id).toBe(workerBefore);
});

test('a drifted worker is found by hash, recreated with the api value after approval, and verified', async () => {
  await runFault('jwt-drift', false);
  const apiSecret = await jwtSecret('api');
  const drifted = await jwtSecret('worker');
  expect(drifted).not.toBe(apiSecret);
  const workerBefore = (await (await drillContainer(engine.docker, 'worker')).inspect()).Id;

  const h = await engine.start({ runbook: 'configDrift', target: 'alfred', requestedBy: 'dave' });
  const waiting = await engine.waitFor(h, (r) => r.pending.some((p) => p.stepId === 'align-jwt-secret-worker'));
  expect(waiting.diagnosis).toMatch(/config drift: JWT_SECRET in worker differs from api/);
  expect(waiting.findings.find((f) => f.check === 'JWT_SECRET in worker')).toMatchObject({ ok: false });
  expect(waiting.report).toMatch(/### Reply to the customer \(initial response\)/);
  // Nothing changes before the approval.
  expect(await jwtSecret('worker')).toBe(drifted);

  await h.signal(approveSignal, { incidentId: h.workflowId, stepId: 'align-jwt-secret-worker', approver: 'alice' });
  const rec = await engine.result(h);
  expect(rec.outcome).toBe('resolved');
  expect(rec.actions).toEqual([expect.objectContaining({ stepId: 'align-jwt-secret-worker', state: 'done', approvals: ['alice'] })]);
  expect(rec.timeline.some((t) => /verification passed: JWT_SECRET equal in every component/.test(t.event))).toBe(true);
  // The real effect: a new worker container holding the api's value.
  expect(await jwtSecret('worker')).toBe(apiSecret);
  expect((await (await drillContainer(engine.docker, 'worker')).inspect()).Id).not.toBe(workerBefore);
  // Never printed, not even partly: not in the record, and so not in what the UI or the report show.
  const text = JSON.stringify(rec);
  expect(leaks(text, apiSecret)).toEqual([]);
  expect(leaks(text, drifted)).toEqual([]);
  // Payloads in the history are bytes (decrypted first): read them as text.
  const history = JSON.stringify(await decodedHistory(h), (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('utf8') : v));
  expect(leaks(history, apiSecret)).toEqual([]);
  expect(leaks(history, drifted)).toEqual([]);
});
