/**
 * Schema migrations, kept in code with their down SQL. Each release applies migrations up to its own
 * target at start; a release tolerates a newer schema (a later release may have migrated it), and the
 * newest applied migration can be reverted one step at a time (the playbook's "downgrade -1").
 */
import type { PoolClient } from 'pg';
import type { Db } from './db';

export interface Migration {
  version: number;
  name: string;
  up: string;
  down: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'core_ledger',
    up: `
      CREATE TABLE users (
        id bigserial PRIMARY KEY,
        email text NOT NULL UNIQUE,
        api_key_hash text NOT NULL UNIQUE,
        personal_quota bigint NOT NULL DEFAULT 100000,
        used_tokens bigint NOT NULL DEFAULT 0,
        is_admin boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE wallets (
        id bigserial PRIMARY KEY,
        user_id bigint NOT NULL REFERENCES users(id),
        balance bigint NOT NULL DEFAULT 0,
        hard_limit bigint NOT NULL DEFAULT 100000,
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE request_logs (
        id bigserial PRIMARY KEY,
        request_id text NOT NULL,
        user_id bigint NOT NULL REFERENCES users(id),
        amount bigint NOT NULL,
        refund_of bigint REFERENCES request_logs(id),
        model text,
        provider text,
        status text NOT NULL DEFAULT 'completed',
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE audit_logs (
        id bigserial PRIMARY KEY,
        actor_user_id bigint,
        action text NOT NULL,
        target_type text,
        target_id text,
        details jsonb NOT NULL DEFAULT '{}'::jsonb,
        created_at timestamptz NOT NULL DEFAULT now(),
        previous_hash text,
        hash text
      );
      CREATE TABLE token_transfers (
        id bigserial PRIMARY KEY,
        sender_id bigint NOT NULL REFERENCES users(id),
        recipient_id bigint NOT NULL REFERENCES users(id),
        amount bigint NOT NULL CHECK (amount > 0),
        status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'applied', 'failed')),
        created_at timestamptz NOT NULL DEFAULT now(),
        applied_at timestamptz
      );
      CREATE TABLE approval_requests (
        id bigserial PRIMARY KEY,
        transfer_id bigint NOT NULL REFERENCES token_transfers(id),
        status text NOT NULL DEFAULT 'pending',
        created_at timestamptz NOT NULL DEFAULT now()
      );
    `,
    down: `
      DROP TABLE approval_requests; DROP TABLE token_transfers; DROP TABLE audit_logs;
      DROP TABLE request_logs; DROP TABLE wallets; DROP TABLE users;
    `,
  },
  {
    version: 2,
    name: 'governance_and_refunds',
    up: `
      CREATE TABLE governance_settings (id int PRIMARY KEY CHECK (id = 1), settings jsonb NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());
      CREATE TABLE ip_blocks (ip text PRIMARY KEY, reason text, created_at timestamptz NOT NULL DEFAULT now());
      CREATE TABLE wallet_topups (
        id bigserial PRIMARY KEY,
        wallet_id bigint NOT NULL REFERENCES wallets(id),
        amount bigint NOT NULL,
        reason text,
        idempotency_key text UNIQUE,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE drill_counters (name text PRIMARY KEY, value bigint NOT NULL DEFAULT 0);
      CREATE UNIQUE INDEX request_logs_one_refund_per_charge ON request_logs (refund_of) WHERE refund_of IS NOT NULL;
    `,
    down: `
      DROP INDEX request_logs_one_refund_per_charge; DROP TABLE drill_counters; DROP TABLE wallet_topups;
      DROP TABLE ip_blocks; DROP TABLE governance_settings;
    `,
  },
  {
    version: 3,
    name: 'request_log_indexes',
    up: `
      CREATE INDEX request_logs_request_id_idx ON request_logs (request_id);
      CREATE INDEX request_logs_created_at_idx ON request_logs (created_at);
      CREATE INDEX audit_logs_created_at_idx ON audit_logs (created_at);
    `,
    down: `
      DROP INDEX audit_logs_created_at_idx; DROP INDEX request_logs_created_at_idx; DROP INDEX request_logs_request_id_idx;
    `,
  },
  {
    version: 4,
    name: 'wallet_currency',
    up: `ALTER TABLE wallets ADD COLUMN currency text NOT NULL DEFAULT 'credits';`,
    down: `ALTER TABLE wallets DROP COLUMN currency;`,
  },
];

