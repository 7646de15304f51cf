/** INC-01 drills on the real drill target: each branch chosen by what the diagnostics actually saw. */
import { drillContainer, startEngine, waitUntil, type Engine } from '../helpers/engine';
import { health, processFault } from '../helpers/drill';

jest.setTimeout(180_000);

let engine: Engine;

beforeAll(async () => {
  engine = await startEngine();
});

afterAll(async () => {
  const db = await drillContainer(engine.docker, 'db');
  if (!(await db.inspect()).State.Running) await db.start();
  await processFault('exhaust-pool', false).catch(() => undefined);
  await waitUntil('api sees a healthy database', async () => (await health())?.database === 'healthy');
  await engine.stop();
});

test('a stopped db container is restarted and /health reports the database healthy', async () => {
  const db = await drillContainer(engine.docker, 'db');
  await db.stop({ t: 2 });
  await waitUntil('api sees the database down', async () => (await health())?.database === 'unhealthy');

  const h = await engine.start({ runbook: 'databaseUnreachable', target: 'alfred', requestedBy: 'alertmanager' });
  const rec = await engine.result(h);

  expect(rec.outcome).toBe('resolved');
  expect(rec.diagnosis).toMatch(/db container is (exited|stopped)/);
  expect(rec.findings.find((f) => f.check === 'SELECT 1')?.ok).toBe(false);
  expect(rec.findings.find((f) => f.check === 'server reachable (pg_isready)')?.ok).toBe(false);
  expect(rec.actions).toEqual([expect.objectContaining({ stepId: 'restart-db', state: 'done' })]);
  expect((await db.inspect()).State.Running).toBe(true);
  expect((await health())?.database).toBe('healthy');
});

test('an exhausted api pool (database fine) restarts the api, not the database', async () => {
  const dbBefore = (await (await drillContainer(engine.docker, 'db')).inspect()).State.StartedAt;
  await processFault('exhaust-pool', true);
  await waitUntil('api reports the database unhealthy', async () => (await health())?.database === 'unhealthy');

  const h = await engine.start({ runbook: 'databaseUnreachable', target: 'alfred', requestedBy: 'alertmanager' });
  const rec = await engine.result(h);

  expect(rec.outcome).toBe('resolved');
  expect(rec.rootCause).toMatch(/pool exhausted/);
  expect(rec.findings.find((f) => f.check === 'SELECT 1')?.ok).toBe(true);
  expect(rec.findings.find((f) => f.check === 'api DB pool')?.ok).toBe(false);
  expect(rec.actions).toEqual([expect.objectContaining({ stepId: 'restart-api', state: 'done' })]);
  expect((await (await drillContainer(engine.docker, 'db')).inspect()).State.StartedAt).toBe(dbBefore);
});

test('a healthy database is a false alarm', async () => {
  const h = await engine.start({ runbook: 'databaseUnreachable', target: 'alfred' });
  const rec = await engine.result(h);
  expect(rec.outcome).toBe('false-alarm');
  expect(rec.actions).toEqual([]);
  expect(rec.findings.find((f) => f.check === 'data-dir disk')?.detail).toMatch(/% used/);
});
