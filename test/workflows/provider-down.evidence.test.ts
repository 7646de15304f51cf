/**
 * INC-02, evidence before conclusions as pure decisions: a window of traffic without calls is not
 * recovery, and the UI's details tell an unobserved signal from a healthy or failing one.
 */
import { planProviderDown, verifyFromWindow, type ProviderDownFacts } from '../../src/workflows/provider-down';
import { renderDetails } from '../../src/workflows/kernel';
import type { TrafficWindow } from '../../src/workflows/provider-traffic';
import type { IncidentRecord } from '../../src/workflows/contracts';

const rate = (calls: number, errors: number) => ({ calls, errors, pct: calls > 0 ? Math.round((errors / calls) * 1000) / 10 : 0 });
const window = (providers: TrafficWindow['providers'], chat = rate(0, 0)): TrafficWindow => ({ seconds: 10, providers, chat });

describe('INC-02 verification needs calls that were made', () => {
  test('empty counters are unknown, never recovered', () => {
    for (const w of [window({}), window({ openai: rate(0, 0) })]) {
      const c = verifyFromWindow(['openai'], w, 'd');
      expect(c.ok).toBe(false);
      expect(c.unknown).toMatch(/^openai, gateway chat completions: no calls in the 10 s window/);
    }
  });

  test('the suspect answering again is recovery', () => {
    expect(verifyFromWindow(['openai'], window({ openai: rate(40, 1) }), 'd')).toEqual({ ok: true, detail: 'd' });
  });

  test('chat completions succeeding through failover are recovery, whatever the suspect shows', () => {
    expect(verifyFromWindow(['openai'], window({}, rate(30, 0)), 'd').ok).toBe(true);
  });

  test('calls that still fail are a problem, not unknown', () => {
    const c = verifyFromWindow(['openai'], window({ openai: rate(20, 20) }), 'd');
    expect(c).toEqual({ ok: false, detail: 'd' });
  });

  test('one suspect without calls keeps the verdict from passing on the others', () => {
    const c = verifyFromWindow(['openai', 'anthropic'], window({ openai: rate(20, 0) }), 'd');
    expect(c.ok).toBe(false);
  });
});

test('the UI details mark an unobserved signal as UNKNOWN with the reason', () => {
  const rec = {
    incidentId: 'i',
    runbook: 'providerDown',
    scenario: 'INC-02',
    title: 't',
    severity: 2,
    target: 'alfred',
    requestedBy: 'x',
    dryRun: false,
    phase: 'TRIAGE',
    openedAt: '2026-12-01T00:00:00.000Z',
    findings: [
      { check: 'SLA error rate openai', ok: false, detail: 'no rate for openai in the SLA metrics', unknown: true },
      { check: 'SLA error rate anthropic', ok: true, detail: '0% over the last 300 s' },
    ],
    actions: [],
    pending: [],
    timeline: [],
    alerts: { count: 0, resolved: 0, flaps: 0 },
    escalations: [],
    children: [],
  } as unknown as IncidentRecord;
  const md = renderDetails(rec);
  expect(md).toContain('- UNKNOWN **SLA error rate openai**: could not observe: no rate for openai in the SLA metrics');
  expect(md).toContain('- OK **SLA error rate anthropic**: 0% over the last 300 s');
});

describe('INC-02 plan after the grace period', () => {
  const facts = (after: TrafficWindow, evidenceRule?: true): ProviderDownFacts => ({
    providers: [
      { name: 'openai', model: 'gpt-4o-mini', owners: [] },
      { name: 'anthropic', model: 'claude-3-haiku', owners: [] },
    ] as ProviderDownFacts['providers'],
    disabled: [],
    slaAvailable: true,
    slaRates: { openai: 80, anthropic: 0 },
    logErrors: {},
    failoverLines: 0,
    suspects: ['openai'],
    params: { graceSeconds: 3, sampleSeconds: 3 } as ProviderDownFacts['params'],
    after,
    ...(evidenceRule ? { evidenceRule } : {}),
  });

  test('no calls to the suspect after the grace period: escalated, not "recovered"', () => {
    const p = planProviderDown(facts(window({ anthropic: rate(30, 0) }, rate(30, 0)), true), 'alfred');
    expect(p.escalate).toMatch(/^cannot tell whether openai recovered on alfred: could not observe calls to it after the grace period/);
    expect(p.steps).toEqual([]);
  });

  test('calls to the suspect that succeed: recovered during the grace period', () => {
    const p = planProviderDown(facts(window({ openai: rate(30, 0) }, rate(30, 0)), true), 'alfred');
    expect(p.escalate).toBeUndefined();
    expect(p.diagnosis).toMatch(/openai recovered during the 3 s grace period/);
  });

  test('incidents started before the rule decide as they did', () => {
    expect(planProviderDown(facts(window({}, rate(30, 0))), 'alfred').diagnosis).toMatch(/openai recovered during the 3 s grace period/);
  });
});
