/**
 * Database pressure drills on the real drill target: a real open transaction really blocks real
 * sessions, the api really runs slow queries, real idle sessions really flood the server; the
 * runbook really terminates exactly the sessions it re-listed, or really limits the role.
 * Thresholds are lowered for this file (slow = 5 s, connections 70 %) so the drills stay short.
 */
import { runFault } from '../../drill/src/faults/catalog';
import { FaultContext } from '../../drill/src/faults/context';
import { approveSignal } from '../../src/workflows/contracts';
import { startEngine, waitUntil, type Engine } from '../helpers/engine';
import { processFault } from '../helpers/drill';

jest.setTimeout(180_000);

let engine: Engine;
const drill = new FaultContext();
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function sessions(where: string, params: unknown[] = []): Promise<Array<{ pid: number; app: string }>> {
  const { rows } = await (
    await drill.pg()
  ).query<{ pid: number; app: string }>(
    `SELECT pid, application_name AS app FROM pg_stat_activity WHERE ${where} ORDER BY pid`,
    params,
  );
  return rows;
}

async function connLimit(): Promise<number> {
  const { rows } = await (
    await drill.pg()
  ).query<{ l: number }>("SELECT rolconnlimit AS l FROM pg_roles WHERE rolname = 'alfred'");
  return rows[0]?.l ?? -2;
}

beforeAll(async () => {
  engine = await startEngine({
    configure: (cfg) => {
      const pressure = cfg.targets.alfred?.postgres?.pressure;
      if (pressure) Object.assign(pressure, { longQuerySeconds: 5, connectionsPct: 70 });
    },
  });
});

afterAll(async () => {
  // Leave the drill as we found it: no fault sessions, no slow queries, no connection limit.
  try {
    await processFault('slow-queries', false).catch(() => undefined);
    await runFault('lock-contention', true);
    await runFault('connection-flood', true);
    await (await drill.pg()).query('ALTER ROLE alfred CONNECTION LIMIT -1');
  } finally {
    await drill.close();
    await engine.stop();
  }
});

test('no lock waits, slow queries or crowding is a false alarm: nothing is terminated', async () => {
  const h = await engine.start({ runbook: 'databasePressure', target: 'alfred' });
  const rec = await engine.result(h);
  expect(rec.outcome).toBe('false-alarm');
  expect(rec.diagnosis).toMatch(/^no pressure: \d+\/60 connections/);
  expect(rec.actions).toEqual([]);
  expect(rec.report).toMatch(/Reply to the customer \(resolution\)/);
});

test('an open transaction blocking three sessions: the blocker is terminated after approval and the waiters proceed', async () => {
  await runFault('lock-contention', false, { waiters: '3' });
  const [holder] = await sessions("application_name = 'drill-lock-holder'");
  expect(holder).toBeDefined();
  await pause(6000); // waits count once they pass the configured 5 s

  const h = await engine.start({ runbook: 'databasePressure', target: 'alfred', requestedBy: 'dave' });
  const waiting = await engine.waitFor(h, (s) => s.pending.some((p) => p.stepId === 'terminate-blockers'));
  expect(waiting.diagnosis).toBe(`3 session(s) wait on locks held by pid ${holder?.pid}`);
  expect(waiting.rootCause).toMatch(/idle in transaction/);
  expect(waiting.findings.find((f) => f.check === 'blocking sessions')?.detail).toMatch(
    new RegExp(
      `pid ${holder?.pid} \\(alfred, idle in transaction, transaction open \\d+ s, blocks \\d\\): (BEGIN; )?UPDATE wallets`,
    ),
  );
  expect(waiting.actions.map((a) => a.stepId)).toEqual(['terminate-blockers']);
  expect(waiting.report).toMatch(/terminate the blocking session\(s\) \d+ \(after approval, if still blocking\)/);
  expect(await sessions("application_name = 'drill-lock-holder'")).toHaveLength(1);

  await h.signal(approveSignal, { incidentId: h.workflowId, stepId: 'terminate-blockers', approver: 'alice' });
  const rec = await engine.result(h);
  expect(rec.outcome).toBe('resolved');
  expect(rec.actions[0]).toMatchObject({
    stepId: 'terminate-blockers',
    state: 'done',
    approvals: ['alice'],
    detail: `terminated ${holder?.pid}`,
  });
  expect(rec.timeline.some((t) => /verification passed: 0 lock wait\(s\), 0 slow queries/.test(t.event))).toBe(true);
  // The real effect: the holder is gone and the waiters got their lock, finished and left.
  expect(await sessions("application_name = 'drill-lock-holder'")).toEqual([]);
  await waitUntil(
    'waiters done',
    async () => (await sessions("application_name = 'drill-lock-waiter'")).length === 0,
    10_000,
  );
});

