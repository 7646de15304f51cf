/** Decision logic of the data-integrity runbooks (INC-08, INC-09, INC-15): pure functions over findings. */
import { planCachePoisoning, type PoisoningFacts } from '../../src/workflows/cache-poisoning';
import { classifyBreak, planAuditChainBreak, type AuditFacts } from '../../src/workflows/audit-chain-break';
import { compareReleases, planDoubleSpend, type DoubleSpendFacts } from '../../src/workflows/double-spend';

const cleanCache: PoisoningFacts = {
  keyPattern: 'alfred:cache:*',
  hitRatePct: 40,
  hitRateAnomalyPct: 80,
  keyCount: 12,
  keyCountCapped: false,
  threshold: 0.9,
  probePrompt: 'What is 2+2?',
  probe: { status: 200, answer: '4', correct: true, cached: false },
  suspicious: { scanned: 12, suspicious: 0 },
};
const wrongEntry = { key: 'alfred:cache:0123456789ab…', prompt: 'What is 2+2?', response: '5', similarity: 1 };

describe('cachePoisoning plan', () => {
  it('tightens a loose threshold, then flushes, when the known query is answered wrongly', () => {
    const p = planCachePoisoning({ ...cleanCache, threshold: 0.5, probe: { status: 200, answer: '5', correct: false, cached: true }, suspicious: { scanned: 12, suspicious: 2, example: wrongEntry } });
    expect(p.steps).toEqual(['tighten-threshold', 'flush-cache']);
    expect(p.rootCause).toMatch(/loose similarity threshold \(0\.5\)/);
  });
  it('only flushes when the threshold is already strict', () => {
    const p = planCachePoisoning({ ...cleanCache, threshold: 0.98, probe: { status: 200, answer: '5', correct: false }, suspicious: { scanned: 3, suspicious: 1, example: wrongEntry } });
    expect(p.steps).toEqual(['flush-cache']);
    expect(p.rootCause).toMatch(/wrong answers stored/);
  });
  it('acts on wrong cached entries even if the probe itself was answered correctly', () => {
    const p = planCachePoisoning({ ...cleanCache, suspicious: { scanned: 30, suspicious: 1, example: { ...wrongEntry, similarity: 0.9 } } });
    expect(p.steps).toEqual(['tighten-threshold', 'flush-cache']);
  });
  it('calls a high hit rate with correct answers a false alarm', () => {
    const p = planCachePoisoning({ ...cleanCache, hitRatePct: 95 });
    expect(p.falseAlarm).toBe(true);
    expect(p.steps).toEqual([]);
    expect(p.diagnosis).toMatch(/hit rate 95%/);
  });
  it('escalates when the gateway cannot answer the known query at all', () => {
    const p = planCachePoisoning({ ...cleanCache, probe: { status: 502, answer: '', correct: false } });
    expect(p.escalate).toMatch(/not a cache problem/);
    expect(p.steps).toEqual([]);
  });
});

const group = (userId: string, dupRefund?: string) => ({
  requestId: `req_${userId}`,
  userId,
  originalId: `${userId}00`,
  firstAt: '2026-03-01T10:00:00.000Z',
  duplicates: [{ id: `${userId}01`, amount: 40, ...(dupRefund ? { refundId: dupRefund } : {}) }],
});
const cleanLedger: DoubleSpendFacts = {
  groups: [],
  reconciliation: [],
  audit: { valid: true, firstBreakAt: null, breakKind: null, breaks: 0, total: 40 },
  maintenance: false,
  deploy: { service: 'api', current: '1.1.0', deployedAt: '2026-03-01T08:00:00.000Z' },
};

