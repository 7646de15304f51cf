/**
 * INC-04, evidence before conclusions as pure decisions: latency is never "within the SLA" while a
 * signal that could explain it (pool, memory trend, the SLA window) went unobserved.
 */
import { planLatencySpike } from '../../src/workflows/latency-spike';
import { healthyLatencyFacts } from '../fixtures/healthy-facts';

const healthy = healthyLatencyFacts;

function expectNoConclusion(p: ReturnType<typeof planLatencySpike>, signal: RegExp): void {
  expect(p.steps).toEqual([]);
  if (p.falseAlarm) expect(p.diagnosis).toMatch(new RegExp(`could not observe ${signal.source}`));
  else expect(p.escalate).toMatch(new RegExp(`could not observe ${signal.source}`));
}

describe('INC-04 plan with a signal unobserved', () => {
  test('healthy facts are a false alarm (control)', () => {
    const p = planLatencySpike(healthy());
    expect(p.falseAlarm).toBe(true);
    expect(p.diagnosis).not.toMatch(/could not observe/);
  });

  test('the pool gauge missing from /metrics', () => {
    const { pool: _p, ...f } = healthy({ unobserved: ['api DB pool: metric x_waiting not in /metrics (setting metrics.dbPoolWaiting)'] });
    expectNoConclusion(planLatencySpike(f), /api DB pool: metric x_waiting/);
  });

  test('the SLA window unavailable', () => {
    const { sla: _s, ...f } = healthy({ unobserved: ['SLA p95 (300 s window): GET /v1/notifications/sla/metrics unavailable: HTTP 401'] });
    expectNoConclusion(planLatencySpike(f), /SLA p95/);
  });

  test('no running api container to sample the memory trend', () => {
    const f = healthy({
      apiMemory: { running: false, samples: [], lastBytes: 0, limitBytes: 0, growthMbPerMin: 0, rising: false },
      unobserved: ['api memory trend: no running api container to sample'],
    });
    expectNoConclusion(planLatencySpike(f), /api memory trend/);
  });

  test('container stats without memory usage', () => {
    const f = healthy({
      apiMemory: { running: true, samples: [0, 0, 0], lastBytes: 0, limitBytes: 0, growthMbPerMin: 0, rising: false, unreadable: 'no memory usage' },
      unobserved: ['api memory trend: the container stats of api report no memory usage (3 of 3 samples)'],
    });
    expectNoConclusion(planLatencySpike(f), /api memory trend/);
  });

  test('slow with the pool unobserved: the escalation says the cause is not known, not that there is none', () => {
    const { pool: _p, ...f } = healthy({ probeP95Ms: 900, unobserved: ['api DB pool: /metrics unavailable: HTTP 500'] });
    const p = planLatencySpike(f);
    expect(p.steps).toEqual([]);
    expect(p.escalate).toMatch(/cause not known: could not observe api DB pool/);
  });

  test('long queries that were observed still get their step', () => {
    const { pool: _p, ...f } = healthy({
      longQueries: [{ pid: 7, seconds: 45, state: 'active', query: 'SELECT pg_sleep(…)' }],
      unobserved: ['api DB pool: /metrics unavailable: HTTP 500'],
    });
    expect(planLatencySpike(f).steps).toEqual(['terminate-long-queries']);
  });
});
