/**
 * INC-02 and INC-03, seed 002's "Check provider status page" as pure decisions: the pages are told in
 * the diagnosis and escalations, an unreadable page is unknown (never operational), and no page ever
 * chooses or skips a step.
 */
import { readStatusJson, type ProviderStatusPage } from '../../src/activities/target-api/providers';
import { planAllProvidersDown, type AllProvidersDownFacts } from '../../src/workflows/all-providers-down';
import { planProviderDown, type ProviderDownFacts } from '../../src/workflows/provider-down';
import { recordStatusPages, reportingIncident, statusPagesSummary } from '../../src/workflows/status-pages';
import { stepIds } from '../../src/workflows/shape';
import { healthyAllProvidersDown, healthyProviderDown } from '../fixtures/healthy-facts';

const { providers } = healthyProviderDown;
const page = (name: string, indicator: ProviderStatusPage['indicator'], description = 'x'): ProviderStatusPage => ({
  name,
  page: `https://status.${name}.example`,
  available: true,
  indicator,
  description,
});
const unreadable = (name: string): ProviderStatusPage => ({ name, page: `https://status.${name}.example`, available: false, error: 'GET https://status.google.example/api/v2/status.json: HTTP 404' });
const operational = providers.map((p) => page(p.name, 'none', 'All Systems Operational'));
const openaiMajor = [page('openai', 'major', 'Partial System Outage'), page('anthropic', 'none'), page('google', 'none')];

const quiet: ProviderDownFacts = { ...healthyProviderDown, evidenceRule: true };

describe('Statuspage answers', () => {
  test('status.indicator and description are read', () => {
    expect(readStatusJson('openai', 'https://status.openai.com', { page: {}, status: { indicator: 'minor', description: 'Minor Service Outage' } })).toEqual({
      name: 'openai',
      page: 'https://status.openai.com',
      available: true,
      indicator: 'minor',
      description: 'Minor Service Outage',
    });
  });
  test.each([[{}], [{ status: {} }], [{ status: { indicator: 'operational' } }], [null], ['<html>']])('an answer without a known indicator is unreadable: %j', (body) => {
    const r = readStatusJson('google', 'https://status.cloud.google.com', body);
    expect(r.available).toBe(false);
    expect(r.indicator).toBeUndefined();
    expect(r.error).toMatch(/status\.indicator/);
  });
});

describe('recording the pages', () => {
  test('none is healthy, an incident a problem, unreadable unknown, a provider without a page a note', () => {
    const findings: unknown[] = [];
    const unknowns: unknown[] = [];
    const notes: string[] = [];
    recordStatusPages(
      { finding: (c, ok, d) => findings.push([c, ok, d]), unknown: (c, w, o) => unknowns.push([c, w, o]), note: (e) => notes.push(e) },
      [page('openai', 'none', 'All Systems Operational'), page('anthropic', 'critical', 'Major outage'), unreadable('google'), { name: 'local', available: false, error: 'no status page configured (targets.t.providers.local.statusPage)' }],
    );
    expect(findings).toEqual([
      ['status page openai', true, 'none: All Systems Operational (https://status.openai.example)'],
      ['status page anthropic', false, 'critical: Major outage (https://status.anthropic.example)'],
    ]);
    // Unread, a page is unknown, and aside: the measured rates decide, the page is for people.
    expect(unknowns).toEqual([['status page google', expect.stringMatching(/HTTP 404/), { aside: true }]]);
    expect(notes).toEqual([expect.stringMatching(/status page local not checked: no status page configured \(targets\.t\.providers\.local\.statusPage\)/)]);
    expect(reportingIncident([page('openai', 'none'), page('anthropic', 'minor'), unreadable('google')])).toEqual(['anthropic']);
  });
});

