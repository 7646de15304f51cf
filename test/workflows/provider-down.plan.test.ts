/** providerDown's decision and the traffic it reads: pure functions over findings, no Temporal, no drill. */
import { trafficFromPrometheus } from '../../src/activities/target-api/providers';
import { planProviderDown, providerLogCounts, type ProviderDownFacts } from '../../src/workflows/provider-down';
import { windowBetween, type TrafficWindow } from '../../src/workflows/provider-traffic';
import { stepIds } from '../../src/workflows/shape';
import { healthyProviderDown } from '../fixtures/healthy-facts';

function windowOf(openaiPct: number, chatPct: number, calls = 100): TrafficWindow {
  const rate = (pct: number) => ({ calls, errors: Math.round((calls * pct) / 100), pct });
  return { seconds: 30, providers: { openai: rate(openaiPct), anthropic: rate(0), google: rate(0) }, chat: rate(chatPct) };
}

const openaiDown: ProviderDownFacts = { ...healthyProviderDown, slaRates: { openai: 100, anthropic: 0, google: 0 }, suspects: ['openai'] };

describe('providerDown plan', () => {
  it('calls every provider under 5 % a false alarm', () => {
    expect(planProviderDown(healthyProviderDown, 'alfred')).toMatchObject({ falseAlarm: true, steps: [] });
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
    expect(p.steps).toEqual([{ id: 'disable-provider-<name>', args: { name: 'openai' } }]);
    expect(stepIds(p)).toEqual(['disable-provider-openai']);
  });
  it('escalates when every provider is down (INC-03), without waiting', () => {
    const p = planProviderDown({ ...healthyProviderDown, slaRates: { openai: 99, anthropic: 95, google: 100 }, suspects: ['openai', 'anthropic', 'google'] }, 'alfred');
    expect(p.escalate).toMatch(/allProvidersDown/);
  });
  it('escalates when the counters cannot be re-measured or there is no traffic', () => {
    expect(planProviderDown(openaiDown, 'alfred').escalate).toMatch(/unreachable/);
    expect(planProviderDown({ ...openaiDown, after: windowOf(100, 0, 0) }, 'alfred').escalate).toMatch(/no traffic/);
  });
  it('ignores a provider that is already disabled', () => {
    expect(planProviderDown({ ...healthyProviderDown, disabled: ['openai'], slaRates: { openai: 100 } }, 'alfred').falseAlarm).toBe(true);
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
