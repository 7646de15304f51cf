/** cacheFailure's decision: a pure function over its findings, no Temporal needed. */
import { planCacheFailure } from '../../src/workflows/cache-failure';
import { healthyCacheFacts } from '../fixtures/healthy-facts';

// As incidents started before the evidence rule gathered them: no list of unobserved signals.
const { unobserved: _u, ...healthyCache } = healthyCacheFacts({ memory: { usedBytes: 1e6, peakBytes: 2e6, maxmemoryBytes: 64e6, usedPct: 1.6, policy: 'noeviction' } });

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
