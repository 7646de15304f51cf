/**
 * Read-only questions about a target's billing tables (users, wallets, request_logs): who is at or
 * near their quota and who was charged what recently. Ids and numbers only: no emails, no keys.
 * Changes to balances go through the target's own admin API (idempotent top-ups), never raw SQL.
 */
import type { ActivityDeps } from './deps';
import { withPgClient } from './postgres';

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

export function createLedgerActivities(deps: ActivityDeps) {
  /** Users (not admins) at their quota, and how many are near it (`nearPct` of the quota used). */
  async function quotaStatus(input: { target: string; nearPct: number; userIds?: number[] }): Promise<{ atLimit: QuotaUser[]; nearLimit: number; users: number }> {
    return withPgClient(deps, input.target, async (c) => {
      const ids = input.userIds?.filter((x) => Number.isInteger(x)) ?? null;
      const r = await c.query<{ user_id: string; wallet_id: string | null; used: string; quota: string; balance: string | null; at_limit: boolean; near: boolean }>(
        `SELECT u.id::text AS user_id, w.id::text AS wallet_id, u.used_tokens::text AS used, u.personal_quota::text AS quota,
                w.balance::text AS balance, u.used_tokens >= u.personal_quota AS at_limit,
                u.used_tokens >= u.personal_quota * $1 / 100.0 AS near
           FROM users u LEFT JOIN LATERAL (SELECT id, balance FROM wallets WHERE user_id = u.id ORDER BY id LIMIT 1) w ON true
          WHERE NOT u.is_admin AND ($2::bigint[] IS NULL OR u.id = ANY($2::bigint[]))
          ORDER BY u.id`,
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
