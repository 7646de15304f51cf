/** Per-target thresholds change the runbooks' decisions; without them (old facts) the old constants hold. */
import { planBadRelease, type ReleaseFacts } from '../../src/workflows/bad-release';
import { planRateLimitStorm, type RateLimitFacts } from '../../src/workflows/rate-limit-storm';
import { topupAmount } from '../../src/workflows/quota-exhaustion';
import { drainedBelow } from '../../src/workflows/queue-backlog';
import type { RateLimitSummary } from '../../src/activities/target-api/rate-limits';
import { healthyBadRelease, healthyQueueBacklog, healthyRateLimitStorm } from '../fixtures/healthy-facts';

describe('thresholds.releaseOutageErrorRatePct (INC-12 severity)', () => {
  const facts: ReleaseFacts = { ...healthyBadRelease, after: { requests: 100, errors: 30 } };
  it('30 % errors is SEV-1 at the default of 25 %, and in facts recorded before the setting', () => {
    expect(planBadRelease({ ...facts, outageErrorRatePct: 25 }).severity).toBe(1);
    expect(planBadRelease(facts).severity).toBe(1);
  });
  it('30 % errors is SEV-2 on a target whose outage rate is 50 %', () => {
    const p = planBadRelease({ ...facts, outageErrorRatePct: 50 });
    expect(p.steps).toEqual(['rollback-release']);
    expect(p.severity).toBe(2);
  });
});

describe('rateLimit.knownKeySharePct (INC-10 spike or attack)', () => {
  // 100 refusals spread over 10 clients; 70 carry keys of users of one tenant.
  const summary: RateLimitSummary = {
    total429: 100,
    sinceSeconds: 120,
    clients: Array.from({ length: 10 }, (_, i) => ({ id: `10.0.0.${i + 1}`, count: 10 })),
    distinctClients: 10,
    keys: [{ id: 'k1', count: 40 }, { id: 'k2', count: 30 }],
    withoutKey: 30,
    requests: 400,
    status429: 100,
    lines: 420,
  };
  const facts = (knownKeySharePct?: number): RateLimitFacts => ({
    ...healthyRateLimitStorm,
    summary,
    owners: [
      { keyId: 'k1', userId: 1, tenant: 'acme.test' },
      { keyId: 'k2', userId: 2, tenant: 'acme.test' },
    ],
    policy: { ...healthyRateLimitStorm.policy, ...(knownKeySharePct !== undefined ? { knownKeySharePct } : {}) },
    evidenceRule: true,
  });
  it('70 % with known keys is a distributed storm at the default of 80 %, and in facts recorded before the setting', () => {
    expect(planRateLimitStorm(facts(80), 'alfred').steps).toEqual([]);
    expect(planRateLimitStorm(facts(80), 'alfred').escalate).toMatch(/distributed/);
    expect(planRateLimitStorm(facts(), 'alfred').escalate).toMatch(/distributed/);
  });
  it('70 % with known keys is a legitimate spike on a target whose share is 60 %', () => {
    const p = planRateLimitStorm(facts(60), 'alfred');
    expect(p.steps).toEqual(['raise-rate-limit']);
    expect(p.limit).toBe(120);
  });
});

describe('limits.topupMinQuotaPct (INC-07 top-up size)', () => {
  const user = { userId: 7, walletId: 3, usedTokens: 1000, personalQuota: 1000, balance: 0 };
  it('gives a tenth of the quota by default', () => {
    expect(topupAmount(user, 0, 5000)).toBe(100);
    expect(topupAmount(user, 0, 5000, 10)).toBe(100);
  });
  it('gives the configured share', () => {
    expect(topupAmount(user, 0, 5000, 25)).toBe(250);
  });
});

describe('queue.drainedPct (queueBacklog drained)', () => {
  const q = healthyQueueBacklog.queue;
  it('is a tenth of the threshold by default and in configs recorded before the setting', () => {
    expect(drainedBelow(q)).toBe(100);
    expect(drainedBelow({ ...q, drainedPct: 10 })).toBe(100);
  });
  it('follows the setting', () => {
    expect(drainedBelow({ ...q, drainedPct: 50 })).toBe(500);
  });
});