describe('INC-02 with status pages', () => {
  test('operational pages and healthy rates: a false alarm that tells the pages', () => {
    const p = planProviderDown({ ...quiet, statusPages: operational }, 'alfred');
    expect(p).toMatchObject({ falseAlarm: true, steps: [] });
    expect(p.diagnosis).toMatch(/no provider outage; status pages: openai none \(All Systems Operational\), anthropic none/);
  });

  test('a page reporting an outage decides nothing: healthy rates stay a false alarm, no step', () => {
    const without = planProviderDown(quiet, 'alfred');
    const p = planProviderDown({ ...quiet, statusPages: openaiMajor }, 'alfred');
    expect(p.steps).toEqual(without.steps);
    expect(p.falseAlarm).toBe(true);
    expect(p.diagnosis).toMatch(/openai major \(Partial System Outage\)/);
  });

  test('an unreadable page is told as unknown, never as operational', () => {
    const p = planProviderDown({ ...quiet, statusPages: [page('openai', 'none'), page('anthropic', 'none'), unreadable('google')] }, 'alfred');
    expect(p.diagnosis).toMatch(/google unknown/);
    expect(p.diagnosis).not.toMatch(/google none/);
  });

  test('escalations carry the pages; the steps are those of the rates and traffic alone', () => {
    const allDown = { ...quiet, slaRates: { openai: 100, anthropic: 100, google: 100 }, suspects: ['openai', 'anthropic', 'google'] };
    const p = planProviderDown({ ...allDown, statusPages: openaiMajor }, 'alfred');
    expect(p.steps).toEqual([]);
    expect(p.escalate).toMatch(/run allProvidersDown .* \(status pages: openai major/);
    const failing = { ...quiet, slaRates: { openai: 60, anthropic: 0, google: 0 }, suspects: ['openai'] };
    const after = { seconds: 30, providers: { openai: { calls: 10, errors: 10, pct: 100 } }, chat: { calls: 10, errors: 10, pct: 100 } };
    const withPages = planProviderDown({ ...failing, after, statusPages: operational }, 'alfred');
    expect(withPages.steps).toEqual(planProviderDown({ ...failing, after }, 'alfred').steps);
    expect(stepIds(withPages)).toEqual(['disable-provider-openai']);
  });

  test('incidents started before the pages were read plan as before', () => {
    expect(statusPagesSummary(undefined)).toBeUndefined();
    expect(planProviderDown(quiet, 'alfred').diagnosis).toBe('every enabled provider is under 5% errors: no provider outage');
  });
});

describe('INC-03 with status pages', () => {
  const probe = (name: string, status: number) => ({ name, host: 'localhost', dnsOk: true, addresses: ['127.0.0.1'], status });
  const down: AllProvidersDownFacts = {
    ...healthyAllProvidersDown,
    slaRates: { openai: 100, anthropic: 100, google: 100 },
    probes: providers.map((p) => probe(p.name, 502)),
    evidenceRule: true,
  };

  test('operational pages do not stop cache-only mode when every provider fails the probe', () => {
    const p = planAllProvidersDown({ ...down, statusPages: operational }, 'alfred');
    expect(p.steps).toEqual(['enable-cache-only', 'await-providers', 'leave-cache-only']);
    expect(p.diagnosis).toMatch(/upstream outage; status pages: openai none/);
  });

  test('pages reporting outages do not start cache-only mode when providers answer', () => {
    const up = { ...down, slaRates: { openai: 0, anthropic: 0, google: 0 }, probes: providers.map((p) => probe(p.name, 200)) };
    const p = planAllProvidersDown({ ...up, statusPages: providers.map((x) => page(x.name, 'critical')) }, 'alfred');
    expect(p).toMatchObject({ falseAlarm: true, steps: [] });
  });

  test('a refused probe escalates with what the pages say, unknown ones included', () => {
    const p = planAllProvidersDown({ ...down, probes: providers.map((x) => probe(x.name, 401)), statusPages: [page('openai', 'major'), page('anthropic', 'none'), unreadable('google')] }, 'alfred');
    expect(p.steps).toEqual([]);
    expect(p.escalate).toMatch(/check the providers' status pages .* \(status pages: openai major \(x\), anthropic none \(x\), google unknown\)/);
  });
});
