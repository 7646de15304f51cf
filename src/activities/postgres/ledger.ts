/**
 * Read-only questions about a target's billing tables (users, wallets, request_logs): who is at or
 * near their quota and who was charged what recently. Ids and numbers only: no emails, no keys.
 * Changes to balances go through the target's own admin API (idempotent top-ups), never raw SQL.
 */
import type { ActivityDeps } from '../engine/deps';
import type { PgSchemaNames } from '../../config';
import { withPgClient } from './postgres';
import { pgStatement, runStatement, targetSchemaNames, type PgStatement } from './pg-schema';

export interface QuotaUser {
  userId: number;
  walletId: number | null;
  usedTokens: number;
  personalQuota: number;
  balance: number | null;
}

export interface Deductions {
  userId: number;
  requests: number;
  deducted: number;
}

/**
 * Users (not admins) with their first wallet and where they stand against their quota. `$1` is the
 * share of the quota that counts as near, `$2` an optional list of user ids.
 */
export function quotaStatusStatement(schema: PgSchemaNames): PgStatement {
  return pgStatement(
    schema,
    (n) => `SELECT u.id::text AS user_id, w.id::text AS wallet_id, u.used_tokens::text AS used, u.personal_quota::text AS quota,
                w.balance::text AS balance, u.used_tokens >= u.personal_quota AS at_limit,
                u.used_tokens >= u.personal_quota * $1 / 100.0 AS near
           FROM users u LEFT JOIN LATERAL (
                SELECT ${n('wallets.id', 'w0')} AS id, ${n('wallets.balance', 'w0')} AS balance FROM ${n('wallets.table')} w0
                 WHERE ${n('wallets.userId', 'w0')} = u.id ORDER BY ${n('wallets.id', 'w0')} LIMIT 1) w ON true
          WHERE NOT ${n('users.isAdmin', 'u')} AND ($2::bigint[] IS NULL OR u.id = ANY($2::bigint[]))
          ORDER BY u.id`,
  );
}

export function createLedgerActivities(deps: ActivityDeps) {
  /** Users (not admins) at their quota, and how many are near it (`nearPct` of the quota used). */
  async function quotaStatus(input: { target: string; nearPct: number; userIds?: number[] }): Promise<{ atLimit: QuotaUser[]; nearLimit: number; users: number }> {
    const stmt = quotaStatusStatement(targetSchemaNames(deps, input.target));
    return withPgClient(deps, input.target, async (c) => {
      const ids = input.userIds?.filter((x) => Number.isInteger(x)) ?? null;
      const r = await runStatement<{ user_id: string; wallet_id: string | null; used: string; quota: string; balance: string | null; at_limit: boolean; near: boolean }>(
        c,
        input.target,
        stmt,
        [input.nearPct, ids],
      );
      const atLimit = r.rows
        .filter((x) => x.at_limit)
        .slice(0, 100)
        .map((x) => ({
          userId: Number(x.user_id),
          walletId: x.wallet_id === null ? null : Number(x.wallet_id),
          usedTokens: Number(x.used),
          personalQuota: Number(x.quota),
          balance: x.balance === null ? null : Number(x.balance),
        }));
      return { atLimit, nearLimit: r.rows.filter((x) => x.near && !x.at_limit).length, users: r.rows.length };
    });
  }

  /** Charges (positive amounts) per user in the last `minutes`, largest first. */
  async function recentDeductions(input: { target: string; minutes: number; limit?: number }): Promise<Deductions[]> {
    return withPgClient(deps, input.target, async (c) => {
      const r = await c.query<{ user_id: string; requests: string; deducted: string }>(
        `SELECT user_id::text AS user_id, count(*)::text AS requests, sum(amount)::text AS deducted
           FROM request_logs WHERE amount > 0 AND created_at > now() - make_interval(mins => $1)
          GROUP BY user_id ORDER BY sum(amount) DESC LIMIT $2`,
        [input.minutes, input.limit ?? 20],
      );
      return r.rows.map((x) => ({ userId: Number(x.user_id), requests: Number(x.requests), deducted: Number(x.deducted) }));
    });
  }

  return { quotaStatus, recentDeductions };
}
