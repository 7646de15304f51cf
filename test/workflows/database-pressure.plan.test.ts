/** databasePressure's decision and report: pure functions over findings, no Temporal needed. */
import { planDatabasePressure, pressureReport, type PressureFacts } from '../../src/workflows/database-pressure';
import { healthyDatabasePressure } from '../fixtures/healthy-facts';

const meta = {
  target: 'alfred',
  incidentId: 'incident-x-alfred',
  at: '2026-11-27T10:00:00.000Z',
  severity: 2 as const,
};

const locked: PressureFacts = {
  ...healthyDatabasePressure,
  pressure: {
    ...healthyDatabasePressure.pressure,
    lockWaits: [
      { pid: 11, role: 'alfred', waitSeconds: 40, blockedBy: [10], query: 'UPDATE wallets ...' },
      { pid: 12, role: 'alfred', waitSeconds: 39, blockedBy: [11], query: 'UPDATE wallets ...' },
    ],
    blockers: [
      {
        pid: 10,
        role: 'alfred',
        state: 'idle in transaction',
        xactSeconds: 60,
        blocking: 1,
        query: 'UPDATE wallets ...',
      },
    ],
  },
};
const crowded: PressureFacts = {
  ...healthyDatabasePressure,
  pressure: {
    ...healthyDatabasePressure.pressure,
    totalConnections: 55,
    usedPct: 91.7,
    byRole: [{ role: 'alfred', total: 52, active: 2, idle: 50, idleInTransaction: 0, limit: -1 }],
  },
};

describe('databasePressure plan', () => {
  it('calls a calm database a false alarm', () => {
    const p = planDatabasePressure(healthyDatabasePressure);
    expect(p.falseAlarm).toBe(true);
    expect(p.steps).toEqual([]);
  });
  it('terminates root blockers of lock waits', () => {
    const p = planDatabasePressure(locked);
    expect(p.steps).toEqual(['terminate-blockers']);
    expect(p.diagnosis).toBe('2 session(s) wait on locks held by pid 10');
    expect(p.rootCause).toMatch(/idle in transaction/);
  });
  it('terminates slow queries', () => {
    const p = planDatabasePressure({
      ...healthyDatabasePressure,
      slow: [{ pid: 20, seconds: 95, state: 'active', query: 'SELECT pg_sleep(300)' }],
    });
    expect(p.steps).toEqual(['terminate-slow-queries']);
    expect(p.diagnosis).toBe('1 query runs longer than 30 s');
  });
  it('limits a configured role that crowds the server', () => {
    const p = planDatabasePressure(crowded);
    expect(p.steps).toEqual(['limit-connections']);
    expect(p.role).toBe('alfred');
  });
  it('escalates crowding by a role it may not limit, and does nothing halfway', () => {
    const p = planDatabasePressure({
      ...crowded,
      slow: [{ pid: 20, seconds: 95, state: 'active', query: 'x' }],
      settings: { ...healthyDatabasePressure.settings, limitRoles: [] },
    });
    expect(p.steps).toEqual([]);
    expect(p.escalate).toMatch(/alfred is not one this runbook may limit/);
  });
  it('combines lock, slow-query and crowding remedies in that order', () => {
    const p = planDatabasePressure({
      ...crowded,
      pressure: { ...crowded.pressure, lockWaits: locked.pressure.lockWaits, blockers: locked.pressure.blockers },
      slow: [{ pid: 20, seconds: 95, state: 'active', query: 'x' }],
    });
    expect(p.steps).toEqual(['terminate-blockers', 'terminate-slow-queries', 'limit-connections']);
  });
  it('escalates an unreachable database to its own runbook', () => {
    const p = planDatabasePressure({ ...healthyDatabasePressure, pressure: { ...healthyDatabasePressure.pressure, ok: false, error: 'ECONNREFUSED' } });
    expect(p.escalate).toMatch(/databaseUnreachable/);
  });
});

describe('databasePressure report', () => {
  it('lists the blockers and proposes their termination', () => {
    const md = pressureReport(locked, planDatabasePressure(locked), meta);
    expect(md).toContain('## Database pressure on alfred');
    expect(md).toContain(
      '| blocking sessions | FAIL | pid 10 (alfred, idle in transaction, transaction open 60 s, blocks 1): UPDATE wallets ... |',
    );
    expect(md).toContain('terminate the blocking session(s) 10 (after approval, if still blocking)');
    expect(md).toContain('Reply to the customer (initial response)');
  });
  it('says nothing is wrong for a calm database', () => {
    const md = pressureReport(healthyDatabasePressure, planDatabasePressure(healthyDatabasePressure), meta);
    expect(md).toContain('| connections / max_connections | OK | 8/60 (13.3%, threshold 80%)');
    expect(md).toContain('found our service working as expected');
  });
});
