/**
 * Billing periods of the gateway: usage (`users.used_tokens`) counts per calendar month (UTC) and is
 * zeroed for every non-admin user when a period starts. Each reset is recorded once per period in
 * `billing_resets` (period_start is unique), so a second reset of the same period changes nothing and
 * says so. An in-process cron runs the reset at period start; `billing_settings.cron_enabled` switches
 * it off, which is how a reset gets missed (INC-07, seed 002: "Billing reset didn't run? → Trigger
 * manual wallet reset"). The tables are created by every release (drill/src/migrations.ts).
 */
import type { PoolClient } from 'pg';
import { appendAudit } from './audit-chain';
import type { Db } from './db';
import { HttpError, type Ctx, type Router } from './http';
import { log } from './log';

/** Serialises resets, the cron and the fault injector's edits of the billing tables. */
export const BILLING_LOCK = 7_402_377;
/** How often the cron looks for a period whose reset has not run: at most this late after period start. */
export const CRON_INTERVAL_MS = 30_000;

export interface BillingStatus {
  period_start: string;
  last_reset_period_start: string | null;
  last_reset_at: string | null;
  reset_due: boolean;
  cron_enabled: boolean;
}

export interface ResetResult {
  period_start: string;
  users_reset: number;
  idempotent: boolean;
  ran_at: string;
}

type Trigger = 'cron' | 'manual';

const iso = (d: Date) => d.toISOString().slice(0, 10);

/** First day (YYYY-MM-DD) of the calendar month, UTC, that contains `at`. */
export function periodStart(at: Date): string {
  return iso(new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), 1)));
}

/** First day of the period before the one that contains `at`. */
export function previousPeriodStart(at: Date): string {
  return iso(new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() - 1, 1)));
}

interface Queryable {
  query<R extends object>(sql: string, params?: unknown[]): Promise<{ rows: R[] }>;
}

export async function readBillingStatus(q: Queryable, now = new Date()): Promise<BillingStatus> {
  const period = periodStart(now);
  const last = await q.query<{ period_start: string; ran_at: Date }>(
    'SELECT period_start::text AS period_start, ran_at FROM billing_resets ORDER BY period_start DESC LIMIT 1',
  );
  const cron = await q.query<{ cron_enabled: boolean }>('SELECT cron_enabled FROM billing_settings WHERE id = 1');
  const row = last.rows[0];
  return {
    period_start: period,
    last_reset_period_start: row?.period_start ?? null,
    last_reset_at: row ? row.ran_at.toISOString() : null,
    // YYYY-MM-DD strings order as the dates do.
    reset_due: !row || row.period_start < period,
    cron_enabled: cron.rows[0]?.cron_enabled !== false,
  };
}

/**
 * Resets usage for `period` once: the billing_resets row is claimed first, so a second call (or a
 * cron tick racing a manual reset) finds it and changes nothing.
 */
async function resetPeriod(
  c: PoolClient,
  period: string,
  trigger: Trigger,
  actorUserId: string | null,
): Promise<ResetResult> {
  await c.query('SELECT pg_advisory_xact_lock($1)', [BILLING_LOCK]);
  const claim = await c.query<{ id: string; ran_at: Date }>(
    `INSERT INTO billing_resets (period_start, users_reset, trigger) VALUES ($1, 0, $2)
     ON CONFLICT (period_start) DO NOTHING RETURNING id::text AS id, ran_at`,
    [period, trigger],
  );
  const claimed = claim.rows[0];
  if (!claimed) {
    const prior = await c.query<{ users_reset: number; ran_at: Date }>(
      'SELECT users_reset, ran_at FROM billing_resets WHERE period_start = $1',
      [period],
    );
    const p = prior.rows[0];
    return {
      period_start: period,
      users_reset: p?.users_reset ?? 0,
      idempotent: true,
      ran_at: (p?.ran_at ?? new Date()).toISOString(),
    };
  }
  const users = await c.query('UPDATE users SET used_tokens = 0 WHERE NOT is_admin');
  const count = users.rowCount ?? 0;
  await c.query('UPDATE billing_resets SET users_reset = $2 WHERE id = $1', [claimed.id, count]);
  await appendAudit(c, {
    actorUserId,
    action: 'billing_reset',
    targetType: 'billing_period',
    targetId: period,
    details: { trigger, users_reset: count },
  });
  log('info', 'billing reset', { period_start: period, trigger, users_reset: count });
  return { period_start: period, users_reset: count, idempotent: false, ran_at: claimed.ran_at.toISOString() };
}

/** One cron tick: resets the current period if its reset has not run and the cron is on. */
export async function billingCronTick(db: Db, now = new Date()): Promise<ResetResult | null> {
  const period = periodStart(now);
  return db.tx(async (c) => {
    await c.query('SELECT pg_advisory_xact_lock($1)', [BILLING_LOCK]);
    const status = await readBillingStatus(c, now);
    if (!status.cron_enabled || !status.reset_due) return null;
    return resetPeriod(c, period, 'cron', null);
  });
}

/** GET /v1/admin/billing/status and POST /v1/admin/billing/reset (admin key, like the other admin endpoints). */
export function registerBillingRoutes(
  r: Router,
  d: { db: Db; authAdmin: (ctx: Ctx) => Promise<{ id: string }>; requireSchema: () => void },
): void {
  r.on('GET', '/v1/admin/billing/status', async (ctx) => {
    await d.authAdmin(ctx);
    d.requireSchema();
    return readBillingStatus({ query: async (sql, params) => ({ rows: await d.db.query(sql, params) }) });
  });

  r.on('POST', '/v1/admin/billing/reset', async (ctx) => {
    const actor = await d.authAdmin(ctx);
    d.requireSchema();
    const body = await ctx.body().catch(() => ({}) as Record<string, unknown>);
    const period = periodStart(new Date());
    if (body.period_start !== undefined && body.period_start !== period) {
      // Only the running period can be reset: an old one would zero usage that belongs to now.
      throw new HttpError(400, `only the current period (${period}) can be reset`);
    }
    return d.db.tx((c) => resetPeriod(c, period, 'manual', actor.id));
  });
}
