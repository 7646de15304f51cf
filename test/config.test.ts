/** Configuration: the table and column names the seeds do not state (`postgres.schema`). */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError, TargetSchema, loadConfig } from '../src/config';

const target = (schema?: unknown) => ({
  baseUrl: 'http://127.0.0.1:58000',
  containers: { project: 'alfred' },
  components: ['api', 'db'],
  postgres: { database: 'alfred', ...(schema === undefined ? {} : { schema }) },
});

describe('postgres.schema', () => {
  test('defaults to the replica’s names', () => {
    const t = TargetSchema.parse(target());
    expect(t.postgres?.schema).toEqual({
      users: { isAdmin: 'is_admin', apiKeyHash: 'api_key_hash', createdAt: 'created_at' },
      wallets: { table: 'wallets', id: 'id', userId: 'user_id', balance: 'balance' },
      requestLogs: { id: 'id', status: 'status', provider: 'provider', refundOf: 'refund_of' },
    });
  });

  test('takes other names, keeping the defaults of the keys not given', () => {
    const t = TargetSchema.parse(
      target({
        users: { isAdmin: 'admin' },
        wallets: { table: 'billing.purses', userId: 'owner_id' },
        requestLogs: { refundOf: 'reverses_id' },
      }),
    );
    expect(t.postgres?.schema.users).toEqual({ isAdmin: 'admin', apiKeyHash: 'api_key_hash', createdAt: 'created_at' });
    expect(t.postgres?.schema.wallets).toEqual({
      table: 'billing.purses',
      id: 'id',
      userId: 'owner_id',
      balance: 'balance',
    });
    expect(t.postgres?.schema.requestLogs.refundOf).toBe('reverses_id');
  });

  test.each([
    ['users', 'isAdmin', 'is_admin; DROP TABLE users'],
    ['users', 'apiKeyHash', 'api key hash'],
    ['users', 'createdAt', '"created_at"'],
    ['users', 'createdAt', '1st'],
    ['requestLogs', 'status', ''],
    ['requestLogs', 'provider', 'x'.repeat(64)],
    ['wallets', 'id', 'wallets.id'],
    ['wallets', 'table', 'a.b.c'],
    ['wallets', 'table', 'billing.'],
  ])('refuses %s.%s = %j', (table, key, value) => {
    const r = TargetSchema.safeParse(target({ [table]: { [key]: value } }));
    expect(r.success).toBe(false);
    expect(r.error?.issues.map((i) => i.path.join('.'))).toEqual([`postgres.schema.${table}.${key}`]);
  });

  test('loadConfig names the setting and the value it refuses', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'engine-config-'));
    try {
      const file = path.join(dir, 'engine.yaml');
      writeFileSync(
        file,
        [
          'docker: { socketPath: /run/docker.sock }',
          'policy: { approvers: [alice], tiers: [{ name: t1, waitMs: 1000 }] }',
          'targets:',
          '  alfred:',
          '    baseUrl: http://127.0.0.1:58000',
          '    containers: { project: alfred }',
          '    components: [api, db]',
          '    postgres: { database: alfred, schema: { users: { isAdmin: "is-admin" } } }',
        ].join('\n'),
      );
      expect(() => loadConfig(file, {})).toThrow(ConfigError);
      expect(() => loadConfig(file, {})).toThrow(
        /targets\.alfred\.postgres\.schema\.users\.isAdmin: "is-admin" is not a plain SQL identifier/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
