/** auditChainBreak's decision (INC-09): a pure function over its findings, no Temporal needed. */
import { classifyBreak, planAuditChainBreak, type AuditFacts } from '../../src/workflows/audit-chain-break';
import { auditChainBreakEntryBase } from '../fixtures/healthy-facts';

const entry = (id: string, over: Partial<typeof auditChainBreakEntryBase> = {}) => ({ id, ...auditChainBreakEntryBase, ...over });
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