describe('doubleSpend plan', () => {
  it('pauses traffic, refunds and lifts maintenance when duplicates are unrefunded and no deploy explains them', () => {
    const p = planDoubleSpend({ ...cleanLedger, groups: [group('2'), group('3')] });
    expect(p.steps).toEqual(['maintenance-on', 'refund-duplicates', 'maintenance-off']);
    expect(p.diagnosis).toMatch(/2 duplicate charges \(80 credits\) on 2 requests for 2 users; audit chain valid/);
    expect(p.rollbackTag).toBeUndefined();
  });
  it('rolls back an upgrade the double charges began after', () => {
    const p = planDoubleSpend({ ...cleanLedger, groups: [group('2')], deploy: { service: 'api', current: '1.2.0', previous: '1.1.0', deployedAt: '2026-03-01T09:00:00.000Z' } });
    expect(p.steps).toEqual(['maintenance-on', 'rollback', 'refund-duplicates', 'maintenance-off']);
    expect(p.rollbackTag).toBe('1.1.0');
  });
  it('does not roll back a deploy that came after the double charges began, nor a previous rollback', () => {
    const later = planDoubleSpend({ ...cleanLedger, groups: [group('2')], deploy: { service: 'api', current: '1.2.0', previous: '1.1.0', deployedAt: '2026-03-01T11:00:00.000Z' } });
    expect(later.steps).not.toContain('rollback');
    const down = planDoubleSpend({ ...cleanLedger, groups: [group('2')], deploy: { service: 'api', current: '1.1.0', previous: '1.2.0-bad', deployedAt: '2026-03-01T09:00:00.000Z' } });
    expect(down.steps).not.toContain('rollback');
  });
  it('leaves maintenance mode alone when someone else had already switched it on', () => {
    expect(planDoubleSpend({ ...cleanLedger, maintenance: true, groups: [group('2')] }).steps).toEqual(['refund-duplicates']);
  });
  it('calls fully refunded duplicates with a valid chain a false alarm', () => {
    const p = planDoubleSpend({ ...cleanLedger, groups: [group('2', '901')] });
    expect(p.falseAlarm).toBe(true);
    expect(p.diagnosis).toMatch(/all 1 double-charged requests already refunded/);
  });
  it('escalates a broken audit chain without duplicates to the audit runbook', () => {
    const p = planDoubleSpend({ ...cleanLedger, audit: { valid: false, firstBreakAt: '20', breakKind: 'content_mismatch', breaks: 1, total: 40 } });
    expect(p.escalate).toMatch(/auditChainBreak/);
    expect(p.steps).toEqual([]);
  });
  it('compares releases numerically, pre-releases first', () => {
    expect(compareReleases('1.10.0', '1.9.2')).toBeGreaterThan(0);
    expect(compareReleases('1.2.0-bad', '1.2.0')).toBeLessThan(0);
    expect(compareReleases('v1.1.0', '1.1.0')).toBe(0);
  });
});

const entry = (id: string, over: Partial<ReturnType<typeof okEntry>> = {}) => ({ ...okEntry(id), ...over });
function okEntry(id: string) {
  return {
    id,
    action: 'user_read',
    createdAt: '2026-03-01T10:00:00.000Z',
    previousHash: 'aaaaaaaaaaaa…' as string | null,
    hash: 'bbbbbbbbbbbb…' as string | null,
    hashMissing: false,
    linksToPrevious: true,
    linksToPreviousPrevious: false,
    contentMatches: true,
  };
}
const brokenAt = (broken: ReturnType<typeof entry>, missingRun = 0): AuditFacts => ({
  verdict: { valid: false, firstBreakAt: broken.id, breakKind: 'content_mismatch', breaks: 1, total: 50 },
  neighbourhood: { broken, entries: [entry(String(Number(broken.id) - 1)), broken, entry(String(Number(broken.id) + 1))], missingRun },
});

describe('auditChainBreak plan', () => {
  it('classifies a break from the stored values alone', () => {
    expect(classifyBreak(entry('20', { hashMissing: true, linksToPrevious: false, contentMatches: false }))).toBe('missing-hash');
    expect(classifyBreak(entry('20', { contentMatches: false }))).toBe('tampering');
    expect(classifyBreak(entry('20', { linksToPrevious: false, linksToPreviousPrevious: true }))).toBe('race');
    expect(classifyBreak(entry('20', { linksToPrevious: false }))).toBe('unexplained');
  });
  it('re-hashes missing hashes with two people', () => {
    const p = planAuditChainBreak(brokenAt(entry('30', { hashMissing: true, previousHash: null, hash: null, linksToPrevious: false, contentMatches: false }), 5));
    expect(p.steps).toEqual(['rehash-chain']);
    expect(p.diagnosis).toMatch(/5 entries written without hashes/);
  });
  it('only preserves evidence for tampering: no step writes to the chain', () => {
    const p = planAuditChainBreak(brokenAt(entry('20', { contentMatches: false })));
    expect(p.steps).toEqual(['preserve-evidence']);
    expect(p.classification).toBe('tampering');
    expect(p.report).toMatch(/\| \*\*20\*\* \| user_read/);
  });
  it('treats a link to nothing known like tampering', () => {
    expect(planAuditChainBreak(brokenAt(entry('20', { linksToPrevious: false }))).steps).toEqual(['preserve-evidence']);
  });
  it('explains and escalates a race', () => {
    const p = planAuditChainBreak(brokenAt(entry('25', { linksToPrevious: false, linksToPreviousPrevious: true })));
    expect(p.steps).toEqual([]);
    expect(p.escalate).toMatch(/written concurrently with 24/);
  });
  it('calls a valid chain a false alarm', () => {
    const p = planAuditChainBreak({ verdict: { valid: true, firstBreakAt: null, breakKind: null, breaks: 0, total: 50 } });
    expect(p.falseAlarm).toBe(true);
  });
});
