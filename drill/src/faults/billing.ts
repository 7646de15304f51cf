/**
 * `billing-reset-missed` (INC-07, seed 002: "Billing reset didn't run?"): the billing cron is switched
 * off, the current period's reset never happened (the last recorded reset belongs to the previous
 * period), and a few test users still carry last period's usage, so they sit at their quota and get
 * 402. Undo puts back exactly what apply changed: the cron flag, the current period's reset rows
 * (replacing any reset run since), the previous period's row if apply planted it, and every user's
 * usage as it was.
 */
import type { Client } from 'pg';
import { BILLING_LOCK, periodStart, previousPeriodStart } from './replica-formats';
import type { FaultDef } from './catalog';
import type { FaultContext } from './context';
import { ensureStateTable } from './data-faults';

const NAME = 'billing-reset-missed';
/** Users of test-key-4, test-key-7 and test-key-8 (dave, grace, heidi): keys no other drill relies on. */
export const CARRYOVER_USER_IDS = [5, 8, 9];

interface ResetRow {
  period_start: string;
  ran_at: string;
  users_reset: number;
  trigger: string;
}

interface Saved {
  period: string;
  cronEnabled: boolean;
  currentResets: ResetRow[];
  plantedPrevious: string | null;
  usage: { id: string; used_tokens: string }[];
}

async function saved(pg: Client): Promise<Saved | undefined> {
  await ensureStateTable(pg);
  const { rows } = await pg.query<{ data: Saved }>('SELECT data FROM drill_fault_state WHERE name = $1', [NAME]);
  return rows[0]?.data;
}

async function inTx<T>(pg: Client, fn: () => Promise<T>): Promise<T> {
  await pg.query('BEGIN');
  try {
    // The api's cron and manual resets take the same lock: none runs half-way through this change.
    await pg.query('SELECT pg_advisory_xact_lock($1)', [BILLING_LOCK]);
    const out = await fn();
    await pg.query('COMMIT');
    return out;
  } catch (err) {
    await pg.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

async function hasBillingTables(pg: Client): Promise<boolean> {
  const { rows } = await pg.query<{ t: string | null }>("SELECT to_regclass('billing_resets')::text AS t");
  return rows[0]?.t !== null && rows[0]?.t !== undefined;
}

async function apply(ctx: FaultContext): Promise<string[]> {
  const pg = await ctx.pg();
  if (await saved(pg)) return ['the billing reset is already missed (fault active)'];
  if (!(await hasBillingTables(pg)))
    throw new Error('alfred has no billing tables yet: run scripts/stack.sh up so the api creates them');
  const now = new Date();
  const period = periodStart(now);
  const previous = previousPeriodStart(now);
  return inTx(pg, async () => {
    const cron = await pg.query<{ cron_enabled: boolean }>('SELECT cron_enabled FROM billing_settings WHERE id = 1');
    const current = await pg.query<ResetRow>(
      `SELECT period_start::text AS period_start, ran_at::text AS ran_at, users_reset, trigger
         FROM billing_resets WHERE period_start >= $1 ORDER BY period_start`,
      [period],
    );
    const usage = await pg.query<{ id: string; used_tokens: string }>(
      'SELECT id::text AS id, used_tokens::text AS used_tokens FROM users WHERE NOT is_admin ORDER BY id',
    );
    await pg.query('UPDATE billing_settings SET cron_enabled = false, updated_at = now() WHERE id = 1');
    await pg.query('DELETE FROM billing_resets WHERE period_start >= $1', [period]);
    const planted = await pg.query(
      `INSERT INTO billing_resets (period_start, ran_at, users_reset, trigger)
       VALUES ($1, $1::date + interval '10 seconds', $2, 'cron') ON CONFLICT (period_start) DO NOTHING`,
      [previous, usage.rows.length],
    );
    const carried = await pg.query(
      'UPDATE users SET used_tokens = personal_quota WHERE id = ANY($1::bigint[]) AND NOT is_admin',
      [CARRYOVER_USER_IDS],
    );
    const state: Saved = {
      period,
      cronEnabled: cron.rows[0]?.cron_enabled !== false,
      currentResets: current.rows,
      plantedPrevious: planted.rowCount ? previous : null,
      usage: usage.rows,
    };
    await pg.query('INSERT INTO drill_fault_state (name, data) VALUES ($1, $2)', [NAME, JSON.stringify(state)]);
    return [
      'billing cron switched off',
      `removed ${current.rows.length} reset row(s) of the period starting ${period}; the last reset is now the one of ${previous}`,
      `${carried.rowCount ?? 0} users (ids ${CARRYOVER_USER_IDS.join(', ')}) carry last period's usage: at their quota, chat answers 402`,
    ];
  });
}

async function undo(ctx: FaultContext): Promise<string[]> {
  const pg = await ctx.pg();
  const s = await saved(pg);
  if (!s) return ['no missed billing reset to undo'];
  return inTx(pg, async () => {
    const since = await pg.query('DELETE FROM billing_resets WHERE period_start >= $1', [s.period]);
    for (const r of s.currentResets) {
      await pg.query(
        'INSERT INTO billing_resets (period_start, ran_at, users_reset, trigger) VALUES ($1, $2, $3, $4)',
        [r.period_start, r.ran_at, r.users_reset, r.trigger],
      );
    }
    if (s.plantedPrevious) await pg.query('DELETE FROM billing_resets WHERE period_start = $1', [s.plantedPrevious]);
    await pg.query('UPDATE billing_settings SET cron_enabled = $1, updated_at = now() WHERE id = 1', [s.cronEnabled]);
    for (const u of s.usage) await pg.query('UPDATE users SET used_tokens = $2 WHERE id = $1', [u.id, u.used_tokens]);
    await pg.query('DELETE FROM drill_fault_state WHERE name = $1', [NAME]);
    return [
      `billing cron ${s.cronEnabled ? 'switched on' : 'left off'} again`,
      `reset rows of the period starting ${s.period} restored (${since.rowCount ?? 0} removed, ${s.currentResets.length} put back)`,
      `usage of ${s.usage.length} users restored`,
    ];
  });
}

export const billingResetMissed: FaultDef = {
  name: NAME,
  summary: `the billing cron is off and this period's reset never ran; users ${CARRYOVER_USER_IDS.join(', ')} carry last period's usage and get 402 (INC-07)`,
  options: {},
  async apply(ctx) {
    return { messages: await apply(ctx) };
  },
  async undo(ctx) {
    return { messages: await undo(ctx) };
  },
};
