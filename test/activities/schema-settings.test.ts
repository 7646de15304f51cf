/**
 * The activities on a target whose tables and columns are named otherwise than the replica's, set in
 * `postgres.schema`: a real PostgreSQL of the test's own (not the drill's), reached with `via: tcp`.
 * With the right settings the answers are those of the replica's schema; with a name the target
 * lacks, the activity fails permanently naming the setting, never reads another column.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import Docker from 'dockerode';
import pino from 'pino';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { ConfigSchema, type EngineConfig } from '../../src/config';
import { createActivities, type Activities } from '../../src/activities';
import { startThrowawayPg, type ThrowawayPg } from '../helpers/throwaway-pg';

jest.setTimeout(60_000);

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const ADMIN_KEY = 'ak_admin_0123456789abcdef';
const CAROL_KEY = 'ak_carol_0123456789abcdef';

const OTHER_NAMES = {
  users: { isAdmin: 'Admin', apiKeyHash: 'key_sha256', createdAt: 'signed_up' },
  wallets: { table: 'billing.purses', id: 'purse_id', userId: 'owner', balance: 'credits' },
  requestLogs: { id: 'log_id', status: 'outcome', provider: 'upstream', refundOf: 'reverses' },
};

const SCHEMA_SQL = `
  CREATE SCHEMA billing;
  CREATE TABLE users (
    id bigserial PRIMARY KEY, email text NOT NULL, key_sha256 text NOT NULL, personal_quota bigint NOT NULL,
    used_tokens bigint NOT NULL DEFAULT 0, "Admin" boolean NOT NULL DEFAULT false, signed_up timestamptz NOT NULL DEFAULT now());
  CREATE TABLE billing.purses (purse_id bigserial PRIMARY KEY, owner bigint NOT NULL REFERENCES users(id), credits bigint NOT NULL);
  CREATE TABLE request_logs (
    log_id bigserial PRIMARY KEY, request_id text NOT NULL, user_id bigint NOT NULL REFERENCES users(id), amount bigint NOT NULL,
    reverses bigint REFERENCES request_logs(log_id), upstream text, outcome text NOT NULL DEFAULT 'completed',
    created_at timestamptz NOT NULL DEFAULT now());
  CREATE TABLE audit_logs (
    id bigserial PRIMARY KEY, actor_user_id bigint, action text NOT NULL, target_type text, target_id text,
    created_at timestamptz NOT NULL DEFAULT now());
  INSERT INTO users (email, key_sha256, personal_quota, used_tokens, "Admin", signed_up) VALUES
    ('admin@alfred.local', '${sha256(ADMIN_KEY)}', 100, 100, true, '2026-01-02T03:04:05Z'),
    ('carol@example.com', '${sha256(CAROL_KEY)}', 100, 100, false, '2026-02-03T04:05:06Z'),
    ('dave@example.org', '${sha256('ak_dave')}', 100, 95, false, now()),
    ('eve@example.org', '${sha256('ak_eve')}', 100, 1, false, now());
  INSERT INTO billing.purses (owner, credits) VALUES (2, 10), (2, 99), (3, 5);
  INSERT INTO request_logs (request_id, user_id, amount, reverses, upstream, outcome) VALUES
    ('req-a', 2, 5, NULL, 'openai', 'completed'),
    ('req-a', 2, 5, NULL, 'openai', 'completed'),
    ('req-a', 2, -5, 2, NULL, 'refunded'),
    ('req-b', 2, 7, NULL, 'anthropic', 'completed'),
    ('req-b', 2, 7, NULL, 'anthropic', 'completed'),
    ('req-c', 3, 3, NULL, 'google', 'failed');
  INSERT INTO audit_logs (actor_user_id, action) VALUES (1, 'user_read'), (2, 'data_export');
`;

let pg: ThrowawayPg;
let acts: Activities;
// The failures below are expected: the environment's log of them is left out.
const env = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
const run = <A extends unknown[], R>(fn: (...a: A) => Promise<R>, ...args: A): Promise<R> => env.run(fn, ...args);

/** A target on the test's server; `schema` as in the configuration file. */
function target(schema?: unknown) {
  return {
    baseUrl: 'http://127.0.0.1:9',
    containers: { project: 'schema-test' },
    components: ['api', 'db'],
    adminKey: { value: ADMIN_KEY },
    postgres: {
      via: 'tcp',
      host: pg.host,
      port: pg.port,
      user: pg.user,
      password: { value: 'unused-trust-auth' },
      database: pg.database,
      ...(schema === undefined ? {} : { schema }),
    },
  };
}

async function expectSchemaFailure(p: Promise<unknown>, setting: string): Promise<ApplicationFailure> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  const f = err as ApplicationFailure;
  expect(f.nonRetryable).toBe(true);
  expect(f.type).toBe('NotConfigured');
  expect(f.message).toContain(setting);
  return f;
}

