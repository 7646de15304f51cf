/**
 * Configuration: the table and column names the seeds do not state (`postgres.schema`), and the
 * codec settings (`codec.secretsFile`, `codec.serverUrl`) with the start-up error for missing secrets.
 */
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError, TargetSchema, loadConfig } from '../src/config';
import { loadCodecSecrets } from '../src/lib/temporal';
import { CODEC_FIXTURE } from './helpers/codec';

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
      transfers: { appliedAt: 'applied_at' },
      approvals: { id: 'id', transferId: 'transfer_id', status: 'status', createdAt: 'created_at' },
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

describe('TLS files and reload, key-ending audit actions, the default SMTP port', () => {
  const base = {
    baseUrl: 'http://127.0.0.1:58000',
    containers: { project: 'alfred' },
    components: ['api', 'proxy'],
    tls: { certDir: '/etc/alfred/tls' },
  };

  test('default to the replica’s values', () => {
    const t = TargetSchema.parse(base);
    expect(t.tls).toMatchObject({ certFile: 'server.crt', keyFile: 'server.key', reloadSignal: 'SIGHUP' });
    expect(t.security).toMatchObject({ keyRotatedAction: 'api_key_rotated', erasureAction: 'gdpr_erasure' });
  });

  test('take other values', () => {
    const t = TargetSchema.parse({
      ...base,
      tls: { certDir: '/etc/nginx/tls', certFile: 'fullchain.pem', keyFile: 'privkey.pem', reloadSignal: 'none' },
      security: { keyRotatedAction: 'key.rotate', erasureAction: 'user.erase' },
    });
    expect(t.tls).toMatchObject({ certFile: 'fullchain.pem', keyFile: 'privkey.pem', reloadSignal: 'none' });
    expect(t.security).toMatchObject({ keyRotatedAction: 'key.rotate', erasureAction: 'user.erase' });
  });

  test.each([
    [{ tls: { certDir: '/x', certFile: '../etc/passwd' } }, 'tls.certFile'],
    [{ tls: { certDir: '/x', keyFile: 'a/b.key' } }, 'tls.keyFile'],
    [{ tls: { certDir: '/x', reloadSignal: 'SIGKILL' } }, 'tls.reloadSignal'],
  ])('refuses %j at %s', (extra, where) => {
    const r = TargetSchema.safeParse({ ...base, ...extra });
    expect(r.success).toBe(false);
    expect(r.error?.issues.map((i) => i.path.join('.'))).toEqual([where]);
  });
});

