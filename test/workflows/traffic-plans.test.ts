/** Decision logic of INC-02, INC-03 and INC-10: pure functions over findings, no Temporal, no drill. */
import { trafficFromPrometheus } from '../../src/activities/target-api/providers';
import { summariseRateLimitLines } from '../../src/activities/target-api/rate-limits';
import { planAllProvidersDown, type AllProvidersDownFacts } from '../../src/workflows/all-providers-down';
import { planProviderDown, providerLogCounts, type ProviderDownFacts } from '../../src/workflows/provider-down';
import { windowBetween, type TrafficWindow } from '../../src/workflows/provider-traffic';
import { planRateLimitStorm, raisedLimit, type RateLimitFacts } from '../../src/workflows/rate-limit-storm';

const providers = ['openai', 'anthropic', 'google'].map((name) => ({ name, model: `${name}-model`, owners: ['@llm-platform'] }));

function windowOf(openaiPct: number, chatPct: number, calls = 100): TrafficWindow {
  const rate = (pct: number) => ({ calls, errors: Math.round((calls * pct) / 100), pct });
  return { seconds: 30, providers: { openai: rate(openaiPct), anthropic: rate(0), google: rate(0) }, chat: rate(chatPct) };
}

const quiet: ProviderDownFacts = {
  providers,
  disabled: [],
  slaAvailable: true,
  slaRates: { openai: 0, anthropic: 0, google: 0 },
  logErrors: {},
  failoverLines: 0,
  suspects: [],
  params: { graceSeconds: 60, sampleSeconds: 30 },
};
const openaiDown: ProviderDownFacts = { ...quiet, slaRates: { openai: 100, anthropic: 0, google: 0 }, suspects: ['openai'] };

describe('providerDown plan', () => {
  it('calls every provider under 5 % a false alarm', () => {
    expect(planProviderDown(quiet, 'alfred')).toMatchObject({ falseAlarm: true, steps: [] });
  });
  it('does nothing for a provider that recovered during the grace period', () => {
    const p = planProviderDown({ ...openaiDown, after: windowOf(0, 0) }, 'alfred');
    expect(p).toMatchObject({ steps: [] });
    expect(p.diagnosis).toMatch(/recovered during the 60 s grace period/);
    expect(p.falseAlarm).toBeUndefined();
  });
  it('does nothing when failover absorbs the outage', () => {
    const p = planProviderDown({ ...openaiDown, after: windowOf(100, 1) }, 'alfred');
    expect(p.steps).toEqual([]);
    expect(p.diagnosis).toMatch(/failover is effective/);
  });
  it('disables a provider when failover is not effective', () => {
    const p = planProviderDown({ ...openaiDown, after: windowOf(100, 40) }, 'alfred');
    expect(p.steps).toEqual(['disable-provider-openai']);
  });
  it('escalates when every provider is down (INC-03), without waiting', () => {
    const p = planProviderDown({ ...quiet, slaRates: { openai: 99, anthropic: 95, google: 100 }, suspects: ['openai', 'anthropic', 'google'] }, 'alfred');
    expect(p.escalate).toMatch(/allProvidersDown/);
  });
  it('escalates when the counters cannot be re-measured or there is no traffic', () => {
    expect(planProviderDown(openaiDown, 'alfred').escalate).toMatch(/unreachable/);
    expect(planProviderDown({ ...openaiDown, after: windowOf(100, 0, 0) }, 'alfred').escalate).toMatch(/no traffic/);
  });
  it('ignores a provider that is already disabled', () => {
    expect(planProviderDown({ ...quiet, disabled: ['openai'], slaRates: { openai: 100 } }, 'alfred').falseAlarm).toBe(true);
  });
});

