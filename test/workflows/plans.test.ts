/** Decision logic of the runbooks: pure functions over findings, no Temporal needed. */
import { planCacheFailure, type CacheFacts } from '../../src/workflows/cache-failure';
import { planDatabase, type DbFacts } from '../../src/workflows/database-unreachable';
import { planRollback } from '../../src/workflows/rollback';

const healthyCache: CacheFacts = {
  pingOk: true,
  containerRunning: true,
  containerStatus: 'running',
  oomKilled: false,
  writeOk: true,
  slowlogEntries: 0,
  apiSeesRedis: true,
  memoryThresholdPct: 95,
  keyPattern: 'alfred:cache:*',
  memory: { usedBytes: 1e6, peakBytes: 2e6, maxmemoryBytes: 64e6, usedPct: 1.6, policy: 'noeviction' },
};

describe('cacheFailure plan', () => {
  it('restarts a crashed redis', () => {
    const p = planCacheFailure({ ...healthyCache, containerRunning: false, containerStatus: 'exited', pingOk: false }, 'alfred');
    expect(p.steps).toEqual(['restart-redis']);
    expect(p.diagnosis).toMatch(/crashed/);
  });
  it('escalates a running but unreachable redis as a partition, with no automatic step', () => {
    const p = planCacheFailure({ ...healthyCache, pingOk: false, pingError: 'ETIMEDOUT' }, 'alfred');
    expect(p.steps).toEqual([]);
    expect(p.escalate).toMatch(/unreachable/);
  });
  it('evicts then raises maxmemory when at the limit', () => {
    const p = planCacheFailure({ ...healthyCache, writeOk: false, memory: { ...healthyCache.memory!, usedPct: 99.9 } }, 'alfred');
    expect(p.steps).toEqual(['evict-cache', 'raise-maxmemory']);
  });
  it('waits for the api to reconnect when only the api still sees redis down', () => {
    const p = planCacheFailure({ ...healthyCache, apiSeesRedis: false }, 'alfred');
    expect(p.steps).toEqual([]);
    expect(p.falseAlarm).toBeUndefined();
    expect(p.escalate).toBeUndefined();
  });
  it('calls a healthy redis a false alarm', () => {
    const p = planCacheFailure(healthyCache, 'alfred');
    expect(p.falseAlarm).toBe(true);
    expect(p.steps).toEqual([]);
  });
});

const healthyDb: DbFacts = {
  selectOk: true,
  corruption: false,
  reachable: true,
  dbRunning: true,
  dbStatus: 'running',
  apiDbHealthy: true,
  pool: { total: 2, idle: 2, waiting: 0, max: 10, usedPct: 0 },
  diskUsedPct: 20,
  thresholds: { diskUsagePct: 90, poolUsagePct: 90 },
  pg: { port: 5432, user: 'postgres', database: 'alfred', dataDir: '/var/lib/postgresql/data', backupPath: '/backups/latest.dump' },
};

describe('databaseUnreachable plan', () => {
  it('restarts a stopped db', () => {
    expect(planDatabase({ ...healthyDb, dbRunning: false, dbStatus: 'exited', reachable: false, selectOk: false }).steps).toEqual(['restart-db']);
  });
  it('restarts the api on pool exhaustion', () => {
    const p = planDatabase({ ...healthyDb, apiDbHealthy: false, pool: { total: 10, idle: 0, waiting: 4, max: 10, usedPct: 100 } });
    expect(p.steps).toEqual(['restart-api']);
    expect(p.rootCause).toMatch(/pool/);
  });
  it('vacuums a full disk (approval step)', () => {
    expect(planDatabase({ ...healthyDb, diskUsedPct: 97 }).steps).toEqual(['vacuum-full']);
  });
  it('restores a corrupted database', () => {
    expect(planDatabase({ ...healthyDb, selectOk: false, corruption: true, selectError: 'invalid page in block 4' }).steps).toEqual([
      'restore-backup',
    ]);
  });
  it('calls a healthy database a false alarm', () => {
    expect(planDatabase(healthyDb).falseAlarm).toBe(true);
  });
});

describe('rollback plan', () => {
  const base = { healthOk: false, migrationDowngrade: false, restoreBackup: false, pg: healthyDb.pg };
  it('moves only services not already on their target release', () => {
    const p = planRollback({
      ...base,
      services: [
        { service: 'api', current: '1.1.0', goal: '1.0.0', reason: '' },
        { service: 'worker', current: '1.0.0', goal: '1.0.0', reason: '' },
      ],
    });
    expect(p.moves.map((m) => m.service)).toEqual(['api']);
  });
  it('escalates when no good release is known', () => {
    const p = planRollback({ ...base, services: [{ service: 'api', current: '1.0.0', goal: null, reason: 'no older release found' }] });
    expect(p.escalate).toBeDefined();
  });
});
