/** INC-15 evidence before conclusions, as pure decisions; nothing automatic from an ambiguous probe. */
import { planCachePoisoning, unobservedCache, verifyCache, type PoisoningFacts } from '../../src/workflows/cache-poisoning';
import { healthyCachePoisoning } from '../fixtures/healthy-facts';

const facts = (over: Partial<PoisoningFacts> = {}): PoisoningFacts => ({
  ...healthyCachePoisoning,
  probe: { status: 200, answer: 'The answer is 4.', correct: true, cached: true },
  requests: 30,
  evidenceRule: true,
  ...over,
});
const wrong = { status: 200, answer: 'The answer is 5.', correct: false };

function expectEscalation(f: PoisoningFacts, what: RegExp): void {
  const p = planCachePoisoning(f);
  expect(p.falseAlarm).toBeUndefined();
  expect(p.steps).toEqual([]);
  expect(p.escalate).toMatch(/could not observe/);
  expect(p.escalate).toMatch(what);
}

describe('INC-15 plan over unobserved signals', () => {
  test('a hit rate not reported, or over no requests, or a request count not reported', () => {
    const { hitRatePct: _h, ...noRate } = facts();
    expectEscalation(noRate, /cache hit rate: the SLA metrics report no metrics\.cache_hit_rate_pct/);
    expectEscalation(facts({ requests: 0 }), /cache hit rate: no request in the SLA window/);
    const { requests: _r, ...noCount } = facts();
    expectEscalation({ ...noCount, hitRateUnreadable: 'no `metrics.x` (set targets.alfred.api.fields.sla.requestCount)' }, /cache hit rate: .*requestCount/);
  });

  test('a threshold the target does not report', () => {
    const { threshold: _t, ...f } = facts();
    expectEscalation({ ...f, thresholdUnreadable: 'no `settings.x` (set api.fields.governanceSettings.cacheSimilarityThreshold)' }, /similarity threshold: .*cacheSimilarityThreshold/);
  });

  test('a scan that finds no entry, not even the known answer (cache.keyPattern), or entries it cannot read (cache.entry)', () => {
    expectEscalation(facts({ suspicious: { scanned: 0, suspicious: 0 } }), /cache entries: no key matches alfred:cache:\*, .*cache\.keyPattern/);
    expectEscalation(facts({ suspicious: { scanned: 12, suspicious: 0, unreadable: 12, unreadableDetail: '12 JSON entries have no string `p`' } }), /cache entries: 12 JSON entries/);
  });

  test('a known query not answered, or answered without text', () => {
    expectEscalation(facts({ probe: { status: 0, answer: '', correct: false, error: 'ECONNREFUSED' } }), /known query: .*ECONNREFUSED/);
    expectEscalation(facts({ probe: { status: 200, answer: '', correct: false } }), /known query: .*no text/);
  });

  test('nothing automatic from an ambiguous probe: a wrong answer not known to come from the cache acts on nothing', () => {
    expectEscalation(facts({ probe: { ...wrong, unreadable: 'no `cached` (set api.fields.chatCompletion.cached)' } }), /where the wrong answer came from/);
    const provider = planCachePoisoning(facts({ probe: { ...wrong, cached: false } }));
    expect(provider).toMatchObject({ steps: [], escalate: expect.stringMatching(/not a cache problem/) });
  });

  test('the threshold is tightened automatically only when it was read loose and poison was seen', () => {
    const poisoned = facts({ suspicious: { scanned: 12, suspicious: 3 } });
    expect(planCachePoisoning(poisoned).steps).toEqual(['tighten-threshold', 'flush-cache']);
    const { threshold: _t, ...unread } = poisoned;
    expect(planCachePoisoning(unread).steps).toEqual(['flush-cache']);
    expect(planCachePoisoning(facts({ probe: { ...wrong, cached: true } })).steps).toEqual(['tighten-threshold', 'flush-cache']);
    expect(planCachePoisoning({ ...poisoned, threshold: 0.99 }).steps).toEqual(['flush-cache']);
  });

  test('positive control: correct answers over a readable cache are a false alarm', () => {
    expect(unobservedCache(facts())).toEqual([]);
    expect(planCachePoisoning(facts())).toMatchObject({ falseAlarm: true, steps: [] });
  });

  test('incidents begun before the rule decide as they did', () => {
    expect(planCachePoisoning(facts({ suspicious: { scanned: 0, suspicious: 0 }, evidenceRule: undefined })).falseAlarm).toBe(true);
  });
});

describe('INC-15 verification', () => {
  test('a known query not answered, answered without text, or entries that cannot be read are unknown', () => {
    expect(verifyCache({ status: 0, answer: '', correct: false, error: 'timeout' }, { scanned: 1, suspicious: 0 }, 0.98).unknown).toMatch(/could not be asked: timeout/);
    expect(verifyCache({ status: 200, answer: '', correct: false }, { scanned: 1, suspicious: 0 }, 0.98).unknown).toMatch(/no text/);
    expect(verifyCache(facts().probe, { scanned: 3, suspicious: 0, unreadable: 3 }, 0.98).unknown).toMatch(/cache entries/);
  });
  test('the correct answer with no wrong entry is recovery; a wrong one is a failure', () => {
    expect(verifyCache(facts().probe, { scanned: 1, suspicious: 0 }, 0.98).ok).toBe(true);
    const c = verifyCache({ ...wrong, cached: true }, { scanned: 4, suspicious: 1 }, 0.98);
    expect(c.ok).toBe(false);
    expect(c.unknown).toBeUndefined();
  });
});