describe('provider traffic', () => {
  it('reads provider and chat counters from Prometheus text', () => {
    const text = [
      'alfred_provider_requests_total{provider="openai",result="success"} 10',
      'alfred_provider_requests_total{provider="openai",result="error"} 5',
      'alfred_http_requests_total{path="/v1/chat/completions",status="200"} 12',
      'alfred_http_requests_total{path="/v1/chat/completions",status="502"} 3',
      'alfred_http_requests_total{path="/health",status="503"} 7',
    ].join('\n');
    expect(trafficFromPrometheus(text)).toEqual({ providers: { openai: { ok: 10, error: 5 } }, chat: { total: 15, errors: 3 } });
  });
  it('computes rates between two readings, and no data across a counter reset', () => {
    const a = { available: true, providers: { openai: { ok: 10, error: 0 } }, chat: { total: 10, errors: 0 } };
    const b = { available: true, providers: { openai: { ok: 10, error: 10 } }, chat: { total: 20, errors: 5 } };
    expect(windowBetween(a, b, 5)).toEqual({ seconds: 5, providers: { openai: { calls: 10, errors: 10, pct: 100 } }, chat: { calls: 10, errors: 5, pct: 50 } });
    expect(windowBetween(b, a, 5).chat).toEqual({ calls: 0, errors: 0, pct: 0 });
  });
  it('counts provider errors and failovers per provider in logfmt lines', () => {
    const lines = [
      'ts=1 level=error role=api msg="provider error" provider=openai status=502',
      'ts=2 level=error role=api msg="provider error" provider=openai status=502',
      'ts=3 level=warn role=api msg="provider failover" from=openai to=anthropic',
      'ts=4 level=info role=api method=POST path=/v1/chat/completions status=200 provider=anthropic',
    ];
    expect(providerLogCounts(lines)).toEqual({ errors: { openai: 2 }, failovers: 1 });
  });
});

const probe = (name: string, status: number, dnsOk = true) => ({ name, host: 'localhost', dnsOk, addresses: dnsOk ? ['127.0.0.1'] : [], status });
const allUp: AllProvidersDownFacts = {
  providers,
  disabled: [],
  cacheOnly: false,
  slaAvailable: true,
  slaRates: { openai: 0, anthropic: 0, google: 0 },
  probes: providers.map((p) => probe(p.name, 200)),
  params: { recoveryDeadlineSeconds: 3600, pollSeconds: 30 },
};

describe('allProvidersDown plan', () => {
  it('calls answering providers a false alarm, even with a past outage in the SLA window', () => {
    expect(planAllProvidersDown(allUp, 'alfred')).toMatchObject({ falseAlarm: true, steps: [] });
    const past = planAllProvidersDown({ ...allUp, slaRates: { openai: 100, anthropic: 100, google: 100 } }, 'alfred');
    expect(past.falseAlarm).toBe(true);
    expect(past.diagnosis).toMatch(/past outage/);
  });
  it('goes cache-only, waits, then leaves it (approve) when every provider answers with errors', () => {
    const p = planAllProvidersDown({ ...allUp, probes: providers.map((x) => probe(x.name, 502)) }, 'alfred');
    expect(p.steps).toEqual(['enable-cache-only', 'await-providers', 'leave-cache-only']);
    expect(p.severity).toBe(1);
  });
  it('escalates an egress or DNS failure on our side: cache-only would not help', () => {
    const p = planAllProvidersDown({ ...allUp, probes: providers.map((x) => probe(x.name, 0, false)) }, 'alfred');
    expect(p.steps).toEqual([]);
    expect(p.escalate).toMatch(/DNS resolution fails/);
  });
  it('only leaves cache-only mode when providers are back but it is still on', () => {
    expect(planAllProvidersDown({ ...allUp, cacheOnly: true }, 'alfred').steps).toEqual(['leave-cache-only']);
  });
});

