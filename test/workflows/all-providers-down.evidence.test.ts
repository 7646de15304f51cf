/** INC-03, evidence before conclusions as a pure decision: a probe the provider refused is no outage. */
import { planAllProvidersDown, type AllProvidersDownFacts } from '../../src/workflows/all-providers-down';

describe('INC-03 plan: a probe the provider refused is no outage', () => {
  const facts = (statuses: number[], evidenceRule?: true): AllProvidersDownFacts => ({
    providers: [
      { name: 'openai', model: 'gpt-4o-mini', owners: [] },
      { name: 'anthropic', model: 'claude-3-haiku', owners: [] },
    ] as AllProvidersDownFacts['providers'],
    disabled: [],
    cacheOnly: false,
    slaAvailable: true,
    slaRates: { openai: 100, anthropic: 100 },
    probes: ['openai', 'anthropic'].map((name, i) => ({ name, host: `${name}.example`, dnsOk: true, addresses: [], status: statuses[i] as number })),
    params: {} as AllProvidersDownFacts['params'],
    ...(evidenceRule ? { evidenceRule } : {}),
  });

  test('401 from the probes: escalated, cache-only mode is not switched on', () => {
    const p = planAllProvidersDown(facts([401, 503], true), 'alfred');
    expect(p.steps).toEqual([]);
    expect(p.escalate).toMatch(/^cannot tell whether every provider of alfred is down: openai HTTP 401 answered the probe with a refusal/);
  });

  test('5xx from every probe is an upstream outage: cache-only mode', () => {
    expect(planAllProvidersDown(facts([502, 503], true), 'alfred').steps).toEqual(['enable-cache-only', 'await-providers', 'leave-cache-only']);
  });

  test('incidents started before the rule decide as they did', () => {
    expect(planAllProvidersDown(facts([401, 503]), 'alfred').steps).toEqual(['enable-cache-only', 'await-providers', 'leave-cache-only']);
  });
});
