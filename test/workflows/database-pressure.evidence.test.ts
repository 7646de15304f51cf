/**
 * Database pressure, evidence before conclusions as pure decisions: pressure that could not be read
 * is never "no pressure", and a verification that cannot read it is no recovery.
 */
import { planDatabasePressure, verifyPressure, type PressureFacts } from '../../src/workflows/database-pressure';
import type { DbPressure } from '../../src/activities/postgres/pg-pressure';
import { healthyDatabasePressure } from '../fixtures/healthy-facts';

const calm: DbPressure = {
  ...healthyDatabasePressure.pressure,
  maxConnections: 100,
  totalConnections: 12,
  usedPct: 12,
  byRole: [{ role: 'alfred', total: 10, active: 1, idle: 9, idleInTransaction: 0, limit: -1 }],
};
const unreachable: DbPressure = { ok: false, error: 'psql -U garbled ended: FATAL: role "garbled" does not exist', maxConnections: 0, totalConnections: 0, usedPct: 0, byRole: [], lockWaits: [], blockers: [] };
const facts = (pressure: DbPressure, evidenceRule = true): PressureFacts => ({ ...healthyDatabasePressure, pressure, ...(evidenceRule ? { evidenceRule } : {}) });

describe('database pressure plan', () => {
  test('calm facts are a false alarm (control)', () => {
    expect(planDatabasePressure(facts(calm))).toMatchObject({ falseAlarm: true, steps: [] });
  });

  test('a session the engine cannot open escalates naming what it could not observe and the settings', () => {
    const p = planDatabasePressure(facts(unreachable));
    expect(p.steps).toEqual([]);
    expect(p.falseAlarm).toBeUndefined();
    expect(p.escalate).toMatch(/^could not observe connections, locks and slow queries: .*role "garbled" does not exist.*postgres\.adminUser/);
  });

  test('max_connections that could not be read is not 0 % used', () => {
    const p = planDatabasePressure(facts({ ...calm, maxConnections: 0, usedPct: 0 }));
    expect(p.steps).toEqual([]);
    expect(p.escalate).toMatch(/could not observe connections, locks and slow queries: SHOW max_connections gave no number/);
  });

  test('incidents started before the rule escalated an unreachable database as they did', () => {
    expect(planDatabasePressure(facts(unreachable, false)).escalate).toBe('the database is unreachable: run the databaseUnreachable runbook');
  });
});

describe('database pressure verification', () => {
  test('a calm reading is recovery (control)', () => {
    expect(verifyPressure(facts(calm)).ok).toBe(true);
  });

  test('a reading that could not be taken is unknown', () => {
    const c = verifyPressure(facts(unreachable));
    expect(c.ok).toBe(false);
    expect(c.unknown).toMatch(/^connections, locks and slow queries: .*postgres\.adminUser/);
  });

  test('lock waits still there are a failure, not unknown', () => {
    const c = verifyPressure(facts({ ...calm, lockWaits: [{ pid: 3, role: 'alfred', waitSeconds: 9, blockedBy: [2], query: 'UPDATE …' }] }));
    expect(c).toMatchObject({ ok: false });
    expect(c.unknown).toBeUndefined();
  });
});
