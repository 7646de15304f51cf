/** latencySpike's decision: a pure function over its findings, no Temporal needed. */
import { planLatencySpike } from '../../src/workflows/latency-spike';
import { redactLiterals } from '../../src/activities/postgres/pg-sessions';
import type { MemoryTrend } from '../../src/activities/containers/probes';
import { healthyLatencyFacts } from '../fixtures/healthy-facts';

const MB = 1024 * 1024;
const flat: MemoryTrend = { running: true, samples: [100 * MB, 101 * MB, 100 * MB], lastBytes: 100 * MB, limitBytes: 0, growthMbPerMin: 0, rising: false };
const leaking: MemoryTrend = { running: true, samples: [100 * MB, 110 * MB, 120 * MB], lastBytes: 120 * MB, limitBytes: 0, growthMbPerMin: 240, rising: true };

// As incidents started before the evidence rule gathered them: no list of unobserved signals.
const { unobserved: _u, ...calmLatency } = healthyLatencyFacts({ sla: { p95Ms: 40, p99Ms: 80, requests: 100 }, api: { cpuPct: 3, memoryBytes: 100 * MB }, apiMemory: flat });

describe('latencySpike plan', () => {
  it('terminates long queries', () => {
    const p = planLatencySpike({ ...calmLatency, longQueries: [{ pid: 42, seconds: 95, state: 'active', query: 'SELECT pg_sleep($1)' }] });
    expect(p.steps).toEqual(['terminate-long-queries']);
    expect(p.diagnosis).toMatch(/1 queries running > 30 s \(longest 95 s\)/);
  });
  it('restarts the api on pool exhaustion', () => {
    expect(planLatencySpike({ ...calmLatency, pool: { usedPct: 100, waiting: 5 } }).steps).toEqual(['restart-api']);
  });
  it('hands memory growth to INC-11', () => {
    expect(planLatencySpike({ ...calmLatency, apiMemory: leaking }).steps).toEqual(['hand-off-memory-leak']);
  });
  it('takes every cause found, in the playbook order', () => {
    const p = planLatencySpike({ ...calmLatency, apiMemory: leaking, pool: { usedPct: 100, waiting: 1 }, longQueries: [{ pid: 1, seconds: 40, state: 'active', query: 'x' }] });
    expect(p.steps).toEqual(['terminate-long-queries', 'restart-api', 'hand-off-memory-leak']);
  });
  it('escalates latency with no cause it can fix', () => {
    const p = planLatencySpike({ ...calmLatency, probeP95Ms: 900 });
    expect(p.steps).toEqual([]);
    expect(p.escalate).toMatch(/no cause/);
  });
  it('calls a recovered latency a false alarm even while the SLA window still lags', () => {
    const p = planLatencySpike({ ...calmLatency, sla: { p95Ms: 400, p99Ms: 900, requests: 50 } });
    expect(p.falseAlarm).toBe(true);
    expect(p.diagnosis).toMatch(/SLA window p95 400 ms/);
  });
});

describe('query text in findings', () => {
  it('never carries string literals', () => {
    expect(redactLiterals("ALTER ROLE app PASSWORD 's3cret' -- x")).toBe("ALTER ROLE app PASSWORD '…' -- x");
    expect(redactLiterals('SELECT $$secret body$$')).toBe('SELECT $$…$$');
  });
});
