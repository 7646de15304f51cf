/** allProvidersDown's decision: a pure function over its findings, no Temporal, no drill. */
import { planAllProvidersDown } from '../../src/workflows/all-providers-down';
import { healthyAllProvidersDown } from '../fixtures/healthy-facts';

const { providers } = healthyAllProvidersDown;
const probe = (name: string, status: number, dnsOk = true) => ({ name, host: 'localhost', dnsOk, addresses: dnsOk ? ['127.0.0.1'] : [], status });

describe('allProvidersDown plan', () => {
  it('calls answering providers a false alarm, even with a past outage in the SLA window', () => {
    expect(planAllProvidersDown(healthyAllProvidersDown, 'alfred')).toMatchObject({ falseAlarm: true, steps: [] });
    const past = planAllProvidersDown({ ...healthyAllProvidersDown, slaRates: { openai: 100, anthropic: 100, google: 100 } }, 'alfred');
    expect(past.falseAlarm).toBe(true);
    expect(past.diagnosis).toMatch(/past outage/);
  });
  it('goes cache-only, waits, then leaves it (approve) when every provider answers with errors', () => {
    const p = planAllProvidersDown({ ...healthyAllProvidersDown, probes: providers.map((x) => probe(x.name, 502)) }, 'alfred');
    expect(p.steps).toEqual(['enable-cache-only', 'await-providers', 'leave-cache-only']);
    expect(p.severity).toBe(1);
  });
  it('escalates an egress or DNS failure on our side: cache-only would not help', () => {
    const p = planAllProvidersDown({ ...healthyAllProvidersDown, probes: providers.map((x) => probe(x.name, 0, false)) }, 'alfred');
    expect(p.steps).toEqual([]);
    expect(p.escalate).toMatch(/DNS resolution fails/);
  });
  it('only leaves cache-only mode when providers are back but it is still on', () => {
    expect(planAllProvidersDown({ ...healthyAllProvidersDown, cacheOnly: true }, 'alfred').steps).toEqual(['leave-cache-only']);
  });
});
