/**
 * Support traces on the real drill target (seed 000): real requests with real keys and request ids,
 * a real key rotation, real transfers, the real job queue and worker. The runbooks only read; each
 * test checks the verdict, the ticket report and that nothing was changed.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Client as PgClient } from 'pg';
import { run, UsageError } from '../../scripts/remediate';
import { closeSignal, incidentWorkflowId } from '../../src/workflows/contracts';
import { STACK_DIR, drillContainer, startEngine, waitUntil, type Engine } from '../helpers/engine';
import { API, adminKey, health, processFault } from '../helpers/drill';

jest.setTimeout(180_000);

let engine: Engine;
let pg: PgClient;

/** Drill users and their test keys (drill/README.md). */
const BOB = { email: 'bob@example.com', key: 'test-key-2', id: 3 };
const IVAN = { email: 'ivan@example.com', key: 'test-key-9', id: 10 };
const CAROL = { email: 'carol@example.com', key: 'test-key-3', id: 4 };
const lostTransfers: number[] = [];

/** A real transfer through the api: a pending row plus a job on the queue. */
async function transfer(key: string, recipientId: number, amount: number): Promise<number> {
  const res = await fetch(`${API}/v1/transfers`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ recipient_id: recipientId, amount }),
  });
  expect(res.status).toBe(202);
  return ((await res.json()) as { transfer_id: number }).transfer_id;
}

async function transferStatus(id: number): Promise<string> {
  return String((await pg.query('SELECT status FROM token_transfers WHERE id = $1', [id])).rows[0]?.status);
}

async function chat(key: string, requestId: string): Promise<number> {
  const res = await fetch(`${API}/v1/chat/completions`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${key}`,
      'content-type': 'application/json',
      'x-request-id': requestId,
      // An address of its own, so other drills' rate-limit counters do not interfere.
      'x-forwarded-for': `198.51.100.${1 + (randomBytes(1)[0] ?? 0) % 200}`,
    },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'ping' }] }),
  });
  await res.text();
  return res.status;
}

beforeAll(async () => {
  engine = await startEngine();
  // These traces read a healthy drill: a database left stopped by an earlier drill is started again.
  const db = await drillContainer(engine.docker, 'db');
  if (!(await db.inspect()).State.Running) await db.start();
  await waitUntil('drill healthy', async () => (await health())?.status === 'ok', 90_000);
  pg = new PgClient({
    host: '127.0.0.1',
    port: 55432,
    user: 'postgres',
    database: 'alfred',
    password: readFileSync(path.join(STACK_DIR, 'secrets/postgres-password'), 'utf8').trim(),
  });
  await pg.connect();
});

afterAll(async () => {
  await processFault('worker-paused', false).catch(() => undefined);
  // A transfer inserted without a job would stay pending for ever: remove it.
  if (lostTransfers.length) await pg.query('DELETE FROM token_transfers WHERE id = ANY($1::bigint[])', [lostTransfers]);
  // Give Ivan his drill key back (the rotation test replaced it).
  await pg.query(`UPDATE users SET api_key_hash = encode(sha256($1::bytea), 'hex') WHERE id = $2`, [IVAN.key, IVAN.id]);
  await pg.end();
  await engine.stop();
});

describe('apiKeyTrace', () => {
  test('a request that authenticated and was charged: nothing wrong, the report says so', async () => {
    const requestId = `req_trace_ok_${randomBytes(4).toString('hex')}`;
    expect(await chat(BOB.key, requestId)).toBe(200);
    const h = await engine.start({ runbook: 'apiKeyTrace', target: 'alfred', params: { email: BOB.email, requestId } });
    const rec = await engine.result(h);
    expect(rec.outcome).toBe('false-alarm');
    expect(rec.actions).toEqual([]);
    expect(rec.diagnosis).toMatch(new RegExp(`request ${requestId} authenticated with this account's key`));
    expect(rec.findings.find((f) => f.check === `request ${requestId} in the api log`)).toMatchObject({ ok: true });
    expect(rec.report).toMatch(/### Reply to the customer \(resolution\)/);
    expect(rec.report).toContain('Hi bob@example.com,');
    expect(rec.report).not.toContain(BOB.key);
  });

  test('a rotated key: the 401 is traced to the rotation and the report tells the customer', async () => {
    const rotated = await fetch(`${API}/v1/admin/users/${IVAN.id}/rotate-key`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminKey()}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'support drill' }),
    });
    expect(rotated.status).toBe(200);
    const newKey = ((await rotated.json()) as { api_key?: string; key?: string }).api_key ?? '';
    const requestId = `req_trace_old_${randomBytes(4).toString('hex')}`;
    expect(await chat(IVAN.key, requestId)).toBe(401);
    const hashBefore = (await pg.query('SELECT api_key_hash FROM users WHERE id = $1', [IVAN.id])).rows[0];

    const h = await engine.start({ runbook: 'apiKeyTrace', target: 'alfred', params: { email: IVAN.email, requestId } });
    const rec = await engine.result(h);
    expect(rec.outcome).toBe('resolved');
    expect(rec.diagnosis).toMatch(/refused \(401\): this account's key was rotated at/);
    expect(rec.findings.find((f) => f.check === `request ${requestId} in the api log`)?.detail).toMatch(/→ 401/);
    expect(rec.report).toMatch(/\*\*Root Cause\*\*: The API key was rotated at/);
    expect(rec.timeline.some((t) => /verification passed/.test(t.event))).toBe(true);
    // Read only: the account is as the rotation left it, and no key is in the record.
    expect((await pg.query('SELECT api_key_hash FROM users WHERE id = $1', [IVAN.id])).rows[0]).toEqual(hashBefore);
    const text = JSON.stringify(rec);
    expect(text).not.toContain(IVAN.key);
    if (newKey) expect(text).not.toContain(newKey);
    expect(text).not.toContain(String((hashBefore as { api_key_hash: string }).api_key_hash));
  });

  test('an unknown user gets a clear "no such user" report, not a crash', async () => {
    const h = await engine.start({ runbook: 'apiKeyTrace', target: 'alfred', params: { email: 'nobody-here@example.com' } });
    const rec = await engine.result(h);
    expect(rec.outcome).toBe('resolved');
    expect(rec.diagnosis).toMatch(/no such user: no account is registered under nobody-here@example.com/);
    expect(rec.report).toMatch(/no such user/);
    expect(rec.findings.find((f) => f.check === 'account')).toMatchObject({ ok: false });
  });
});

