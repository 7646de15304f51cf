/** INC-10 evidence before conclusions, as pure decisions: no 429 among lines that were not recognised is not "no storm". */
import type { RateLimitSummary } from '../../src/activities/target-api/rate-limits';
import { planRateLimitStorm, unobservedRateLimits, verifyRateLimits, type RateLimitFacts } from '../../src/workflows/rate-limit-storm';
import { healthyRateLimitStorm } from '../fixtures/healthy-facts';

const quiet = healthyRateLimitStorm.summary;
const facts = (summary: Partial<RateLimitSummary>, more: Partial<RateLimitFacts> = {}): RateLimitFacts => ({
  ...healthyRateLimitStorm,
  summary: { ...quiet, ...summary },
  evidenceRule: true,
  ...more,
});

function expectEscalation(f: RateLimitFacts, what: RegExp): void {
  const p = planRateLimitStorm(f, 'alfred');
  expect(p.falseAlarm).toBeUndefined();
  expect(p.steps).toEqual([]);
  expect(p.escalate).toMatch(/could not observe/);
  expect(p.escalate).toMatch(what);
}

describe('INC-10 plan over unobserved signals', () => {
  test('no request line recognised in the window (logs.status)', () => {
    expectEscalation(facts({ requests: 0 }), /429s in the api logs \(120 s\): no request line recognised among 45 api log lines .*logs\.status/);
    expectEscalation(facts({ requests: 0, lines: 0 }), /no api log line in the last 120 s/);
  });

  test('requests answered 429 that the rate-limit pattern does not recognise (logs.rateLimited)', () => {
    expectEscalation(facts({ status429: 50 }), /50 requests answered 429 .*logs\.rateLimited/);
  });

  test('refusals without a client address (logs.clientIp): never a client called "unknown" to block', () => {
    const f = facts({ total429: 50, status429: 50, withoutClient: 50 });
    expectEscalation(f, /clients among the 429s: 50 of 50 .*logs\.clientIp/);
    // One client with most of them is still seen.
    const one = facts({ total429: 50, status429: 50, clients: [{ id: '203.0.113.7', count: 45 }], distinctClients: 1, withoutClient: 5 });
    expect(unobservedRateLimits(one)).toEqual([]);
    expect(planRateLimitStorm(one, 'alfred')).toMatchObject({ steps: ['block-client'], ip: '203.0.113.7' });
  });

  test('a limit the api environment does not hold (rateLimit.envVar) is not raised', () => {
    const clients = [1, 2, 3, 4, 5].map((n) => ({ id: `198.51.100.${n}`, count: 20 }));
    const f = facts(
      { total429: 100, status429: 100, clients, distinctClients: 5, keys: [{ id: 'aaaaaaaaaaaa', count: 100 }] },
      { owners: [{ keyId: 'aaaaaaaaaaaa', userId: 2, tenant: 'example.com' }], limitPerMinute: null },
    );
    expectEscalation(f, /RATE_LIMIT_PER_MINUTE of the api: .*rateLimit\.envVar/);
    expect(planRateLimitStorm({ ...f, limitPerMinute: 60 }, 'alfred')).toMatchObject({ steps: ['raise-rate-limit'], limit: 120 });
  });

  test('positive control: request lines without 429s are a false alarm', () => {
    expect(planRateLimitStorm(facts({}), 'alfred')).toMatchObject({ falseAlarm: true, steps: [] });
  });

  test('incidents begun before the rule decide as they did', () => {
    expect(planRateLimitStorm(facts({ requests: 0 }, { evidenceRule: undefined }), 'alfred').falseAlarm).toBe(true);
  });
});

describe('INC-10 verification', () => {
  test('a window without a recognised request line, or with 429s the pattern misses, is unknown', () => {
    expect(verifyRateLimits(facts({}), { ...quiet, requests: 0 }).unknown).toMatch(/no request line recognised/);
    expect(verifyRateLimits(facts({}), { ...quiet, status429: 30 }).unknown).toMatch(/logs\.rateLimited/);
  });

  test('429s at baseline among recognised lines are recovery; above it, a failure', () => {
    expect(verifyRateLimits(facts({}), quiet)).toEqual({ ok: true, detail: '0 429s in the last 120 s (baseline ≤ 10)' });
    expect(verifyRateLimits(facts({}), { ...quiet, total429: 30, status429: 30 })).toEqual({ ok: false, detail: '30 429s in the last 120 s (baseline ≤ 10)' });
  });
});