describe('codec: the secrets file and the codec server', () => {
  const REPO = path.resolve(__dirname, '..');
  const minimal = [
    'docker: { socketPath: /run/docker.sock }',
    'policy: { approvers: [alice], tiers: [{ name: t1, waitMs: 1000 }] }',
    'targets:',
    '  alfred: { baseUrl: "http://127.0.0.1:58000", containers: { project: alfred }, components: [api] }',
  ];

  test('config/engine.yaml names both; the secrets file follows STACK_DIR', () => {
    const file = path.join(REPO, 'config/engine.yaml');
    expect(loadConfig(file, {}).codec).toEqual({ secretsFile: '.stack/secrets/codec.yaml', serverUrl: 'http://127.0.0.1:8234' });
    expect(loadConfig(file, { STACK_DIR: '/srv/stack', CODEC_SERVER_URL: 'https://codec.example:9443' }).codec).toEqual({
      secretsFile: '/srv/stack/secrets/codec.yaml',
      serverUrl: 'https://codec.example:9443',
    });
  });

  test('a file without a codec section gets the defaults, the secrets file under STACK_DIR', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'engine-config-'));
    try {
      const file = path.join(dir, 'engine.yaml');
      writeFileSync(file, minimal.join('\n'));
      expect(loadConfig(file, {}).codec).toEqual({ secretsFile: '.stack/secrets/codec.yaml', serverUrl: 'http://127.0.0.1:8234' });
      expect(loadConfig(file, { STACK_DIR: '/var/lib/x' }).codec.secretsFile).toBe('/var/lib/x/secrets/codec.yaml');
      writeFileSync(file, [...minimal, 'codec: { serverUrl: "ftp://codec", secretFile: x }'].join('\n'));
      expect(() => loadConfig(file, {})).toThrow(/codec\.serverUrl: an http:\/\/ or https:\/\/ URL/);
      expect(() => loadConfig(file, {})).toThrow(/codec: Unrecognized key\(s\) in object: 'secretFile'/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a missing or unreadable secrets file stops start-up with the path and the command that creates it', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'engine-codec-'));
    try {
      const cfg = loadConfig(path.join(REPO, 'config/engine.yaml'), { STACK_DIR: dir });
      const expected = path.join(dir, 'secrets/codec.yaml');
      expect(() => loadCodecSecrets(cfg)).toThrow(ConfigError);
      expect(() => loadCodecSecrets(cfg)).toThrow(
        `codec secrets file ${expected} (codec.secretsFile) does not exist: create it with \`npx tsx scripts/codec-secrets.ts init --file ${expected}\``,
      );
      mkdirSync(expected, { recursive: true }); // a directory where the file should be
      expect(() => loadCodecSecrets(cfg)).toThrow(`codec secrets file ${expected} (codec.secretsFile) cannot be read`);
      expect(() => loadCodecSecrets(cfg)).toThrow('npx tsx scripts/codec-secrets.ts init');
      rmSync(expected, { recursive: true });
      // A readable file loads; one others may read is loaded with a warning.
      copyFileSync(CODEC_FIXTURE, expected);
      chmodSync(expected, 0o644);
      const warnings: string[] = [];
      expect(loadCodecSecrets(cfg, (w) => warnings.push(w)).encryption.active).toBe('test-k1');
      expect(warnings).toEqual([`secrets file ${expected} has mode 0644: others may read it (chmod 600)`]);
      chmodSync(expected, 0o600);
      warnings.length = 0;
      loadCodecSecrets(cfg, (w) => warnings.push(w));
      expect(warnings).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('temporal.tls in config/engine.yaml, from the variables the temporal CLI reads', () => {
  const REPO = path.join(__dirname, '..');
  const tlsOf = (env: NodeJS.ProcessEnv) => loadConfig(path.join(REPO, 'config/engine.yaml'), { STACK_DIR: '.stack', ...env }).temporal.tls;

  test('off when nothing is set; TEMPORAL_TLS=true is TLS with the system CAs', () => {
    expect(tlsOf({})).toBe(false);
    expect(tlsOf({ TEMPORAL_TLS: 'true' })).toBe(true);
  });

  test('the TEMPORAL_TLS_* paths (as the cluster profile writes them) are mTLS, without TEMPORAL_TLS', () => {
    const env = {
      TEMPORAL_TLS_SERVER_NAME: 'temporal-frontend',
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: '/tls/ca.crt',
      TEMPORAL_TLS_CLIENT_CERT_PATH: '/tls/engine.crt',
      TEMPORAL_TLS_CLIENT_KEY_PATH: '/tls/engine.key',
    };
    expect(tlsOf(env)).toEqual({
      force: false,
      serverName: 'temporal-frontend',
      serverCaCert: { file: '/tls/ca.crt' },
      clientCert: { file: '/tls/engine.crt' },
      clientKey: { file: '/tls/engine.key' },
    });
    // A private CA alone: server TLS verified against it.
    expect(tlsOf({ TEMPORAL_TLS_SERVER_CA_CERT_PATH: '/tls/ca.crt' })).toEqual({ force: false, serverCaCert: { file: '/tls/ca.crt' } });
  });

  test('a client certificate without its key is refused by name', () => {
    expect(() => tlsOf({ TEMPORAL_TLS_CLIENT_CERT_PATH: '/tls/engine.crt' })).toThrow(/temporal\.tls.*clientCert and clientKey go together/s);
  });
});
