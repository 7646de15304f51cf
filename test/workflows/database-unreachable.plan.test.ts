/** databaseUnreachable's decision: a pure function over its findings, no Temporal needed. */
import { planDatabaseUnreachable, type DbFacts } from '../../src/workflows/database-unreachable';
import { healthyDatabaseUnreachable } from '../fixtures/healthy-facts';

const healthyDb: DbFacts = {
  ...healthyDatabaseUnreachable,
  pg: { port: 5432, user: 'postgres', database: 'alfred', dataDir: '/var/lib/postgresql/data', backupPath: '/backups/latest.dump' },
};

describe('databaseUnreachable plan', () => {
  it('restarts a stopped db', () => {
    expect(planDatabaseUnreachable({ ...healthyDb, dbRunning: false, dbStatus: 'exited', reachable: false, selectOk: false }).steps).toEqual(['restart-db']);
  });
  it('restarts the api on pool exhaustion', () => {
    const p = planDatabaseUnreachable({ ...healthyDb, apiDbHealthy: false, pool: { total: 10, idle: 0, waiting: 4, max: 10, usedPct: 100 } });
    expect(p.steps).toEqual(['restart-api']);
    expect(p.rootCause).toMatch(/pool/);
  });
  it('vacuums a full disk (approval step)', () => {
    expect(planDatabaseUnreachable({ ...healthyDb, diskUsedPct: 97 }).steps).toEqual(['vacuum-full']);
  });
  it('restores a corrupted database', () => {
    expect(planDatabaseUnreachable({ ...healthyDb, selectOk: false, corruption: true, selectError: 'invalid page in block 4' }).steps).toEqual([
      'restore-backup',
    ]);
  });
  it('calls a healthy database a false alarm', () => {
    expect(planDatabaseUnreachable(healthyDb).falseAlarm).toBe(true);
  });
});
