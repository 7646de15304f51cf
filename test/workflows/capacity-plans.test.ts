/** Decision logic of INC-04, INC-07 and INC-11: pure functions over findings, no Temporal needed. */
import { planLatencySpike, type LatencyFacts } from '../../src/workflows/latency-spike';
import { planMemoryLeak, type MemoryFacts } from '../../src/workflows/memory-leak';
import { planQuotaExhaustion, refusedUsers, topupAmount, userIds, type QuotaFacts } from '../../src/workflows/quota-exhaustion';
import { redactLiterals } from '../../src/activities/postgres/pg-sessions';
import type { MemoryTrend } from '../../src/activities/containers/probes';

const MB = 1024 * 1024;
const flat: MemoryTrend = { running: true, samples: [100 * MB, 101 * MB, 100 * MB], lastBytes: 100 * MB, limitBytes: 0, growthMbPerMin: 0, rising: false };
const leaking: MemoryTrend = { running: true, samples: [100 * MB, 110 * MB, 120 * MB], lastBytes: 120 * MB, limitBytes: 0, growthMbPerMin: 240, rising: true };

const healthyMemory: MemoryFacts = {
  component: 'api',
  running: true,
  status: 'running',
  oomKilled: false,
  restartCount: 0,
  limitBytes: 0,
  trend: flat,
  growthThresholdMbPerMin: 60,
  wantedLimitMb: 512,
  watchMs: 600_000,
};

describe('memoryLeak plan', () => {
  it('restarts with a limit on steady growth', () => {
    const p = planMemoryLeak({ ...healthyMemory, trend: leaking });
    expect(p.steps).toEqual(['restart-with-limit']);
    expect(p.diagnosis).toMatch(/grows 240 MB\/min/);
  });
  it('restarts with a limit after an OOM kill', () => {
    expect(planMemoryLeak({ ...healthyMemory, oomKilled: true, restartCount: 3 }).rootCause).toMatch(/killed for memory/);
  });
  it('restarts when memory sits at its limit even without growth', () => {
    const p = planMemoryLeak({ ...healthyMemory, limitBytes: 128 * MB, trend: { ...flat, limitBytes: 128 * MB, lastBytes: 125 * MB } });
    expect(p.steps).toEqual(['restart-with-limit']);
  });
  it('does not take noise for a leak: growth that falls back is not steady', () => {
    expect(planMemoryLeak({ ...healthyMemory, trend: { ...leaking, rising: false } }).falseAlarm).toBe(true);
  });
  it('calls steady memory a false alarm', () => {
    const p = planMemoryLeak(healthyMemory);
    expect(p.falseAlarm).toBe(true);
    expect(p.steps).toEqual([]);
  });
});

const calmLatency: LatencyFacts = {
  sla: { p95Ms: 40, p99Ms: 80, requests: 100 },
  probeP95Ms: 12,
  probeFailures: 0,
  api: { cpuPct: 3, memoryBytes: 100 * MB },
  apiMemory: flat,
  longQueries: [],
  pool: { usedPct: 10, waiting: 0 },
  redisLatencyMs: 1,
  thresholds: { p95LatencyMs: 150, slowQuerySeconds: 30, memoryGrowthMbPerMin: 60, poolUsagePct: 90 },
};

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

const judy = { userId: 11, walletId: 11, usedTokens: 20000, personalQuota: 20000, balance: 0 };
const calmQuota: QuotaFacts = {
  affected: [],
  atLimitCount: 1,
  nearLimitCount: 0,
  refusedUserIds: [],
  deductions: [],
  calcErrors: 0,
  windowMinutes: 15,
  topupCap: 5000,
};

