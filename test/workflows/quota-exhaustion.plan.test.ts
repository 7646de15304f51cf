/** quotaExhaustion's decision: a pure function over its findings, no Temporal needed. */
import { planQuotaExhaustion, refusedUsers, topupAmount, userIds, type QuotaFacts } from '../../src/workflows/quota-exhaustion';

const judy = { userId: 11, walletId: 11, usedTokens: 20000, personalQuota: 20000, balance: 0 };
const calmQuota: QuotaFacts = {
  affected: [],
  atLimitCount: 1,
  nearLimitCount: 0,
  refusedUserIds: [],
  deductions: [],
  calcErrors: 0,
  windowMinutes: 15,
  topupCap: 5000,
};

describe('quotaExhaustion plan', () => {
  it('tops up after a legitimate spike', () => {
    const p = planQuotaExhaustion({ ...calmQuota, affected: [judy], refusedUserIds: [11] });
    expect(p.steps).toEqual(['topup-affected']);
    expect(p.severity).toBeUndefined();
  });
  it('raises a calculation bug to SEV-1 and rolls back before topping up', () => {
    const p = planQuotaExhaustion({ ...calmQuota, affected: [judy], refusedUserIds: [11], calcErrors: 4, calcErrorSample: 'credit_calc error' });
    expect(p.severity).toBe(1);
    expect(p.steps).toEqual(['rollback-release', 'topup-affected']);
  });
  it('calls users at their quota but not refused a false alarm', () => {
    expect(planQuotaExhaustion(calmQuota).falseAlarm).toBe(true);
  });
  const due = { available: true, periodStart: '2026-11-01', lastResetPeriodStart: '2026-10-01', lastResetAt: '2026-10-01T00:00:10.000Z', resetDue: true, cronEnabled: false };
  it('triggers the missed billing reset instead of a top-up when the period was never reset', () => {
    const p = planQuotaExhaustion({ ...calmQuota, affected: [judy], refusedUserIds: [11], billing: due });
    expect(p.steps).toEqual(['trigger-billing-reset']);
    expect(p.severity).toBeUndefined();
    expect(p.diagnosis).toMatch(/missed billing reset: the period starting 2026-11-01 was never reset \(last reset: 2026-10-01; the reset cron is disabled\)/);
    expect(p.rootCause).toMatch(/billing reset for the period starting 2026-11-01 did not run/);
  });
  it('lets a calculation bug win over a missed reset (a reset would hide inflated deductions)', () => {
    const p = planQuotaExhaustion({ ...calmQuota, affected: [judy], refusedUserIds: [11], calcErrors: 2, billing: due });
    expect(p.steps).toEqual(['rollback-release', 'topup-affected']);
    expect(p.severity).toBe(1);
  });
  it('keeps the spike branch when the reset ran, or its state is unknown or unread', () => {
    const spike = { ...calmQuota, affected: [judy], refusedUserIds: [11] };
    for (const billing of [{ ...due, resetDue: false, lastResetPeriodStart: '2026-11-01' }, { available: false, error: 'HTTP 404' }, undefined]) {
      expect(planQuotaExhaustion({ ...spike, ...(billing ? { billing } : {}) }).steps).toEqual(['topup-affected']);
    }
  });
  it('does not reset usage when nobody was refused, even with the reset due', () => {
    const p = planQuotaExhaustion({ ...calmQuota, billing: due });
    expect(p.falseAlarm).toBe(true);
    expect(p.steps).toEqual([]);
  });
  it('reads refused user ids from logfmt request lines only', () => {
    expect(
      refusedUsers([
        'ts=1 level=info method=POST path=/v1/chat/completions status=402 duration_ms=2 user_id=11 request_id=a',
        'ts=2 level=info method=POST path=/v1/chat/completions status=200 duration_ms=2 user_id=3 request_id=b',
        'ts=3 level=info status=402 user_id=4',
        'ts=4 level=info status=402 user_id=11',
      ]),
    ).toEqual([4, 11]);
  });
  it('takes refused user ids from the counts by logs.userId, numeric ones only, ascending', () => {
    expect(userIds({ '11': 2, '4': 1, 'null': 3, 'u-7': 1 })).toEqual([4, 11]);
  });
  it('caps a top-up and covers the overage plus an hour at the recent rate', () => {
    expect(topupAmount(judy, 0, 5000)).toBe(2000);
    expect(topupAmount({ ...judy, usedTokens: 21000 }, 3000, 5000)).toBe(4000);
    expect(topupAmount({ ...judy, usedTokens: 90000 }, 3000, 5000)).toBe(5000);
  });
});
