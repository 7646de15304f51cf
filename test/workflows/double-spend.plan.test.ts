/** doubleSpend's decision (INC-08): a pure function over its findings, no Temporal needed. */
import { compareReleases, planDoubleSpend } from '../../src/workflows/double-spend';
import { healthyDoubleSpend } from '../fixtures/healthy-facts';

const group = (userId: string, dupRefund?: string) => ({
  requestId: `req_${userId}`,
  userId,
  originalId: `${userId}00`,
  firstAt: '2026-03-01T10:00:00.000Z',
  duplicates: [{ id: `${userId}01`, amount: 40, ...(dupRefund ? { refundId: dupRefund } : {}) }],
});

describe('doubleSpend plan', () => {
  it('pauses traffic, refunds and lifts maintenance when duplicates are unrefunded and no deploy explains them', () => {
    const p = planDoubleSpend({ ...healthyDoubleSpend, groups: [group('2'), group('3')] });
    expect(p.steps).toEqual(['maintenance-on', 'refund-duplicates', 'maintenance-off']);
    expect(p.diagnosis).toMatch(/2 duplicate charges \(80 credits\) on 2 requests for 2 users; audit chain valid/);
    expect(p.rollbackTag).toBeUndefined();
  });
  it('rolls back an upgrade the double charges began after', () => {
    const p = planDoubleSpend({ ...healthyDoubleSpend, groups: [group('2')], deploy: { service: 'api', current: '1.2.0', previous: '1.1.0', deployedAt: '2026-03-01T09:00:00.000Z' } });
    expect(p.steps).toEqual(['maintenance-on', 'rollback', 'refund-duplicates', 'maintenance-off']);
    expect(p.rollbackTag).toBe('1.1.0');
  });
  it('does not roll back a deploy that came after the double charges began, nor a previous rollback', () => {
    const later = planDoubleSpend({ ...healthyDoubleSpend, groups: [group('2')], deploy: { service: 'api', current: '1.2.0', previous: '1.1.0', deployedAt: '2026-03-01T11:00:00.000Z' } });
    expect(later.steps).not.toContain('rollback');
    const down = planDoubleSpend({ ...healthyDoubleSpend, groups: [group('2')], deploy: { service: 'api', current: '1.1.0', previous: '1.2.0-bad', deployedAt: '2026-03-01T09:00:00.000Z' } });
    expect(down.steps).not.toContain('rollback');
  });
  it('leaves maintenance mode alone when someone else had already switched it on', () => {
    expect(planDoubleSpend({ ...healthyDoubleSpend, maintenance: true, groups: [group('2')] }).steps).toEqual(['refund-duplicates']);
  });
  it('calls fully refunded duplicates with a valid chain a false alarm', () => {
    const p = planDoubleSpend({ ...healthyDoubleSpend, groups: [group('2', '901')] });
    expect(p.falseAlarm).toBe(true);
    expect(p.diagnosis).toMatch(/all 1 double-charged requests already refunded/);
  });
  it('escalates a broken audit chain without duplicates to the audit runbook', () => {
    const p = planDoubleSpend({ ...healthyDoubleSpend, audit: { valid: false, firstBreakAt: '20', breakKind: 'content_mismatch', breaks: 1, total: 40 } });
    expect(p.escalate).toMatch(/auditChainBreak/);
    expect(p.steps).toEqual([]);
  });
  it('compares releases numerically, pre-releases first', () => {
    expect(compareReleases('1.10.0', '1.9.2')).toBeGreaterThan(0);
    expect(compareReleases('1.2.0-bad', '1.2.0')).toBeLessThan(0);
    expect(compareReleases('v1.1.0', '1.1.0')).toBe(0);
  });
});
