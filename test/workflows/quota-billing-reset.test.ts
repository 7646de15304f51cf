/**
 * INC-07, the missed billing reset, on the real drill target: the billing-reset-missed fault switches
 * the reset cron off, leaves the running period un-reset and lets three users carry last period's
 * usage, so one of them really gets 402. The runbook reads the billing period from the admin API,
 * triggers the reset after approval (no top-up), and the user is served again. The other INC-07
 * branches, with the reset done, are drilled in quota-exhaustion.test.ts.
 */
import type { Client as PgClient } from 'pg';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { Activities } from '../../src/activities';
import { approveSignal } from '../../src/workflows/contracts';
import { periodStart } from '../../drill/src/faults/replica-formats';
import { CARRYOVER_USER_IDS } from '../../drill/src/faults/billing';
import { startEngine, waitUntil, type Engine } from '../helpers/engine';
import { API, drillPg, health, injectFault, undoFault } from '../helpers/drill';

jest.setTimeout(180_000);

const GRACE = { id: 8, key: 'test-key-7' }; // one of the users the fault leaves at their quota
let engine: Engine;
let acts: Activities;
let db: PgClient;
let snapshot: { users: { id: string; used_tokens: string }[]; lastLog: string };

async function chat(key: string): Promise<number> {
  const res = await fetch(`${API}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: `billing drill ${Date.now()} ${Math.random()}` }],
    }),
  });
  await res.text();
  return res.status;
}

const billingStatus = () => new MockActivityEnvironment().run(acts.billingStatus, { target: 'alfred' });

beforeAll(async () => {
  await waitUntil('drill healthy', async () => (await health())?.status === 'ok', 90_000);
  engine = await startEngine();
  acts = engine.activities;
  db = drillPg();
  await db.connect();
  const users = await db.query<{ id: string; used_tokens: string }>(
    'SELECT id::text AS id, used_tokens::text AS used_tokens FROM users',
  );
  const last = await db.query<{ id: string }>('SELECT coalesce(max(id), 0)::text AS id FROM request_logs');
  snapshot = { users: users.rows, lastLog: last.rows[0]?.id ?? '0' };
});

afterAll(async () => {
  // The fault's undo puts back the cron, the period's reset rows and every user's usage.
  await undoFault('billing-reset-missed').catch(() => undefined);
  await db.query('DELETE FROM request_logs WHERE id > $1', [snapshot.lastLog]);
  for (const u of snapshot.users)
    await db.query('UPDATE users SET used_tokens = $2 WHERE id = $1', [u.id, u.used_tokens]);
  await db.end();
  await engine.stop();
});

test('a missed billing reset: the reset is triggered after approval, once, and the refused user gets 200 again', async () => {
  await injectFault('billing-reset-missed');
  const period = periodStart(new Date());
  expect(await billingStatus()).toMatchObject({
    available: true,
    periodStart: period,
    resetDue: true,
    cronEnabled: false,
  });
  expect(await chat(GRACE.key)).toBe(402);

  const h = await engine.start({
    runbook: 'quotaExhaustion',
    target: 'alfred',
    requestedBy: 'alertmanager',
    params: { windowMinutes: 2 },
  });
  const waiting = await engine.waitFor(h, (s) => s.pending.some((p) => p.stepId === 'trigger-billing-reset'));
  expect(waiting.diagnosis).toMatch(
    new RegExp(`ids [\\d, ]*\\b${GRACE.id}\\b.*missed billing reset: the period starting ${period} was never reset`),
  );
  expect(waiting.severity).toBe(2);
  expect(waiting.actions.map((a) => a.stepId)).toEqual(['trigger-billing-reset']); // no top-up
  const finding = waiting.findings.find((f) => f.check === 'billing reset for the current period');
  expect(finding).toMatchObject({ ok: false });
  expect(finding?.detail).toMatch(/reset DUE.*reset cron off/);
  await h.signal(approveSignal, { incidentId: h.workflowId, stepId: 'trigger-billing-reset', approver: 'alice' });
  const rec = await engine.result(h);

  expect(rec.outcome).toBe('resolved');
  expect(rec.rootCause).toMatch(
    new RegExp(`billing reset for the period starting ${period} did not run; the reset cron is disabled`),
  );
  expect(rec.actions).toEqual([
    expect.objectContaining({ stepId: 'trigger-billing-reset', state: 'done', approvals: ['alice'] }),
  ]);
  expect(
    rec.timeline.some((t) => /verification passed: all \d+ affected users are under their quota/.test(t.event)),
  ).toBe(true);

  // The real effect: one manual reset recorded for this period, last period's usage gone, served again.
  const resets = await db.query<{ trigger: string; users_reset: number }>(
    'SELECT trigger, users_reset FROM billing_resets WHERE period_start = $1',
    [period],
  );
  expect(resets.rows).toEqual([{ trigger: 'manual', users_reset: expect.any(Number) as number }]);
  expect(resets.rows[0]?.users_reset).toBeGreaterThanOrEqual(CARRYOVER_USER_IDS.length);
  const used = await db.query<{ id: string; used_tokens: string }>(
    'SELECT id::text AS id, used_tokens::text AS used_tokens FROM users WHERE id = ANY($1::bigint[])',
    [CARRYOVER_USER_IDS],
  );
  expect(used.rows.map((u) => Number(u.used_tokens))).toEqual(CARRYOVER_USER_IDS.map(() => 0));
  expect(await billingStatus()).toMatchObject({ resetDue: false, lastResetPeriodStart: period });
  expect(await chat(GRACE.key)).toBe(200);

  // A repeated reset (a retry, a second incident) finds the period's row and changes nothing.
  const again: { body: unknown } = await new MockActivityEnvironment().run(acts.adminRequest, {
    target: 'alfred',
    method: 'POST' as const,
    path: '/v1/admin/billing/reset',
    body: { period_start: period },
  });
  expect(again.body).toMatchObject({ period_start: period, idempotent: true });
  expect((await db.query('SELECT 1 FROM billing_resets WHERE period_start = $1', [period])).rowCount).toBe(1);
  const grace = await db.query<{ used: string }>('SELECT used_tokens::text AS used FROM users WHERE id = $1', [
    GRACE.id,
  ]);
  expect(Number(grace.rows[0]?.used)).toBeGreaterThan(0); // the 200 above was charged and not wiped again
});

test('with the reset done, the billing finding is ok and the usual false alarm stands', async () => {
  await undoFault('billing-reset-missed');
  expect(await billingStatus()).toMatchObject({ resetDue: false, cronEnabled: true });
  const h = await engine.start({ runbook: 'quotaExhaustion', target: 'alfred', params: { windowMinutes: 0.05 } });
  const rec = await engine.result(h);
  expect(rec.outcome).toBe('false-alarm');
  expect(rec.findings.find((f) => f.check === 'billing reset for the current period')).toMatchObject({ ok: true });
  expect(rec.actions).toEqual([]);
});
