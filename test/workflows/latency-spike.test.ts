/**
 * INC-04 drills on the real drill target: real long queries (the in-process slow-queries fault) are
 * really terminated after approval, and a really leaking api is handed to INC-11 as a child
 * incident that recreates it with a memory limit.
 */
import type { Client as PgClient } from 'pg';
import { approveSignal } from '../../src/workflows/contracts';
import { drillContainer, startEngine, waitUntil, type Engine } from '../helpers/engine';
import { apiWithoutMemoryLimit, drillPg, health, processFault } from '../helpers/drill';

jest.setTimeout(180_000);

const MB = 1024 * 1024;
/** The target's slow-query threshold in these drills, seconds (the least the configuration takes). */
const SLOW = 5;
let engine: Engine;

function pg(database: string): PgClient {
  return drillPg(database);
}

/**
 * Non-idle sessions of the drill database running pg_sleep, as pg_stat_activity reports them; with
 * `olderThanSeconds`, only those running longer than that.
 */
async function sleepers(database: string, olderThanSeconds = 0): Promise<number[]> {
  const c = pg('postgres');
  await c.connect();
  try {
    const r = await c.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND state = 'active' AND query LIKE 'SELECT pg_sleep%' AND pid <> pg_backend_pid()
         AND now() - query_start > make_interval(secs => $2)`,
      [database, olderThanSeconds],
    );
    return r.rows.map((x) => x.pid);
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  // Short threshold from configuration, so the drill's queries count as long within seconds.
  engine = await startEngine({
    configure: (cfg) => {
      const t = cfg.targets.alfred;
      if (t) t.thresholds.slowQuerySeconds = SLOW;
    },
  });
});

afterAll(async () => {
  await processFault('slow-queries', false).catch(() => undefined);
  await processFault('memory-growth', false).catch(() => undefined);
  await apiWithoutMemoryLimit(engine);
  await engine.stop();
});

test('long queries of the target database are terminated after approval; other databases are untouched', async () => {
  await waitUntil('api healthy', async () => (await health())?.status === 'ok');
  await processFault('slow-queries', true, { count: 2, seconds: 300 });
  // A long query in another database on the same server: not the target's, never touched.
  const other = pg('postgres');
  await other.connect();
  other.on('error', () => undefined);
  const otherQuery = other.query('SELECT pg_sleep(90)').catch(() => undefined);
  try {
    // Both queries past the threshold by the server's own clock, with a second to spare.
    await waitUntil(`queries older than ${SLOW + 1} s`, async () => (await sleepers('alfred', SLOW + 1)).length === 2, 20_000);
    const slow = await sleepers('alfred');
    const elsewhere = await sleepers('postgres');
    expect(elsewhere).toHaveLength(1);

    const h = await engine.start({ runbook: 'latencySpike', target: 'alfred', requestedBy: 'alertmanager' });
    const waiting = await engine.waitFor(h, (s) => s.pending.some((p) => p.stepId === 'terminate-long-queries'));
    expect(waiting.diagnosis).toMatch(new RegExp(`2 queries running > ${SLOW} s`));
    expect(waiting.findings.find((f) => f.check === `queries running > ${SLOW} s`)?.detail).toMatch(/pg_sleep/);
    expect(waiting.actions.map((a) => a.stepId)).toEqual(['terminate-long-queries']);

    await h.signal(approveSignal, { incidentId: h.workflowId, stepId: 'terminate-long-queries', approver: 'alice' });
    const rec = await engine.result(h);

    expect(rec.outcome).toBe('resolved');
    const step = rec.actions.find((a) => a.stepId === 'terminate-long-queries');
    expect(step).toMatchObject({ state: 'done', approvals: ['alice'] });
    for (const pid of slow) expect(step?.detail).toContain(String(pid));
    expect(rec.timeline.some((t) => /verification passed: p95 \d+ ms/.test(t.event))).toBe(true);
    // The real effect: gone from pg_stat_activity; the other database's query still runs.
    expect(await sleepers('alfred')).toEqual([]);
    expect(await sleepers('postgres')).toEqual(elsewhere);
  } finally {
    // From a connection of its own: `other` is busy sleeping.
    const admin = pg('alfred');
    await admin.connect();
    await admin.query('SELECT pg_cancel_backend(pid) FROM unnest($1::int[]) AS pid', [await sleepers('postgres')]).finally(() => admin.end());
    await otherQuery;
    await other.end().catch(() => undefined);
  }
});

test('memory growth is handed to INC-11 as a child incident; its timeline joins this one', async () => {
  await processFault('memory-growth', true, { mbPerSecond: 4, maxMb: 1500 });
  const h = await engine.start({
    runbook: 'latencySpike',
    target: 'alfred',
    requestedBy: 'alertmanager',
    params: { memoryLimitMb: 384, watchMs: 5000 },
  });
  await engine.waitFor(h, (s) => s.pending.some((p) => p.stepId === 'hand-off-memory-leak'));
  // One approval here covers the child's single-approver restart.
  await h.signal(approveSignal, { incidentId: h.workflowId, stepId: 'hand-off-memory-leak', approver: 'bob' });
  const rec = await engine.result(h);

  expect(rec.outcome).toBe('resolved');
  expect(rec.diagnosis).toMatch(/api memory growing/);
  expect(rec.children).toEqual([`${h.workflowId}.memoryLeak.1`]);
  expect(rec.actions.find((a) => a.stepId === 'hand-off-memory-leak')).toMatchObject({ state: 'done', approvals: ['bob'] });
  expect(rec.timeline.some((t) => /^\[memoryLeak\] restart-with-limit approved by bob through step hand-off-memory-leak/.test(t.event))).toBe(true);
  expect(rec.timeline.some((t) => /^\[memoryLeak\] verification passed: memory stayed under the 384 MB limit/.test(t.event))).toBe(true);
  const child = await engine.client.workflow.getHandle(`${h.workflowId}.memoryLeak.1`).result();
  expect(child).toMatchObject({ outcome: 'resolved', parentIncidentId: h.workflowId });
  expect((await (await drillContainer(engine.docker, 'api')).inspect()).HostConfig.Memory).toBe(384 * MB);
});

test('a healthy api with no long queries is a false alarm: nothing is done', async () => {
  await processFault('memory-growth', false);
  const before = await (await drillContainer(engine.docker, 'api')).inspect();
  const h = await engine.start({ runbook: 'latencySpike', target: 'alfred' });
  const rec = await engine.result(h);
  expect(rec.outcome).toBe('false-alarm');
  expect(rec.diagnosis).toMatch(/within the SLA now/);
  expect(rec.actions).toEqual([]);
  expect((await (await drillContainer(engine.docker, 'api')).inspect()).State.StartedAt).toBe(before.State.StartedAt);
});