/**
 * Tables outside the versioned chain: every release creates them if missing (idempotent) under the
 * migration lock, so they do not shift the version numbers that the release drills downgrade and
 * re-apply. Billing periods (drill/src/billing.ts): the period the tables first appear in counts as
 * already reset, so a first start never zeroes the usage the drill seeded.
 */
export const STANDING_SCHEMA = `
  CREATE TABLE IF NOT EXISTS billing_resets (
    id bigserial PRIMARY KEY,
    period_start date NOT NULL UNIQUE,
    ran_at timestamptz NOT NULL DEFAULT now(),
    users_reset int NOT NULL DEFAULT 0,
    trigger text NOT NULL DEFAULT 'cron'
  );
  CREATE TABLE IF NOT EXISTS billing_settings (
    id int PRIMARY KEY CHECK (id = 1),
    cron_enabled boolean NOT NULL DEFAULT true,
    updated_at timestamptz NOT NULL DEFAULT now()
  );
  INSERT INTO billing_settings (id) VALUES (1) ON CONFLICT (id) DO NOTHING;
  INSERT INTO billing_resets (period_start, users_reset, trigger)
    SELECT date_trunc('month', now() AT TIME ZONE 'UTC')::date, 0, 'baseline'
    WHERE NOT EXISTS (SELECT 1 FROM billing_resets);
`;

/** The schema version each release migrates to at start. */
export function targetVersion(appVersion: string): number {
  if (appVersion.startsWith('1.0.')) return 2;
  if (appVersion.startsWith('1.2.')) return 4;
  return 3;
}

/** The running service needs at least this schema; downgrades below it are refused. */
export const MIN_SCHEMA_VERSION = 2;

const LOCK_KEY = 7_402_311;

export interface MigrationRow {
  version: number;
  name: string;
  applied_at: string;
}

async function ensureTable(client: PoolClient): Promise<void> {
  await client.query(
    `CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
  );
}

async function currentVersion(client: PoolClient): Promise<number> {
  const { rows } = await client.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_migrations');
  return rows[0]?.v ?? 0;
}

/** Applies pending migrations up to `target` under an advisory lock; returns the versions applied. */
export async function migrateUp(db: Db, target: number): Promise<number[]> {
  return db.tx(async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEY]);
    await ensureTable(client);
    await client.query(STANDING_SCHEMA);
    const current = await currentVersion(client);
    const applied: number[] = [];
    for (const m of MIGRATIONS) {
      if (m.version <= current || m.version > target) continue;
      await client.query(m.up);
      await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      applied.push(m.version);
    }
    return applied;
  });
}

export class MigrationRefused extends Error {}

/** Reverts the newest `steps` migrations; refuses to go below MIN_SCHEMA_VERSION. */
export async function migrateDown(db: Db, steps: number): Promise<number[]> {
  return db.tx(async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEY]);
    await ensureTable(client);
    const reverted: number[] = [];
    for (let i = 0; i < steps; i++) {
      const current = await currentVersion(client);
      if (current - 1 < MIN_SCHEMA_VERSION) {
        throw new MigrationRefused(`schema version ${current} is the minimum this service runs on`);
      }
      const m = MIGRATIONS.find((x) => x.version === current);
      if (!m) throw new MigrationRefused(`no down migration known for version ${current}`);
      await client.query(m.down);
      await client.query('DELETE FROM schema_migrations WHERE version = $1', [m.version]);
      reverted.push(m.version);
    }
    return reverted;
  });
}

export async function migrationStatus(db: Db): Promise<{ current: number; history: MigrationRow[] }> {
  const history = await db.query<MigrationRow>(
    'SELECT version, name, applied_at FROM schema_migrations ORDER BY version',
  );
  const last = history[history.length - 1];
  return { current: last?.version ?? 0, history };
}
