/**
 * INC-14's key rotation when the target answers in an unexpected shape: the target has already
 * rotated the key (the old one is dead), so the answer holding the new key is kept where rotated keys
 * go, mode 600, and the step fails naming it; the key is never lost and never logged. A throwaway
 * PostgreSQL holds the user's key hash; a local HTTP server answers as the target's admin API.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import pino from 'pino';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { ConfigSchema } from '../../src/config';
import { createActivities, type Activities } from '../../src/activities';
import { applicationFailure } from '../helpers/failure';
import { startThrowawayPg, type ThrowawayPg } from '../helpers/throwaway-pg';

jest.setTimeout(60_000);

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const LEAKED = 'ak_carol_0123456789abcdef';
const NEW_KEY = 'ak_new_fedcba9876543210fedcba';

let pg: ThrowawayPg;
let server: Server;
let keyDir: string;
let acts: Activities;
let rotations = 0;
const env = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });

beforeAll(async () => {
  pg = await startThrowawayPg();
  const c = await pg.connect();
  try {
    await c.query(`CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL, api_key_hash text NOT NULL, is_admin boolean NOT NULL DEFAULT false,
                     personal_quota bigint NOT NULL DEFAULT 100, used_tokens bigint NOT NULL DEFAULT 0, created_at timestamptz NOT NULL DEFAULT now());
                   INSERT INTO users (email, api_key_hash) VALUES ('carol@example.com', '${sha256(LEAKED)}');`);
  } finally {
    await c.end();
  }
  // The admin API rotates the key and answers with it under a field the engine was not told about.
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/v1/admin/users/1/rotate-key') {
        rotations++;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ user: { id: 1 }, credentials: { secret: NEW_KEY } }));
        return;
      }
      res.writeHead(404).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  keyDir = mkdtempSync(path.join(tmpdir(), 'rotated-keys-'));
  const config = ConfigSchema.parse({
    docker: { socketPath: path.join(__dirname, 'no-docker.sock') },
    policy: { approvers: ['alice'], tiers: [{ name: 'tier-1', waitMs: 1000 }] },
    targets: {
      alfred: {
        baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        adminKey: { value: 'ak_admin_0123456789abcdef' },
        containers: { project: 'rotation-test' },
        components: ['api', 'db'],
        security: { keyStoreDir: keyDir },
        postgres: { via: 'tcp', host: pg.host, port: pg.port, user: pg.user, password: { value: 'unused-trust-auth' }, database: pg.database },
      },
    },
  });
  acts = createActivities({ config, docker: new Docker({ socketPath: config.docker.socketPath }), logger: pino({ level: 'silent' }) });
});

afterAll(async () => {
  await new Promise<void>((r) => server?.close(() => r()));
  await pg?.stop();
  rmSync(keyDir, { recursive: true, force: true });
});

test('an answer without the configured key field: kept for a person (mode 600), the step fails naming the file, the key is in no message', async () => {
  const f = await applicationFailure(
    env.run(acts.rotateLeakedKeys, { target: 'alfred', keys: [{ userId: 1, fingerprint: sha256(LEAKED).slice(0, 12) }], reason: 'INC-14 test' }),
  );
  expect(f.nonRetryable).toBe(true);
  const kept = path.join(keyDir, 'user-1.rotate-answer.json');
  expect(f.message).toContain(`the answer is kept in ${kept} for a person to recover the key`);
  expect(f.message).toMatch(/targets\.alfred\.api\.fields\.rotateKey\.apiKey/);
  expect(f.message).not.toContain(NEW_KEY);
  expect(JSON.parse(readFileSync(kept, 'utf8'))).toEqual({ user: { id: 1 }, credentials: { secret: NEW_KEY } });
  expect(statSync(kept).mode & 0o777).toBe(0o600);
  expect(rotations).toBe(1);
});
