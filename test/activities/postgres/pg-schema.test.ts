/**
 * The table and column names the seeds do not state, as they reach SQL: each statement uses the
 * configured name, quoted as an identifier, and a name the target lacks fails permanently, naming the
 * setting that fixes it.
 */
import { ApplicationFailure } from '@temporalio/common';
import { TargetSchema, type PgSchemaNames } from '../../../src/config';
import { userByKeyHashStatement } from '../../../src/activities/target-api/auth';
import { duplicateChargesStatement, refundsOfStatement } from '../../../src/activities/postgres/charges';
import { quotaStatusStatement } from '../../../src/activities/postgres/ledger';
import { PgExecError, PsqlSession } from '../../../src/activities/postgres/pg-exec';
import {
  isSchemaFailure,
  pgStatement,
  runStatement,
  schemaFailure,
  type PgStatement,
} from '../../../src/activities/postgres/pg-schema';
import { keyOwnersStatement } from '../../../src/activities/target-api/rate-limits';
import { auditAccessStatement, keyFingerprintsStatement, usersByKeyHashStatement } from '../../../src/activities/postgres/security';
import {
  requestRowStatement,
  requestsByStatusStatement,
  userByEmailStatement,
  userTransfersStatement,
} from '../../../src/activities/postgres/support';

function schemaOf(schema?: unknown): PgSchemaNames {
  const t = TargetSchema.parse({
    baseUrl: 'http://127.0.0.1:58000',
    containers: { project: 'alfred' },
    components: ['db'],
    postgres: { database: 'alfred', ...(schema === undefined ? {} : { schema }) },
  });
  return t.postgres!.schema;
}

const DEFAULTS = schemaOf();
const OTHER = schemaOf({
  users: { isAdmin: 'Admin', apiKeyHash: 'key_sha256', createdAt: 'signed_up' },
  wallets: { table: 'billing.purses', id: 'purse_id', userId: 'owner', balance: 'credits' },
  requestLogs: { id: 'log_id', status: 'outcome', provider: 'upstream', refundOf: 'reverses' },
  transfers: { appliedAt: 'settled_at' },
  approvals: { id: 'approval_no', transferId: 'for_transfer', status: 'decision', createdAt: 'asked_at' },
});

/** The replica's own names, which must not appear where another name is configured. */
const REPLICA_NAMES =
  /"is_admin"|"api_key_hash"|\bwallets\b|"balance"|"refund_of"|"status"|"provider"|"id"|"created_at"|"user_id"|"applied_at"|"transfer_id"/;

const STATEMENTS: [string, (s: PgSchemaNames) => PgStatement, string[]][] = [
  [
    'quotaStatus',
    quotaStatusStatement,
    ['NOT u."Admin"', 'FROM "billing"."purses" w0', 'w0."purse_id"', 'w0."owner" = u.id', 'w0."credits"'],
  ],
  ['adminKeyHashCheck', userByKeyHashStatement, ['u."Admin" AS is_admin', 'u."key_sha256" = $1']],
  ['keyOwners', keyOwnersStatement, ['u."key_sha256" LIKE k.id']],
  ['scanLogsForPii', usersByKeyHashStatement, ['u."key_sha256" AS api_key_hash', 'u."key_sha256" = ANY($1::text[])']],
  ['auditAccess', auditAccessStatement, ['bool_or(u."Admin")']],
  ['leakedKeysValid', keyFingerprintsStatement, ['left(u."key_sha256", 12)']],
  ['lookupUser', userByEmailStatement, ['u."Admin" AS is_admin', 'u."signed_up" AS created_at']],
  ['requestRows (by status)', requestsByStatusStatement, ['r."outcome" AS status', 'GROUP BY r."outcome"']],
  [
    'requestRows (the request)',
    requestRowStatement,
    ['r."log_id"::text AS id', 'r."outcome" AS status', 'r."upstream" AS provider', 'ORDER BY r."log_id"'],
  ],
  [
    'findDuplicateCharges',
    duplicateChargesStatement,
    ['array_agg(r."log_id"::text ORDER BY r."log_id")', 'r."reverses" IS NULL'],
  ],
  [
    'existing refunds',
    refundsOfStatement,
    ['r."reverses"::text AS refund_of', 'r."log_id"::text AS id', 'r."reverses" = ANY($1::bigint[])'],
  ],
  [
    'userTransfers',
    userTransfersStatement,
    [
      't."settled_at" AS applied_at',
      'a."approval_no"::text AS approval_id',
      'a."decision" AS approval_status',
      'a."asked_at" AS approval_at',
      'ar."for_transfer" = t.id ORDER BY ar."approval_no" DESC',
    ],
  ],
];

