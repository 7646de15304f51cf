/**
 * INC-01, evidence before conclusions as pure decisions: a signal that could not be observed never
 * makes the database "healthy", never restarts it, and /health without its field is no recovery.
 */
import { planDatabaseUnreachable, verifyDatabase, type DbFacts } from '../../src/workflows/database-unreachable';
import { healthyDatabaseUnreachable } from '../fixtures/healthy-facts';

const healthy = (over: Partial<DbFacts> = {}): DbFacts => ({
  ...healthyDatabaseUnreachable,
  diskUsedPct: 40,
  evidenceRule: true,
  unobserved: [],
  ...over,
});

/** Never a plain false alarm and never a step: an escalation, or a false alarm that says what it could not observe. */
function expectNoConclusion(p: ReturnType<typeof planDatabaseUnreachable>, signal: RegExp): void {
  expect(p.steps).toEqual([]);
  if (p.falseAlarm) expect(p.diagnosis).toMatch(new RegExp(`could not observe ${signal.source}`));
  else expect(p.escalate).toMatch(new RegExp(`could not observe ${signal.source}`));
}

describe('INC-01 plan with a signal unobserved', () => {
  test('healthy facts are a false alarm (control)', () => {
    const p = planDatabaseUnreachable(healthy());
    expect(p).toEqual({ diagnosis: expect.stringMatching(/^database healthy: /), falseAlarm: true, steps: [] });
  });

  test('the pool gauge missing from /metrics', () => {
    const { pool: _pool, ...f } = healthy({ unobserved: ['api DB pool: metric x_pool_total not in /metrics (setting metrics.dbPoolTotal)'] });
    expectNoConclusion(planDatabaseUnreachable(f), /api DB pool: metric x_pool_total/);
  });

  test('/health without its database field', () => {
    const { apiDbHealthy: _h, ...f } = healthy({ unobserved: ["api /health database: GET /health answered HTTP 200 without a `database` field"] });
    expectNoConclusion(planDatabaseUnreachable(f), /api \/health database/);
  });

  test('df failing in the db container', () => {
    const { diskUsedPct: _d, ...f } = healthy({ unobserved: ['data-dir disk: df -P /x failed in the db container: no such file (setting postgres.dataDir)'] });
    expectNoConclusion(planDatabaseUnreachable(f), /data-dir disk/);
  });

  test('SELECT 1 refused for the engine login: escalates, never restarts the database', () => {
    const why = 'the engine\'s session was refused: FATAL: database "nope" does not exist (settings targets.t.postgres.database, targets.t.postgres.execUser)';
    const p = planDatabaseUnreachable(healthy({ selectOk: false, selectError: 'database "nope" does not exist', selectUnobserved: why, unobserved: [`SELECT 1: ${why}`] }));
    expectNoConclusion(p, /SELECT 1: the engine's session was refused/);
    expect(p.escalate).toMatch(/postgres\.database/);
  });

  test('SELECT 1 refused for the login, even with /health unhealthy: no api restart chosen from it', () => {
    const why = 'the engine\'s session was refused: FATAL: role "nope" does not exist (settings ...)';
    const p = planDatabaseUnreachable(healthy({ selectOk: false, selectUnobserved: why, apiDbHealthy: false, unobserved: [`SELECT 1: ${why}`] }));
    expect(p.steps).toEqual([]);
    expect(p.escalate).toMatch(/^could not observe SELECT 1/);
  });

  test('observed problems still choose their step with other signals unobserved', () => {
    const p = planDatabaseUnreachable(healthy({ dbRunning: false, dbStatus: 'exited', unobserved: ['api DB pool: /metrics unavailable: ECONNREFUSED'] }));
    expect(p.steps).toEqual(['restart-db']);
  });

  test('a SELECT 1 that fails for the server (not the login) still restarts it', () => {
    const p = planDatabaseUnreachable(healthy({ selectOk: false, selectError: 'timeout', apiDbHealthy: false }));
    expect(p.steps).toEqual(['restart-db']);
  });
});

describe('INC-01 verification', () => {
  const f = { evidenceRule: true };
  test('/health reporting the database healthy is recovery (control)', () => {
    expect(verifyDatabase({ status: 200, body: { database: 'healthy' } }, f)).toEqual({ ok: true, detail: '/health database: healthy' });
  });

  test('/health unhealthy is a failure, not unknown', () => {
    const c = verifyDatabase({ status: 503, body: { database: 'unhealthy' } }, f);
    expect(c.ok).toBe(false);
    expect(c.unknown).toBeUndefined();
  });

  test('/health without the field is unknown', () => {
    const c = verifyDatabase({ status: 200, body: { status: 'ok' } }, f);
    expect(c.ok).toBe(false);
    expect(c.unknown).toMatch(/^api \/health database: .*answered HTTP 200 without a `database` field/);
  });

  test('no answer from /health is unknown', () => {
    const c = verifyDatabase({ status: 0, body: null, error: 'ECONNREFUSED' }, f);
    expect(c.ok).toBe(false);
    expect(c.unknown).toMatch(/no answer from GET \/health.*ECONNREFUSED/);
  });

  test('incidents started before the rule read a missing field as failing, as they did', () => {
    expect(verifyDatabase({ status: 200, body: {} }, {})).toEqual({ ok: false, detail: '/health database: 200' });
  });
});