describe('transferNotApplied', () => {
  test('an applied transfer: nothing wrong, the report gives the time it was applied', async () => {
    const id = await transfer(CAROL.key, 5, 7);
    await waitUntil('transfer applied', async () => (await transferStatus(id)) === 'applied', 30_000);
    const h = await engine.start({ runbook: 'transferNotApplied', target: 'alfred', params: { email: CAROL.email, transferId: id } });
    const rec = await engine.result(h);
    expect(rec.outcome).toBe('false-alarm');
    expect(rec.actions).toEqual([]);
    expect(rec.diagnosis).toMatch(new RegExp(`transfer #${id} \\(sent, 7 tokens, .*\\) was applied at`));
    expect(rec.report).toMatch(/### Reply to the customer \(resolution\)/);
  });

  test('the worker stops taking jobs: the transfer waits in the queue, the report says so, the incident escalates', async () => {
    await processFault('worker-paused', true);
    try {
      const id = await transfer(CAROL.key, 6, 9);
      const h = await engine.start({ runbook: 'transferNotApplied', target: 'alfred', params: { email: CAROL.email, transferId: id } });
      const rec = await engine.waitFor(h, (r) => r.phase === 'ESCALATED');
      expect(rec.diagnosis).toMatch(new RegExp(`transfer #${id} .* is queued with \\d+ jobs ahead, but the worker is not consuming rq:queue:default`));
      expect(rec.findings.find((f) => f.check === 'LLEN rq:queue:default')).toMatchObject({ ok: false });
      expect(rec.report).toMatch(/### Reply to the customer \(initial response\)/);
      expect(rec.report).toMatch(/\*\*Expected Update\*\*: \d{4}-/);
      // Read only: the transfer is still pending and its job still queued.
      expect(await transferStatus(id)).toBe('pending');
      await h.signal(closeSignal, { incidentId: h.workflowId, by: 'alice', note: 'worker resumed by hand' });
      expect((await engine.result(h)).outcome).toBe('escalated');
      await processFault('worker-paused', false);
      await waitUntil('transfer applied after resume', async () => (await transferStatus(id)) === 'applied', 30_000);
    } finally {
      await processFault('worker-paused', false);
    }
  });

  test('a pending transfer whose job is not on the queue: the job was lost', async () => {
    const row = await pg.query<{ id: string }>(
      `INSERT INTO token_transfers (sender_id, recipient_id, amount) VALUES ($1, 7, 11) RETURNING id::text AS id`,
      [CAROL.id],
    );
    const id = Number(row.rows[0]?.id);
    lostTransfers.push(id);
    const h = await engine.start({ runbook: 'transferNotApplied', target: 'alfred', params: { email: CAROL.email, transferId: id } });
    const rec = await engine.waitFor(h, (r) => r.phase === 'ESCALATED');
    expect(rec.diagnosis).toMatch(/job is missing from the queue rq:queue:default .*: the job was lost/);
    await h.signal(closeSignal, { incidentId: h.workflowId, by: 'alice' });
    await engine.result(h);
  });

  test('an unknown user gets "no such user"', async () => {
    const h = await engine.start({ runbook: 'transferNotApplied', target: 'alfred', params: { email: 'ghost@example.com' } });
    const rec = await engine.result(h);
    expect(rec.outcome).toBe('resolved');
    expect(rec.report).toMatch(/no such user/);
  });
});

describe('parameters are checked before any workflow starts', () => {
  const start = (runbook: string, ...params: string[]) =>
    // Refused before the credential is read or anything is sent: no credential needed.
    run(['start', runbook, '--target', 'alfred', ...params.flatMap((p) => ['--param', p])]);

  test.each([
    ['apiKeyTrace', ['email=bob@example.com', 'requestId=req bad!'], /--param requestId: must be a request id/],
    ['apiKeyTrace', ['email=bob@example.com', 'at=2999-01-01T00:00:00Z'], /--param at: is in the future/],
    ['apiKeyTrace', ['email=not-an-email'], /--param email: must be an email address/],
    ['apiKeyTrace', ['requestId=req_1'], /--param email: Required/],
    ['transferNotApplied', ['email=carol@example.com', 'transferId=abc'], /--param transferId: Expected number/],
    ['transferNotApplied', ['email=carol@example.com', 'at=2999-01-01T00:00:00Z'], /--param at: is in the future/],
  ])('%s %j is refused', async (runbook, params, message) => {
    const prev = process.env.TEMPORAL_TASK_QUEUE;
    process.env.TEMPORAL_TASK_QUEUE = engine.taskQueue;
    try {
      const err = await start(runbook, ...params).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UsageError);
      expect((err as Error).message).toMatch(message);
    } finally {
      process.env.TEMPORAL_TASK_QUEUE = prev;
    }
    await expect(engine.client.workflow.getHandle(incidentWorkflowId(runbook, 'alfred')).describe()).rejects.toThrow();
  });
});
