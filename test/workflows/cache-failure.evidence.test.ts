/**
 * INC-05, evidence before conclusions as pure decisions: the api's view of Redis that could not be
 * read is neither healthy nor recovered, and a write refused for another reason than memory does
 * not evict keys or raise maxmemory.
 */
import { planCacheFailure, verifyCache } from '../../src/workflows/cache-failure';
import { healthyCacheFacts } from '../fixtures/healthy-facts';

const healthy = healthyCacheFacts;

describe('INC-05 plan with a signal unobserved', () => {
  test('healthy facts are a false alarm (control)', () => {
    const p = planCacheFailure(healthy(), 't');
    expect(p.falseAlarm).toBe(true);
    expect(p.diagnosis).toBe('Redis healthy: PONG, writes accepted, memory within limits');
  });

  test("the api's view of Redis unreadable: a false alarm that says what it could not observe, no step", () => {
    const { apiSeesRedis: _a, ...f } = healthy({
      unobserved: ['api /health redis: GET /health answered without `cache` (set targets.t.api.fields.health.redis to the field that holds it)'],
    });
    const p = planCacheFailure(f, 't');
    expect(p.steps).toEqual([]);
    expect(p.falseAlarm).toBe(true);
    expect(p.diagnosis).toMatch(/could not observe api \/health redis: .*api\.fields\.health\.redis/);
  });

  test('a write refused for another reason than memory escalates, no eviction', () => {
    const p = planCacheFailure(healthy({ writeOk: false, writeError: "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk" }), 't');
    expect(p.steps).toEqual([]);
    expect(p.escalate).toMatch(/refuses writes for another reason than memory \(MISCONF/);
  });

  test('a write refused for memory still evicts after approval', () => {
    const p = planCacheFailure(healthy({ writeOk: false, writeError: "OOM command not allowed when used memory > 'maxmemory'." }), 't');
    expect(p.steps).toEqual(['evict-cache', 'raise-maxmemory']);
  });

  test('incidents started before the rule read any refused write as memory, as they did', () => {
    const { unobserved: _u, ...f } = healthy({ writeOk: false, writeError: 'READONLY' });
    expect(planCacheFailure(f, 't').steps).toEqual(['evict-cache', 'raise-maxmemory']);
  });
});

describe('INC-05 verification', () => {
  const f = { unobserved: [] };
  const pong = { ok: true, reply: 'PONG' };
  test('PONG, a write and the api seeing Redis healthy is recovery (control)', () => {
    expect(verifyCache(pong, { ok: true }, { state: 'healthy', detail: 'healthy' }, f).ok).toBe(true);
  });

  test("the api's view unreadable is unknown, not recovery", () => {
    const c = verifyCache(pong, { ok: true }, { state: 'unknown', detail: 'GET /health answered without `cache` (set targets.t.api.fields.health.redis ...)' }, f);
    expect(c.ok).toBe(false);
    expect(c.unknown).toMatch(/^api \/health redis: .*api\.fields\.health\.redis/);
  });

  test('no answer from /health is unknown', () => {
    const c = verifyCache(pong, { ok: true }, { state: 'unknown', detail: 'no answer from /health' }, f);
    expect(c).toMatchObject({ ok: false, unknown: 'api /health redis: no answer from /health' });
  });

  test('Redis itself failing is a failure, not unknown', () => {
    const c = verifyCache({ ok: false }, { ok: false }, { state: 'unknown', detail: 'no answer from /health' }, f);
    expect(c.ok).toBe(false);
    expect(c.unknown).toBeUndefined();
  });

  test('incidents started before the rule let an unreadable view pass, as they did', () => {
    expect(verifyCache(pong, { ok: true }, { state: 'unknown', detail: 'n/a' }, {}).ok).toBe(true);
  });
});
