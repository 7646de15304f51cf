/**
 * Double charges in a target's ledger (INC-08): deductions that share one request id, per-user
 * reconciliation, and refunds. Ids and amounts only: no emails, no keys.
 *
 * A refund goes through the target's own admin API (it moves the balance and appends the audit entry
 * in one transaction) and is keyed by the charge it reverses: the ledger holds at most one refund per
 * charge (a unique index on `refund_of`), and this activity first looks for that refund, so a retry
 * after a lost answer or a dead worker finds it instead of refunding twice.
 *
 * `request_logs.user_id`, `request_id`, `amount` and `created_at` are the seeds' (seed 002); the row id
 * and the refund reference are settings (`postgres.schema.requestLogs`).
 */
import type { ActivityDeps } from '../engine/deps';
import { answerReader, apiSettings } from '../target-api/api-fields';
import { createAdminClient } from '../target-api/http';
import { ErrorType, permanent } from '../engine/errors';
import type { PgSchemaNames } from '../../config';
import { withPgClient } from './postgres';
import { pgStatement, runStatement, targetSchemaNames, type PgStatement } from './pg-schema';

export interface DuplicateCharge {
  id: string;
  amount: number;
  /** The refund already issued for this charge, if any. */
  refundId?: string;
}

export interface DuplicateGroup {
  requestId: string;
  userId: string;
  /** The first charge for the request: the one that stands. */
  originalId: string;
  firstAt: string;
  duplicates: DuplicateCharge[];
}

export interface UserReconciliation {
  userId: string;
  charges: number;
  requests: number;
  deducted: number;
  refunded: number;
}

const ID = /^[1-9][0-9]{0,17}$/;

/**
 * Charges (not refunds) in the last `$1` minutes that share a request id, grouped with the row ids in
 * order: the first stands, the others are duplicates.
 */
export function duplicateChargesStatement(schema: PgSchemaNames): PgStatement {
  return pgStatement(
    schema,
    (n) => `SELECT r.request_id, r.user_id::text AS user_id, array_agg(${n('requestLogs.id', 'r')}::text ORDER BY ${n('requestLogs.id', 'r')}) AS ids,
                array_agg(r.amount::text ORDER BY ${n('requestLogs.id', 'r')}) AS amounts, min(r.created_at) AS first_at
           FROM request_logs r
          WHERE r.created_at > now() - make_interval(mins => $1) AND r.amount > 0 AND ${n('requestLogs.refundOf', 'r')} IS NULL
          GROUP BY r.request_id, r.user_id HAVING count(*) > 1
          ORDER BY min(r.created_at) LIMIT 500`,
  );
}

/** The refund rows of the charges whose ids are `$1` (one per charge at most). */
export function refundsOfStatement(schema: PgSchemaNames): PgStatement {
  return pgStatement(
    schema,
    (n) =>
      `SELECT ${n('requestLogs.refundOf', 'r')}::text AS refund_of, ${n('requestLogs.id', 'r')}::text AS id FROM request_logs r
        WHERE ${n('requestLogs.refundOf', 'r')} = ANY($1::bigint[])`,
  );
}

export function createChargeActivities(deps: ActivityDeps) {
  const adminCall = createAdminClient(deps);

  /** Deductions in the window that share a request id with an earlier one, with any refunds of them. */
  async function findDuplicateCharges(input: { target: string; windowMinutes: number }): Promise<DuplicateGroup[]> {
    const schema = targetSchemaNames(deps, input.target);
    return withPgClient(deps, input.target, async (c) => {
      const groups = await runStatement<{ request_id: string; user_id: string; ids: string[]; amounts: string[]; first_at: Date }>(
        c,
        input.target,
        duplicateChargesStatement(schema),
        [input.windowMinutes],
      );
      const extraIds = groups.rows.flatMap((g) => g.ids.slice(1));
      const refunds = extraIds.length
        ? await runStatement<{ refund_of: string; id: string }>(c, input.target, refundsOfStatement(schema), [extraIds])
        : { rows: [] };
      const refundOf = new Map(refunds.rows.map((r) => [r.refund_of, r.id]));
      return groups.rows.map((g) => ({
        requestId: g.request_id,
        userId: g.user_id,
        originalId: g.ids[0] as string,
        firstAt: g.first_at.toISOString(),
        duplicates: g.ids.slice(1).map((id, i) => {
          const refundId = refundOf.get(id);
          return { id, amount: Number(g.amounts[i + 1]), ...(refundId ? { refundId } : {}) };
        }),
      }));
    });
  }

  /** Per user in the window: charges vs distinct requests, deducted vs refunded. */
  async function reconcileCharges(input: { target: string; windowMinutes: number; userIds: string[] }): Promise<UserReconciliation[]> {
    const ids = input.userIds.filter((id) => ID.test(id));
    if (ids.length === 0) return [];
    return withPgClient(deps, input.target, async (c) => {
      const r = await c.query<{ user_id: string; charges: string; requests: string; deducted: string; refunded: string }>(
        `SELECT user_id::text AS user_id,
                count(*) FILTER (WHERE amount > 0)::text AS charges,
                count(DISTINCT request_id) FILTER (WHERE amount > 0)::text AS requests,
                coalesce(sum(amount) FILTER (WHERE amount > 0), 0)::text AS deducted,
                coalesce(-sum(amount) FILTER (WHERE amount < 0), 0)::text AS refunded
           FROM request_logs
          WHERE created_at > now() - make_interval(mins => $1) AND user_id = ANY($2::bigint[])
          GROUP BY user_id ORDER BY user_id`,
        [input.windowMinutes, ids],
      );
      return r.rows.map((x) => ({
        userId: x.user_id,
        charges: Number(x.charges),
        requests: Number(x.requests),
        deducted: Number(x.deducted),
        refunded: Number(x.refunded),
      }));
    });
  }

  async function existingRefund(target: string, chargeId: string): Promise<string | undefined> {
    const stmt = refundsOfStatement(targetSchemaNames(deps, target));
    return withPgClient(deps, target, async (c) => {
      const r = await runStatement<{ id: string }>(c, target, stmt, [[chargeId]]);
      return r.rows[0]?.id;
    });
  }

  /** Refunds one duplicate charge, referencing it and the original it duplicates; never twice. */
  async function refundDuplicateCharge(input: { target: string; chargeId: string; originalId: string; reason: string }): Promise<{ refundId: string; applied: boolean }> {
    if (!ID.test(input.chargeId) || !ID.test(input.originalId)) throw permanent(ErrorType.BadInput, 'charge ids must be positive integers');
    const prior = await existingRefund(input.target, input.chargeId);
    if (prior) return { refundId: prior, applied: false };
    const api = apiSettings(deps, input.target);
    const path = api.paths.refunds;
    const res = await adminCall({
      target: input.target,
      method: 'POST',
      path,
      body: { [api.fields.refund.requestLogId]: input.chargeId, reason: `${input.reason}; duplicate of charge ${input.originalId}` },
    });
    const r = answerReader(deps, input.target, 'refund', `POST ${path}`, res.body);
    const idempotent = r.boolean('idempotent');
    // A refund that raced another one may come back without its id: the ledger row says which it is.
    const refundId = r.id('refundId') ?? (idempotent === true ? await existingRefund(input.target, input.chargeId) : undefined);
    // An answer that does not say which row the refund is, or whether it is new, is an error to look at.
    if (refundId === undefined || idempotent === undefined) r.orThrow();
    return { refundId: refundId as string, applied: idempotent !== true };
  }

  return { findDuplicateCharges, reconcileCharges, refundDuplicateCharge };
}