describe('statements use the configured names, quoted', () => {
  test.each(STATEMENTS)('%s', (_name, build, expected) => {
    const stmt = build(OTHER);
    for (const fragment of expected) expect(stmt.text).toContain(fragment);
    expect(stmt.text).not.toMatch(REPLICA_NAMES);
    // Every configured name the statement uses is recorded, for the error that names its setting.
    expect(stmt.uses.length).toBeGreaterThan(0);
  });

  test.each(STATEMENTS)('%s with the defaults names the replica’s columns', (_name, build) => {
    const stmt = build(DEFAULTS);
    for (const u of stmt.uses)
      expect(stmt.text).toContain(u.setting === 'wallets.table' ? `"${u.name}"` : `."${u.name}"`);
  });

  test('a name is quoted, never spliced in as SQL', () => {
    // Config validation refuses such names; quoting is the second line of defence.
    const hostile = { ...DEFAULTS, users: { ...DEFAULTS.users, isAdmin: 'x" OR true --' } };
    expect(pgStatement(hostile, (n) => `SELECT ${n('users.isAdmin', 'u')}`).text).toBe('SELECT u."x"" OR true --"');
  });
});

describe('a missing column or table names the setting that fixes it', () => {
  const stmt = userByEmailStatement(OTHER);
  const pgError = (code: string, message: string) => Object.assign(new Error(message), { code });

  test('an unqualified column (node-postgres error)', () => {
    const f = schemaFailure(pgError('42703', 'column "signed_up" does not exist'), 'alfred', stmt);
    expect(f).toBeInstanceOf(ApplicationFailure);
    expect((f as ApplicationFailure).nonRetryable).toBe(true);
    expect((f as ApplicationFailure).type).toBe('NotConfigured');
    expect(f?.message).toMatch(/^column "signed_up" does not exist on target "alfred"/);
    expect(f?.message).toContain('targets.alfred.postgres.schema.users.createdAt');
    expect(isSchemaFailure(f)).toBe(true);
    expect((f as ApplicationFailure).details?.[0]).toEqual({
      sqlstate: '42703',
      missing: 'signed_up',
      settings: ['postgres.schema.users.createdAt'],
    });
  });

  test('a qualified column, as psql reports it (SQLSTATE from verbose output)', () => {
    const err = PsqlSession.errorOf('42703: column u.Admin does not exist');
    expect(err).toBeInstanceOf(PgExecError);
    expect(err.code).toBe('42703');
    expect(err.message).toBe('column u.Admin does not exist');
    expect(schemaFailure(err, 'alfred', stmt)?.message).toContain('targets.alfred.postgres.schema.users.isAdmin');
  });

  test('one name shared by two settings names both', () => {
    const same = schemaOf({ wallets: { id: 'ref' }, users: { isAdmin: 'ref' } });
    const f = schemaFailure(pgError('42703', 'column "ref" does not exist'), 'alfred', quotaStatusStatement(same));
    expect(f?.message).toContain(
      'targets.alfred.postgres.schema.wallets.id or targets.alfred.postgres.schema.users.isAdmin',
    );
  });

  test('a column of another alias is not blamed on a setting of the same name', () => {
    // u.id is users.id (seed 002), not wallets.id, although both are called "id".
    const f = schemaFailure(pgError('42703', 'column u.id does not exist'), 'alfred', quotaStatusStatement(DEFAULTS));
    expect(f?.message).toContain('no setting changes it');
    expect((f as ApplicationFailure).details?.[0]).toMatchObject({ missing: 'id', settings: [] });
  });

  test('a table, and the schema of a qualified table', () => {
    const stmt2 = quotaStatusStatement(OTHER);
    expect(
      schemaFailure(pgError('42P01', 'relation "billing.purses" does not exist'), 'alfred', stmt2)?.message,
    ).toContain('targets.alfred.postgres.schema.wallets.table');
    expect(schemaFailure(pgError('3F000', 'schema "billing" does not exist'), 'alfred', stmt2)?.message).toContain(
      'targets.alfred.postgres.schema.wallets.table',
    );
    expect(schemaFailure(pgError('42P01', 'relation "users" does not exist'), 'alfred', stmt2)?.message).toContain(
      'no setting changes it',
    );
  });

  test('other errors pass through', () => {
    expect(
      schemaFailure(pgError('57014', 'canceling statement due to statement timeout'), 'alfred', stmt),
    ).toBeUndefined();
    expect(schemaFailure(new Error('connect ECONNREFUSED'), 'alfred', stmt)).toBeUndefined();
    expect(PsqlSession.errorOf('canceling statement due to statement timeout').code).toBe('57014');
    expect(PsqlSession.errorOf('57014: canceling statement due to statement timeout').code).toBe('57014');
  });

  test('runStatement turns the error into the failure', async () => {
    const failing = { query: () => Promise.reject(pgError('42703', 'column u.key_sha256 does not exist')) };
    await expect(runStatement(failing, 'alfred', keyOwnersStatement(OTHER))).rejects.toThrow(
      /postgres\.schema\.users\.apiKeyHash/,
    );
    const transient = { query: () => Promise.reject(new Error('connection reset')) };
    await expect(runStatement(transient, 'alfred', keyOwnersStatement(OTHER))).rejects.toThrow('connection reset');
  });
});