beforeAll(async () => {
  pg = await startThrowawayPg();
  const c = await pg.connect();
  try {
    await c.query(SCHEMA_SQL);
  } finally {
    await c.end();
  }
  const config: EngineConfig = ConfigSchema.parse({
    docker: { socketPath: path.join(__dirname, 'no-docker.sock') },
    policy: { approvers: ['alice'], tiers: [{ name: 'tier-1', waitMs: 1000 }] },
    targets: {
      other: target(OTHER_NAMES),
      replica: target(),
      'no-wallet-id': target({ ...OTHER_NAMES, wallets: { ...OTHER_NAMES.wallets, id: 'id' } }),
    },
  });
  acts = createActivities({
    config,
    docker: new Docker({ socketPath: config.docker.socketPath }),
    logger: pino({ level: 'silent' }),
  });
});

afterAll(() => pg?.stop());

describe('names set in postgres.schema', () => {
  test('quota status: admins left out, the first wallet of each user', async () => {
    const r = await run(acts.quotaStatus, { target: 'other', nearPct: 90 });
    expect(r).toEqual({
      atLimit: [{ userId: 2, walletId: 1, usedTokens: 100, personalQuota: 100, balance: 10 }],
      nearLimit: 1,
      users: 3,
    });
  });

  test('key-hash self-check, key owners, leaked keys still valid', async () => {
    expect(await run(acts.adminKeyHashCheck, { target: 'other' })).toEqual({
      reachable: true,
      matches: true,
      email: 'admin@alfred.local',
      isAdmin: true,
    });
    expect(await run(acts.keyOwners, { target: 'other', keyIds: [sha256(CAROL_KEY).slice(0, 12)] })).toEqual([
      { keyId: sha256(CAROL_KEY).slice(0, 12), userId: 2, tenant: 'example.com' },
    ]);
    const fp = sha256(CAROL_KEY).slice(0, 12);
    expect(
      await run(acts.leakedKeysValid, {
        target: 'other',
        keys: [
          { userId: 2, fingerprint: fp },
          { userId: 3, fingerprint: fp },
        ],
      }),
    ).toEqual({
      valid: [{ userId: 2, fingerprint: fp }],
    });
  });

  test('access actions by admins and others', async () => {
    const r = await run(acts.auditAccess, { target: 'other', hours: 1 });
    expect(r).toMatchObject({ count: 2, byAction: { user_read: 1, data_export: 1 }, actors: [1, 2], byNonAdmins: 1 });
  });

  test('support lookups: the account and its request rows', async () => {
    expect(await run(acts.lookupUser, { target: 'other', email: 'CAROL@example.com' })).toEqual({
      found: true,
      userId: '2',
      isAdmin: false,
      createdAt: '2026-02-03T04:05:06.000Z',
    });
    const from = new Date(Date.now() - 3600_000).toISOString();
    const to = new Date(Date.now() + 60_000).toISOString();
    const rows = await run(acts.requestRows, { target: 'other', userId: '2', requestId: 'req-c', from, to });
    expect(rows).toMatchObject({ inWindow: 4, byStatus: { completed: 4 } });
    expect(rows.match).toMatchObject({ rowId: '6', mine: false, amount: 3, status: 'failed', provider: 'google' });
  });

  test('duplicate charges and the refunds already made', async () => {
    const groups = await run(acts.findDuplicateCharges, { target: 'other', windowMinutes: 60 });
    expect(groups.map((g) => ({ requestId: g.requestId, originalId: g.originalId, duplicates: g.duplicates }))).toEqual(
      [
        { requestId: 'req-a', originalId: '1', duplicates: [{ id: '2', amount: 5, refundId: '3' }] },
        { requestId: 'req-b', originalId: '4', duplicates: [{ id: '5', amount: 7 }] },
      ],
    );
    // The refund already made is found before the admin API is asked (nothing listens at baseUrl).
    expect(
      await run(acts.refundDuplicateCharge, { target: 'other', chargeId: '2', originalId: '1', reason: 'test' }),
    ).toEqual({
      refundId: '3',
      applied: false,
    });
  });
});

describe('a name the target lacks fails, naming its setting', () => {
  test('the replica’s names on this target', async () => {
    await expectSchemaFailure(
      run(acts.quotaStatus, { target: 'replica', nearPct: 90 }),
      'targets.replica.postgres.schema.wallets.table',
    );
    // A database that answers but lacks a column is not an unreachable database (INC-06 would hand off to INC-01).
    await expectSchemaFailure(
      run(acts.adminKeyHashCheck, { target: 'replica' }),
      'targets.replica.postgres.schema.users.',
    );
    await expectSchemaFailure(
      run(acts.lookupUser, { target: 'replica', email: 'carol@example.com' }),
      'targets.replica.postgres.schema.users.',
    );
    await expectSchemaFailure(
      run(acts.findDuplicateCharges, { target: 'replica', windowMinutes: 60 }),
      'targets.replica.postgres.schema.requestLogs.',
    );
    await expectSchemaFailure(
      run(acts.keyOwners, { target: 'replica', keyIds: ['abcdef012345'] }),
      'targets.replica.postgres.schema.users.apiKeyHash',
    );
  });

  test('a wallet id column the wallets table lacks is never taken from users', async () => {
    // users has an "id": unqualified, the wallet query would silently read the user's id instead.
    const f = await expectSchemaFailure(
      run(acts.quotaStatus, { target: 'no-wallet-id', nearPct: 90 }),
      'targets.no-wallet-id.postgres.schema.wallets.id',
    );
    expect(f.message).toMatch(/^column "id" does not exist on target "no-wallet-id"/);
  });
});
