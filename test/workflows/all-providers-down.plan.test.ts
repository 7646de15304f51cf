/** allProvidersDown's decision: a pure function over its findings, no Temporal, no drill. */
import { planAllProvidersDown, type AllProvidersDownFacts } from '../../src/workflows/all-providers-down';

const providers = ['openai', 'anthropic', 'google'].map((name) => ({ name, model: `${name}-model`, owners: ['@llm-platform'] }));

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
