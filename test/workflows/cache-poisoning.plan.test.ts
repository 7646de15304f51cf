/** cachePoisoning's decision (INC-15): a pure function over its findings, no Temporal needed. */
import { planCachePoisoning } from '../../src/workflows/cache-poisoning';
import { healthyCachePoisoning } from '../fixtures/healthy-facts';

const wrongEntry = { key: 'alfred:cache:0123456789ab…', prompt: 'What is 2+2?', response: '5', similarity: 1 };

describe('cachePoisoning plan', () => {
  it('tightens a loose threshold, then flushes, when the known query is answered wrongly', () => {
    const p = planCachePoisoning({ ...healthyCachePoisoning, threshold: 0.5, probe: { status: 200, answer: '5', correct: false, cached: true }, suspicious: { scanned: 12, suspicious: 2, example: wrongEntry } });
    expect(p.steps).toEqual(['tighten-threshold', 'flush-cache']);
    expect(p.rootCause).toMatch(/loose similarity threshold \(0\.5\)/);
  });
  it('only flushes when the threshold is already strict', () => {
    const p = planCachePoisoning({ ...healthyCachePoisoning, threshold: 0.98, probe: { status: 200, answer: '5', correct: false }, suspicious: { scanned: 3, suspicious: 1, example: wrongEntry } });
    expect(p.steps).toEqual(['flush-cache']);
    expect(p.rootCause).toMatch(/wrong answers stored/);
  });
  it('acts on wrong cached entries even if the probe itself was answered correctly', () => {
    const p = planCachePoisoning({ ...healthyCachePoisoning, suspicious: { scanned: 30, suspicious: 1, example: { ...wrongEntry, similarity: 0.9 } } });
    expect(p.steps).toEqual(['tighten-threshold', 'flush-cache']);
  });
  it('calls a high hit rate with correct answers a false alarm', () => {
    const p = planCachePoisoning({ ...healthyCachePoisoning, hitRatePct: 95 });
    expect(p.falseAlarm).toBe(true);
    expect(p.steps).toEqual([]);
    expect(p.diagnosis).toMatch(/hit rate 95%/);
  });
  it('escalates when the gateway cannot answer the known query at all', () => {
    const p = planCachePoisoning({ ...healthyCachePoisoning, probe: { status: 502, answer: '', correct: false } });
    expect(p.escalate).toMatch(/not a cache problem/);
    expect(p.steps).toEqual([]);
  });
});