const policy = { envVar: 'RATE_LIMIT_PER_MINUTE', keyPattern: 'alfred:ratelimit:*', baseline429: 10, windowSeconds: 120, singleClientSharePct: 80, raiseFactor: 2, maxPerMinute: 600 };
function storm(clients: [string, number][], keys: [string, number][], owners: RateLimitFacts['owners'] = []): RateLimitFacts {
  const total = clients.reduce((n, [, c]) => n + c, 0);
  return {
    summary: {
      total429: total,
      sinceSeconds: 120,
      clients: clients.map(([id, count]) => ({ id, count })),
      distinctClients: clients.length,
      keys: keys.map(([id, count]) => ({ id, count })),
      withoutKey: total - keys.reduce((n, [, c]) => n + c, 0),
    },
    owners,
    counterKeys: clients.length,
    limitPerMinute: 60,
    blocked: [],
    policy,
  };
}

describe('rateLimitStorm plan', () => {
  it('calls 429s within the baseline a false alarm', () => {
    expect(planRateLimitStorm(storm([['10.0.0.1', 4]], []), 'alfred')).toMatchObject({ falseAlarm: true, steps: [] });
  });
  it('blocks a single abusive client', () => {
    const p = planRateLimitStorm(storm([['203.0.113.7', 240], ['10.0.0.2', 3]], [['aaaaaaaaaaaa', 243]]), 'alfred');
    expect(p).toMatchObject({ steps: ['block-client'], ip: '203.0.113.7' });
  });
  it('raises the limit for a legitimate spike of one tenant spread over many clients', () => {
    const owners = ['k1', 'k2', 'k3'].map((k, i) => ({ keyId: `${k}aaaaaaaaaa`, userId: i + 2, tenant: 'example.com' }));
    const f = storm(
      [['10.0.0.1', 15], ['10.0.0.2', 15], ['10.0.0.3', 15]],
      owners.map((o) => [o.keyId, 15]),
      owners,
    );
    const p = planRateLimitStorm(f, 'alfred');
    expect(p).toMatchObject({ steps: ['raise-rate-limit'], limit: 120 });
    expect(raisedLimit({ ...f, limitPerMinute: 500 })).toBe(600);
    expect(planRateLimitStorm({ ...f, limitPerMinute: 600 }, 'alfred').escalate).toMatch(/cannot be raised/);
  });
  it('escalates a distributed storm: many clients, unknown keys or many tenants', () => {
    const clients: [string, number][] = Array.from({ length: 8 }, (_, i) => [`192.0.2.${i + 1}`, 10]);
    expect(planRateLimitStorm(storm(clients, []), 'alfred').escalate).toMatch(/distributed/);
    const owners = [
      { keyId: 'aaaaaaaaaaaa', userId: 2, tenant: 'example.com' },
      { keyId: 'bbbbbbbbbbbb', userId: 3, tenant: 'other.org' },
    ];
    expect(planRateLimitStorm(storm(clients, [['aaaaaaaaaaaa', 40], ['bbbbbbbbbbbb', 40]], owners), 'alfred').escalate).toMatch(/distributed/);
  });
  it('summarises the limiter lines by client and key id', () => {
    const lines = [
      'ts=1 level=warn role=api msg="rate limit exceeded" client_ip=203.0.113.7 key_id=abcdefabcdef limit_per_minute=60',
      'ts=2 level=warn role=api msg="rate limit exceeded" client_ip=203.0.113.7 key_id=abcdefabcdef limit_per_minute=60',
      'ts=3 level=warn role=api msg="rate limit exceeded" client_ip=10.0.0.9 limit_per_minute=60',
      'ts=4 level=info role=api method=POST path=/v1/chat/completions status=429 client_ip=203.0.113.7',
    ];
    expect(summariseRateLimitLines(lines, 60)).toEqual({
      total429: 3,
      sinceSeconds: 60,
      clients: [{ id: '203.0.113.7', count: 2 }, { id: '10.0.0.9', count: 1 }],
      distinctClients: 2,
      keys: [{ id: 'abcdefabcdef', count: 2 }],
      withoutKey: 1,
    });
  });
});