test('slow queries are terminated after approval, only the ones re-listed', async () => {
  await processFault('slow-queries', true, { count: 2, seconds: 300 });
  try {
    await pause(6000);
    const slow = await sessions("query LIKE '%pg_sleep%' AND state = 'active' AND application_name = 'alfred-api'");
    expect(slow).toHaveLength(2);

    const h = await engine.start({ runbook: 'databasePressure', target: 'alfred', requestedBy: 'dave' });
    const waiting = await engine.waitFor(h, (s) => s.pending.some((p) => p.stepId === 'terminate-slow-queries'));
    expect(waiting.diagnosis).toBe('2 queries run longer than 5 s');
    expect(waiting.findings.find((f) => f.check === 'slow queries > 5 s')?.detail).toMatch(/pg_sleep/);

    await h.signal(approveSignal, { incidentId: h.workflowId, stepId: 'terminate-slow-queries', approver: 'bob' });
    const rec = await engine.result(h);
    expect(rec.outcome).toBe('resolved');
    expect(rec.actions[0]).toMatchObject({ stepId: 'terminate-slow-queries', state: 'done', approvals: ['bob'] });
    expect(rec.actions[0]?.detail).toBe(`terminated ${slow.map((s) => s.pid).join(', ')}`);
    expect(await sessions("query LIKE '%pg_sleep%' AND state = 'active' AND application_name = 'alfred-api'")).toEqual(
      [],
    );
  } finally {
    await processFault('slow-queries', false);
  }
});

test('a connection flood by the app role: its CONNECTION LIMIT is lowered and its surplus idle sessions end', async () => {
  await runFault('connection-flood', false, { connections: '40' });
  expect((await sessions("application_name = 'drill-connection-flood'")).length).toBe(40);
  await pause(5500); // the flood's sessions have been idle longer than the trim's 5 s

  const h = await engine.start({ runbook: 'databasePressure', target: 'alfred', requestedBy: 'dave' });
  const waiting = await engine.waitFor(h, (s) => s.pending.some((p) => p.stepId === 'limit-connections'));
  expect(waiting.diagnosis).toMatch(/^\d+ of 60 connections in use \(\d+(\.\d)?%\), most by alfred \(\d+\)$/);
  expect(waiting.findings.find((f) => f.check === 'connections / max_connections')?.ok).toBe(false);
  expect(await connLimit()).toBe(-1);

  await h.signal(approveSignal, { incidentId: h.workflowId, stepId: 'limit-connections', approver: 'alice' });
  const rec = await engine.result(h);
  expect(rec.outcome).toBe('resolved');
  expect(rec.actions[0]?.detail).toMatch(
    /^alfred limited to 20 connections \(was unlimited\); ended \d+ idle alfred session\(s\)$/,
  );
  // The real effect: the limit is in place and alfred holds no more than 20 sessions.
  expect(await connLimit()).toBe(20);
  expect((await sessions("usename = 'alfred' AND datname = 'alfred'")).length).toBeLessThanOrEqual(20);
});
