/**
 * A target's billing period as its admin API reports it (GET /v1/admin/billing/status): which period
 * is running, which one was last reset and whether the running one's usage reset is still due.
 * Dates and flags only. The reset itself is an admin POST made by the runbook step (idempotent per
 * period on the target's side).
 */
import type { ActivityDeps } from './deps';
import { describeError } from './errors';
import { createHttpActivities } from './http';

export interface BillingStatus {
  /** False when the target does not answer (or has no billing endpoint): nothing is known. */
  available: boolean;
  periodStart?: string;
  lastResetPeriodStart?: string | null;
  lastResetAt?: string | null;
  resetDue?: boolean;
  cronEnabled?: boolean;
  error?: string;
}

const text = (v: unknown): string | null => (typeof v === 'string' ? v : null);

export function createBillingActivities(deps: ActivityDeps) {
  const http = createHttpActivities(deps);

  /** The billing period's reset state; an unreachable or older target is a finding, not a failure. */
  async function billingStatus(input: { target: string }): Promise<BillingStatus> {
    try {
      const r = await http.adminRequest({
        target: input.target,
        method: 'GET',
        path: '/v1/admin/billing/status',
        timeoutMs: 5000,
      });
      const b = r.body as Record<string, unknown>;
      if (typeof b.period_start !== 'string' || typeof b.reset_due !== 'boolean') {
        return { available: false, error: 'unexpected answer from /v1/admin/billing/status' };
      }
      return {
        available: true,
        periodStart: b.period_start,
        lastResetPeriodStart: text(b.last_reset_period_start),
        lastResetAt: text(b.last_reset_at),
        resetDue: b.reset_due,
        cronEnabled: b.cron_enabled !== false,
      };
    } catch (err) {
      return { available: false, error: describeError(err) };
    }
  }

  return { billingStatus };
}