describe('quotaExhaustion plan', () => {
  it('tops up after a legitimate spike', () => {
    const p = planQuotaExhaustion({ ...calmQuota, affected: [judy], refusedUserIds: [11] });
    expect(p.steps).toEqual(['topup-affected']);
    expect(p.severity).toBeUndefined();
  });
  it('raises a calculation bug to SEV-1 and rolls back before topping up', () => {
    const p = planQuotaExhaustion({ ...calmQuota, affected: [judy], refusedUserIds: [11], calcErrors: 4, calcErrorSample: 'credit_calc error' });
    expect(p.severity).toBe(1);
    expect(p.steps).toEqual(['rollback-release', 'topup-affected']);
  });
  it('calls users at their quota but not refused a false alarm', () => {
    expect(planQuotaExhaustion(calmQuota).falseAlarm).toBe(true);
  });
  const due = { available: true, periodStart: '2026-11-01', lastResetPeriodStart: '2026-10-01', lastResetAt: '2026-10-01T00:00:10.000Z', resetDue: true, cronEnabled: false };
  it('triggers the missed billing reset instead of a top-up when the period was never reset', () => {
    const p = planQuotaExhaustion({ ...calmQuota, affected: [judy], refusedUserIds: [11], billing: due });
    expect(p.steps).toEqual(['trigger-billing-reset']);
    expect(p.severity).toBeUndefined();
    expect(p.diagnosis).toMatch(/missed billing reset: the period starting 2026-11-01 was never reset \(last reset: 2026-10-01; the reset cron is disabled\)/);
    expect(p.rootCause).toMatch(/billing reset for the period starting 2026-11-01 did not run/);
  });
  it('lets a calculation bug win over a missed reset (a reset would hide inflated deductions)', () => {
    const p = planQuotaExhaustion({ ...calmQuota, affected: [judy], refusedUserIds: [11], calcErrors: 2, billing: due });
    expect(p.steps).toEqual(['rollback-release', 'topup-affected']);
    expect(p.severity).toBe(1);
  });
  it('keeps the spike branch when the reset ran, or its state is unknown or unread', () => {
    const spike = { ...calmQuota, affected: [judy], refusedUserIds: [11] };
    for (const billing of [{ ...due, resetDue: false, lastResetPeriodStart: '2026-11-01' }, { available: false, error: 'HTTP 404' }, undefined]) {
      expect(planQuotaExhaustion({ ...spike, ...(billing ? { billing } : {}) }).steps).toEqual(['topup-affected']);
    }
  });
  it('does not reset usage when nobody was refused, even with the reset due', () => {
    const p = planQuotaExhaustion({ ...calmQuota, billing: due });
    expect(p.falseAlarm).toBe(true);
    expect(p.steps).toEqual([]);
  });
  it('reads refused user ids from logfmt request lines only', () => {
    expect(
      refusedUsers([
        'ts=1 level=info method=POST path=/v1/chat/completions status=402 duration_ms=2 user_id=11 request_id=a',
        'ts=2 level=info method=POST path=/v1/chat/completions status=200 duration_ms=2 user_id=3 request_id=b',
        'ts=3 level=info status=402 user_id=4',
        'ts=4 level=info status=402 user_id=11',
      ]),
    ).toEqual([4, 11]);
  });
  it('takes refused user ids from the counts by logs.userId, numeric ones only, ascending', () => {
    expect(userIds({ '11': 2, '4': 1, 'null': 3, 'u-7': 1 })).toEqual([4, 11]);
  });
  it('caps a top-up and covers the overage plus an hour at the recent rate', () => {
    expect(topupAmount(judy, 0, 5000)).toBe(2000);
    expect(topupAmount({ ...judy, usedTokens: 21000 }, 3000, 5000)).toBe(4000);
    expect(topupAmount({ ...judy, usedTokens: 90000 }, 3000, 5000)).toBe(5000);
  });
});

describe('query text in findings', () => {
  it('never carries string literals', () => {
    expect(redactLiterals("ALTER ROLE app PASSWORD 's3cret' -- x")).toBe("ALTER ROLE app PASSWORD '…' -- x");
    expect(redactLiterals('SELECT $$secret body$$')).toBe('SELECT $$…$$');
  });
});
