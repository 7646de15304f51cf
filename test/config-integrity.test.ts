/**
 * Configuration of the audit hash definition (`targets.<name>.audit.hash`, INC-09): the default is the
 * replica's formula, and a definition that cannot be computed is refused at load with its place in the
 * file. No stack needed.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { ConfigError, TargetSchema, loadConfig } from '../src/config';
import { describeDefinition, hashEntry } from '../src/activities/postgres/audit-hash';
import { auditHash as replicaHash, GENESIS_HASH } from '../drill/src/faults/replica-formats';

const minimal = {
  baseUrl: 'http://127.0.0.1:58000',
  containers: { project: 'alfred' },
  components: ['api', 'db', 'redis'],
};

function writeConfig(target: Record<string, unknown>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'engine-config-'));
  const file = path.join(dir, 'engine.yaml');
  writeFileSync(
    file,
    stringify({
      docker: { socketPath: '/run/docker.sock' },
      targets: { alfred: { ...minimal, ...target } },
      policy: { approvers: ['alice'], tiers: [{ name: 'tier-1', waitMs: 1000 }] },
    }),
  );
  return file;
}

describe('audit.hash', () => {
  test('defaults to the replica formula: sha256 hex of previous hash + sorted JSON of the seven columns', () => {
    const def = TargetSchema.parse(minimal).audit.hash;
    expect(def).toEqual({
      columns: ['action', 'actor_user_id', 'created_at', { column: 'details', nullAs: {} }, 'id', 'target_id', 'target_type'],
      serialise: 'sorted-json',
      separator: '|',
      timestamps: 'iso-ms',
      digest: 'sha256',
      encoding: 'hex',
      previousHash: 'prefix',
      previousHashKey: 'previous_hash',
      genesis: '0'.repeat(64),
    });
    expect(describeDefinition(def)).toMatch(/^sha256 hex of previous hash as prefix \+ sorted-json of \[action, .*target_type\]/);
    const row = { id: '9', actor_user_id: null, action: 'login', target_type: null, target_id: null, details: null, created_at: new Date('2026-01-02T03:04:05.678Z') };
    expect(hashEntry(def, GENESIS_HASH, row)).toBe(replicaHash(GENESIS_HASH, row));
  });

  test('a target sets its own definition', () => {
    const def = TargetSchema.parse({
      ...minimal,
      audit: { hash: { columns: ['id', { column: 'payload', key: 'body', nullAs: '' }], serialise: 'joined', separator: ';', digest: 'sha512', previousHash: 'field' } },
    }).audit.hash;
    expect(def.columns).toEqual(['id', { column: 'payload', key: 'body', nullAs: '' }]);
    expect(hashEntry(def, 'p', { id: '1', payload: null })).toHaveLength(128);
  });

  test.each<[string, Record<string, unknown>, RegExp]>([
    ['an unknown digest', { digest: 'crc32' }, /audit\.hash\.digest/],
    ['a column that is not an SQL identifier', { columns: ['id; DROP TABLE audit_logs'] }, /audit\.hash\.columns\[0\]/],
    ['no column', { columns: [] }, /audit\.hash\.columns/],
    ['an unknown serialisation', { serialise: 'yaml' }, /audit\.hash\.serialise/],
  ])('refuses %s', (_name, hash, where) => {
    expect(() => loadConfig(writeConfig({ audit: { hash } }))).toThrow(ConfigError);
    expect(() => loadConfig(writeConfig({ audit: { hash } }))).toThrow(where);
  });
});
