/** Deterministic seed data for an empty database: users, wallets, traffic history, an audit chain, transfers. */
import type { Db } from './db';
import { appendAudit } from './audit-chain';
import { ADMIN_EMAIL, hashKey, testKey, TEST_USER_COUNT } from './keys';
import { log } from './log';

const NAMES = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'judy'];
const MODELS: Array<[string, string]> = [
  ['gpt-4o-mini', 'openai'],
  ['gpt-4o', 'openai'],
  ['claude-3-5-sonnet', 'anthropic'],
  ['claude-3-haiku', 'anthropic'],
  ['gemini-1.5-pro', 'google'],
];
const AUDIT_ACTIONS = [
  'user_created',
  'wallet_topup',
  'settings_changed',
  'user_read',
  'data_export',
  'transfer_approved',
];

/** Small deterministic generator so every fresh stack gets the same data. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

export const DEFAULT_SETTINGS = {
  cache_only_mode: false,
  maintenance_mode: false,
  cache_similarity_threshold: 0.9,
  disabled_providers: [] as string[],
  reason: null as string | null,
};

/** Keeps the bootstrap admin's stored hash in line with ADMIN_KEY. */
export async function syncAdmin(db: Db, adminKey: string): Promise<void> {
  if (!adminKey) return;
  await db.query('UPDATE users SET api_key_hash = $1, is_admin = true WHERE email = $2', [
    hashKey(adminKey),
    ADMIN_EMAIL,
  ]);
}

export async function seedIfEmpty(db: Db, adminKey: string): Promise<boolean> {
  return db.tx(async (c) => {
    await c.query('LOCK TABLE users IN EXCLUSIVE MODE');
    const { rows } = await c.query<{ n: string }>('SELECT count(*)::text AS n FROM users');
    if (Number(rows[0]?.n ?? 0) > 0) return false;
    const rand = rng(20260220);
    const now = Date.now();

    await c.query(
      `INSERT INTO users (id, email, api_key_hash, personal_quota, used_tokens, is_admin, created_at)
       VALUES (1, $1, $2, 10000000, 0, true, now() - interval '90 days')`,
      [ADMIN_EMAIL, hashKey(adminKey || 'unset-admin-key')],
    );
    for (let n = 1; n <= TEST_USER_COUNT; n++) {
      const name = NAMES[n - 1] ?? `user${n}`;
      // The last test user sits exactly at its quota, for quota-exhaustion drills.
      const quota = n === TEST_USER_COUNT ? 20000 : 1000000;
      const used = n === TEST_USER_COUNT ? 20000 : Math.floor(rand() * 50000);
      await c.query(
        `INSERT INTO users (id, email, api_key_hash, personal_quota, used_tokens, is_admin, created_at)
         VALUES ($1, $2, $3, $4, $5, false, now() - ($6 || ' days')::interval)`,
        [n + 1, `${name}@example.com`, hashKey(testKey(n)), quota, used, String(30 + n)],
      );
    }
    await c.query(`SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT max(id) FROM users))`);
    await c.query(
      `INSERT INTO wallets (id, user_id, balance, hard_limit)
       SELECT id, id, CASE WHEN personal_quota <= used_tokens THEN 0 ELSE 50000 END, 100000 FROM users ORDER BY id`,
    );
    await c.query(`SELECT setval(pg_get_serial_sequence('wallets', 'id'), (SELECT max(id) FROM wallets))`);

    const reqIds: string[] = [];
    const userIds: number[] = [];
    const amounts: number[] = [];
    const models: string[] = [];
    const providers: string[] = [];
    const times: Date[] = [];
    for (let i = 0; i < 300; i++) {
      const [model, provider] = MODELS[Math.floor(rand() * MODELS.length)]!;
      reqIds.push(`req_seed_${i.toString(16).padStart(6, '0')}`);
      userIds.push(2 + Math.floor(rand() * TEST_USER_COUNT));
      amounts.push(5 + Math.floor(rand() * 200));
      models.push(model);
      providers.push(provider);
      times.push(new Date(now - Math.floor(rand() * 6 * 3600 * 1000)));
    }
    await c.query(
      `INSERT INTO request_logs (request_id, user_id, amount, model, provider, status, created_at)
       SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::timestamptz[])`,
      [reqIds, userIds, amounts, models, providers, reqIds.map(() => 'completed'), times],
    );

    for (let i = 0; i < 50; i++) {
      const action = AUDIT_ACTIONS[Math.floor(rand() * AUDIT_ACTIONS.length)]!;
      const target = 2 + Math.floor(rand() * TEST_USER_COUNT);
      const details: Record<string, unknown> =
        action === 'wallet_topup'
          ? { amount: 100 * (1 + Math.floor(rand() * 50)), reason: 'monthly allowance' }
          : action === 'settings_changed'
            ? { changed: { cache_similarity_threshold: 0.9 }, reason: 'tuning' }
            : { source: 'seed', note: `${action} for user ${target}` };
      await appendAudit(c, {
        actorUserId: 1,
        action,
        targetType: action === 'wallet_topup' ? 'wallet' : 'user',
        targetId: target,
        details,
        createdAt: new Date(now - (50 - i) * 3600 * 1000),
      });
    }

    for (let i = 0; i < 20; i++) {
      const sender = 2 + (i % TEST_USER_COUNT);
      const recipient = 2 + ((i + 3) % TEST_USER_COUNT);
      const status = i < 15 ? 'applied' : i < 18 ? 'pending' : 'failed';
      const created = new Date(now - (20 - i) * 1800 * 1000);
      const { rows: t } = await c.query<{ id: string }>(
        `INSERT INTO token_transfers (sender_id, recipient_id, amount, status, created_at, applied_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id::text AS id`,
        [
          sender,
          recipient,
          100 + i * 10,
          status,
          created,
          status === 'applied' ? new Date(created.getTime() + 5000) : null,
        ],
      );
      if (i % 4 === 0) {
        await c.query('INSERT INTO approval_requests (transfer_id, status, created_at) VALUES ($1, $2, $3)', [
          t[0]!.id,
          status === 'applied' ? 'approved' : 'pending',
          created,
        ]);
      }
    }
    await c.query(`INSERT INTO governance_settings (id, settings) VALUES (1, $1) ON CONFLICT (id) DO NOTHING`, [
      JSON.stringify(DEFAULT_SETTINGS),
    ]);
    log('info', 'seeded drill data', {
      users: TEST_USER_COUNT + 1,
      request_logs: 300,
      audit_logs: 50,
      token_transfers: 20,
    });
    return true;
  });
}
