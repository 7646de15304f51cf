/**
 * INC-09's forward re-hash writes only hashes its definition can show to be the target's: on a chain
 * whose hashes were computed another way it refuses and writes nothing; on a chain it reproduces it
 * fills the missing hashes. A throwaway PostgreSQL holds the audit table.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import Docker from 'dockerode';
import pino from 'pino';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { ConfigSchema } from '../../src/config';
import { createActivities, type Activities } from '../../src/activities';
import { GENESIS_HASH, auditHash } from '../../src/activities/postgres/audit-chain';
import { applicationFailure } from '../helpers/failure';
import { startThrowawayPg, type ThrowawayPg } from '../helpers/throwaway-pg';

jest.setTimeout(60_000);

let pg: ThrowawayPg;
let acts: Activities;
const env = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });

const AT = new Date('2026-11-30T10:00:00.000Z');
const row = (id: number) => ({ id: String(id), actor_user_id: '1', action: 'user_read', target_type: 'user', target_id: '2', details: {}, created_at: AT, previous_hash: null, hash: null });

/** Three entries hashed by `hash`, the third without its hashes (a migration error). */
async function fill(hash: (previous: string, id: number) => string): Promise<void> {
  const c = await pg.connect();
  try {
    await c.query('TRUNCATE audit_logs');
    let previous = GENESIS_HASH;
    for (const id of [1, 2, 3]) {
      const h = hash(previous, id);
      await c.query(
        `INSERT INTO audit_logs (id, actor_user_id, action, target_type, target_id, details, created_at, previous_hash, hash)
         VALUES ($1, 1, 'user_read', 'user', '2', '{}', $2, $3, $4)`,
        [id, AT, id === 3 ? null : previous, id === 3 ? null : h],
      );
      previous = h;
    }
  } finally {
    await c.end();
  }
}

async function hashes(): Promise<(string | null)[]> {
  const c = await pg.connect();
  try {
    return (await c.query<{ hash: string | null }>('SELECT hash FROM audit_logs ORDER BY id')).rows.map((r) => r.hash);
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  pg = await startThrowawayPg();
  const c = await pg.connect();
  try {
    await c.query(`CREATE TABLE audit_logs (id bigint PRIMARY KEY, actor_user_id bigint, action text NOT NULL, target_type text, target_id text,
                     details jsonb, created_at timestamptz NOT NULL, previous_hash text, hash text)`);
  } finally {
    await c.end();
  }
  const config = ConfigSchema.parse({
    docker: { socketPath: path.join(__dirname, 'no-docker.sock') },
    policy: { approvers: ['alice'], tiers: [{ name: 'tier-1', waitMs: 1000 }] },
    targets: {
      alfred: {
        baseUrl: 'http://127.0.0.1:9',
        containers: { project: 'rehash-test' },
        components: ['api', 'db'],
        postgres: { via: 'tcp', host: pg.host, port: pg.port, user: pg.user, password: { value: 'unused-trust-auth' }, database: pg.database },
      },
    },
  });
  acts = createActivities({ config, docker: new Docker({ socketPath: config.docker.socketPath }), logger: pino({ level: 'silent' }) });
});

afterAll(() => pg?.stop());

test('a chain hashed another way: refused before anything is written', async () => {
  // The target's own definition: sha256 of the id and the previous hash only.
  await fill((previous, id) => createHash('sha256').update(`${id}:${previous}`).digest('hex'));
  const before = await hashes();
  const f = await applicationFailure(env.run(acts.rehashAuditChain, { target: 'alfred', fromId: '3' }));
  expect(f.message).toMatch(/^the hash definition \(setting audit\.hash: .*\) does not match the target's entries: it does not reproduce the stored hash of entry 2, before the break; nothing written$/);
  expect(await hashes()).toEqual(before);
});

test('a chain the definition reproduces: the missing hash is added forward from the break', async () => {
  await fill((previous, id) => auditHash(previous, row(id)));
  expect(await env.run(acts.rehashAuditChain, { target: 'alfred', fromId: '3' })).toEqual({ updated: ['3'] });
  const h = await hashes();
  expect(h[2]).toBe(auditHash(h[1] as string, row(3)));
});
