/**
 * A target's billing period as its admin API reports it (GET /v1/admin/billing/status): which period
 * is running, which one was last reset and whether the running one's usage reset is still due.
 * Dates and flags only. The reset itself is an admin POST made by the runbook step (idempotent per
 * period on the target's side).
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { ActivityDeps } from '../engine/deps';
import { answerReader, apiSettings } from './api-fields';
import { ErrorType, describeError, permanent } from '../engine/errors';
import { createAdminClient } from './http';

export interface BillingStatus {
  /** False when the target does not answer (or has no billing endpoint): nothing is known. */
  available: boolean;
  periodStart?: string;
  lastResetPeriodStart?: string | null;
  lastResetAt?: string | null;
  resetDue?: boolean;
  /** Absent when the target does not report it (`api.fields.billingStatus.cronEnabled`). */
  cronEnabled?: boolean;
  error?: string;
  /** Fields of the answer that were missing, with the settings that name them. */
  unreadable?: string;
}

/** The attempt of the running activity; 1 outside an activity (tests calling it directly). */
function activityAttempt(): number {
  try {
    return Context.current().info.attempt;
  } catch {
    return 1;
  }
}

export function createBillingActivities(deps: ActivityDeps) {
  const adminCall = createAdminClient(deps);

  /**
   * The billing period's reset state (`api.paths.billingStatus`, read by `api.fields.billingStatus`);
   * an unreachable target, or an answer without a configured field, is a finding, not a failure.
   */
  async function billingStatus(input: { target: string }): Promise<BillingStatus> {
    const path = apiSettings(deps, input.target).paths.billingStatus;
    try {
      const res = await adminCall({ target: input.target, method: 'GET', path, timeoutMs: 5000 });
      const r = answerReader(deps, input.target, 'billingStatus', `GET ${path}`, res.body);
      const periodStart = r.string('periodStart');
      const resetDue = r.boolean('resetDue');
      const lastResetPeriodStart = r.nullableString('lastResetPeriodStart');
      const lastResetAt = r.nullableString('lastResetAt');
      const cronEnabled = r.boolean('cronEnabled');
      if (periodStart === undefined || resetDue === undefined) return { available: false, error: r.problems.join('; ') };
      return {
        available: true,
        periodStart,
        // Only shown in findings: a field the answer lacks stays absent and is named in `unreadable`.
        ...(lastResetPeriodStart !== undefined ? { lastResetPeriodStart } : {}),
        ...(lastResetAt !== undefined ? { lastResetAt } : {}),
        resetDue,
        ...(cronEnabled !== undefined ? { cronEnabled } : {}),
        ...(r.problems.length ? { unreadable: r.problems.join('; ') } : {}),
      };
    } catch (err) {
      return { available: false, error: describeError(err) };
    }
  }

  /**
   * The usage reset of the running period (`api.paths.billingReset`), naming the period so it never
   * lands in one that began after the diagnosis. Idempotent per period on the target's side.
   */
  async function resetBilling(input: { target: string; periodStart: string | undefined }): Promise<{ detail: string }> {
    const api = apiSettings(deps, input.target);
    const path = api.paths.billingReset;
    const f = api.fields.billingReset;
    const res = await adminCall({
      target: input.target,
      method: 'POST',
      path,
      ...(input.periodStart !== undefined ? { body: { [f.periodStart]: input.periodStart } } : { body: {} }),
    });
    const r = answerReader(deps, input.target, 'billingReset', `POST ${path}`, res.body);
    const period = r.string('answerPeriodStart') ?? input.periodStart ?? '?';
    const users = r.number('usersReset');
    const idempotent = r.boolean('idempotent');
    const repeat = idempotent === undefined ? '' : idempotent ? ' (it had already run: nothing changed)' : '';
    const unknown = r.problems.length ? `; ${r.problems.join('; ')}` : '';
    return { detail: `period ${period}: usage of ${users ?? '?'} users reset${repeat}${unknown}` };
  }

  /**
   * Tops up one wallet (seed 002: `POST /v1/wallets/<wallet_id>/topup` with `amount`, `reason`),
   * keyed by `idempotencyKey` (`api.fields.topup.idempotencyKey`) so a retry adds nothing.
   */
  async function topUpWallet(input: { target: string; walletId: number; amount: number; reason: string; idempotencyKey: string }): Promise<{ detail: string }> {
    const api = apiSettings(deps, input.target);
    const f = api.fields.topup;
    const path = `/v1/wallets/${input.walletId}/topup`;
    if (!Number.isSafeInteger(input.walletId) || input.walletId < 1) throw permanent(ErrorType.BadInput, `not a wallet id: ${input.walletId}`);
    const unsure = `wallet ${input.walletId} may or may not have received +${input.amount}: check its balance and ledger before topping up again (targets.${input.target}.api.idempotentTopups is false)`;
    // Without an idempotency key the target honours, a second attempt could credit twice.
    if (!api.idempotentTopups && activityAttempt() > 1) throw permanent(ErrorType.Refused, `an earlier attempt of this top-up ended without an answer: ${unsure}`);
    let res: { status: number; body: unknown };
    try {
      res = await adminCall({
        target: input.target,
        method: 'POST',
        path,
        body: { amount: input.amount, reason: input.reason, [f.idempotencyKey]: input.idempotencyKey },
      });
    } catch (err) {
      if (api.idempotentTopups || (err instanceof ApplicationFailure && err.nonRetryable)) throw err;
      throw permanent(ErrorType.Refused, `the top-up ended without an answer (${describeError(err)}): ${unsure}`);
    }
    const r = answerReader(deps, input.target, 'topup', `POST ${path}`, res.body);
    const id = r.id('topupId');
    const idempotent = r.boolean('idempotent');
    const unknown = r.problems.length ? `; ${r.problems.join('; ')}` : '';
    return { detail: `wallet ${input.walletId} +${input.amount} (top-up #${id ?? '?'}${idempotent ? ', already done' : ''}${unknown})` };
  }

  return { billingStatus, resetBilling, topUpWallet };
}
