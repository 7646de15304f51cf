/**
 * The support runbooks against copies of the drill target whose settings miss the replica's signals
 * (a log pattern that matches nothing, a column the table lacks, a queue key that is no queue, a
 * shared secret the containers lack, an SMTP host variable the mail component lacks): on the healthy
 * drill each must escalate naming what it could not observe, never call it a false alarm or resolve
 * it, and choose no step. The same runbooks against the ungarbled target are the control: there the
 * healthy drill gives a false alarm, so the garbled setting is what changed the conclusion.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Client as PgClient } from 'pg';
import type { TargetConfig } from '../../../src/config';
import { expectUnobserved, runGarbled, summary, type Garbled } from '../../helpers/garbled';
import { STACK_DIR, waitUntil } from '../../helpers/engine';
import { API } from '../../helpers/drill';

jest.setTimeout(300_000);

/** Drill users and their test keys (drill/README.md). */
const BOB = { email: 'bob@example.com', key: 'test-key-2' };
const CAROL = { email: 'carol@example.com', key: 'test-key-3' };

function schema(t: TargetConfig): NonNullable<TargetConfig['postgres']>['schema'] {
  if (!t.postgres) throw new Error('the drill target has no postgres');
  return t.postgres.schema;
}

/** A request of Bob's that authenticated and was charged: the api logged it, request_logs holds it. */
async function servedRequest(): Promise<string> {
  const requestId = `req_garbled_${randomBytes(4).toString('hex')}`;
  const res = await fetch(`${API}/v1/chat/completions`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${BOB.key}`,
      'content-type': 'application/json',
      'x-request-id': requestId,
      'x-forwarded-for': `198.51.100.${1 + ((randomBytes(1)[0] ?? 0) % 200)}`,
    },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'ping' }] }),
  });
  await res.text();
  expect(res.status).toBe(200);
  return requestId;
}

/** A transfer of Carol's that the worker applied (it also registers the job queue with RQ). */
async function appliedTransfer(): Promise<number> {
  const res = await fetch(`${API}/v1/transfers`, {
    method: 'POST',
    headers: { authorization: `Bearer ${CAROL.key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ recipient_id: 5, amount: 1 }),
  });
  expect(res.status).toBe(202);
  const id = ((await res.json()) as { transfer_id: number }).transfer_id;
  const pg = new PgClient({
    host: '127.0.0.1',
    port: 55432,
    user: 'postgres',
    database: 'alfred',
    password: readFileSync(path.join(STACK_DIR, 'secrets/postgres-password'), 'utf8').trim(),
  });
  await pg.connect();
  try {
    const status = async (): Promise<string> => String((await pg.query('SELECT status FROM token_transfers WHERE id = $1', [id])).rows[0]?.status);
    await waitUntil('transfer applied', async () => (await status()) === 'applied', 30_000);
  } finally {
    await pg.end();
  }
  return id;
}

test('support runbooks escalate naming each signal they cannot observe; the ungarbled target is a false alarm', async () => {
  const requestId = await servedRequest();
  const transferId = await appliedTransfer();
  const trace = { email: BOB.email, requestId };
  const transfer = { email: CAROL.email, transferId };

  const cases: Garbled[] = [
    {
      runbook: 'apiKeyTrace',
      signal: 'request lines (logs.status)',
      garble: (t) => void (t.logs.status = '(?:^|\\s)no_status_here=(?<status>\\d{3})'),
      expect: /no request line recognised .*logs\.status/,
      params: trace,
    },
    {
      runbook: 'apiKeyTrace',
      signal: 'user ids in the api log (logs.userId)',
      garble: (t) => void (t.logs.userId = '(?:^|\\s)no_user_here=(?<user>\\d+)'),
      expect: /user ids in the api log: .*logs\.userId/,
      // The account's traffic in a window (no request id): what its verdict rests on.
      params: { email: BOB.email },
    },
    {
      runbook: 'apiKeyTrace',
      signal: 'request ids in the api log (logs.requestId)',
      garble: (t) => void (t.logs.requestId = '(?:^|\\s)no_request_here=(?<request>\\S+)'),
      expect: /in the api log: .*logs\.requestId/,
      params: trace,
    },
    {
      runbook: 'apiKeyTrace',
      signal: 'request_logs (postgres.schema.requestLogs.status)',
      garble: (t) => void (schema(t).requestLogs.status = 'no_such_status'),
      expect: /charged requests in the window: .*postgres\.schema\.requestLogs\.status/,
      params: trace,
    },
    {
      runbook: 'transferNotApplied',
      signal: 'token_transfers (postgres.schema.transfers.appliedAt)',
      garble: (t) => void (schema(t).transfers.appliedAt = 'no_applied_at'),
      expect: /token_transfers: .*postgres\.schema\.transfers\.appliedAt/,
      params: transfer,
    },
    {
      runbook: 'transferNotApplied',
      signal: 'the account (postgres.schema.users.createdAt)',
      garble: (t) => void (schema(t).users.createdAt = 'no_created_at'),
      expect: /the account: .*postgres\.schema\.users\.createdAt/,
      params: transfer,
    },
    {
      runbook: 'transferNotApplied',
      signal: 'the job queue (queue.key)',
      garble: (t) => void ((t.queue as NonNullable<TargetConfig['queue']>).key = 'rq:queue:no-such-queue'),
      expect: /LLEN rq:queue:no-such-queue: .*setting queue\.key/,
      params: transfer,
    },
    {
      runbook: 'queueBacklog',
      signal: 'queue depth (queue.key)',
      garble: (t) => void ((t.queue as NonNullable<TargetConfig['queue']>).key = 'rq:queue:no-such-queue'),
      expect: /queue depth \(LLEN rq:queue:no-such-queue\): .*setting queue\.key/,
    },
    {
      runbook: 'configDrift',
      signal: 'the reference secret (support.sharedSecrets env)',
      garble: (t) => void (t.support.sharedSecrets = t.support.sharedSecrets.map((r) => ({ ...r, env: 'NO_SUCH_SECRET' }))),
      expect: /NO_SUCH_SECRET in api \(reference\): .*support\.sharedSecrets/,
    },
    {
      runbook: 'configDrift',
      signal: 'shared secrets (support.sharedSecrets empty)',
      garble: (t) => void (t.support.sharedSecrets = []),
      expect: /shared secrets: .*support\.sharedSecrets/,
    },
    {
      runbook: 'smtpDelivery',
      signal: 'the relay in use (smtp.hostEnv)',
      garble: (t) => void ((t.smtp as NonNullable<TargetConfig['smtp']>).hostEnv = 'NO_SUCH_SMTP_HOST'),
      expect: /relay in use: NO_SUCH_SMTP_HOST .*setting smtp\.hostEnv/,
    },
  ];
  const control = [
    { runbook: 'apiKeyTrace' as const, params: trace },
    { runbook: 'transferNotApplied' as const, params: transfer },
    { runbook: 'queueBacklog' as const },
    { runbook: 'configDrift' as const },
    { runbook: 'smtpDelivery' as const },
  ];

  const result = await runGarbled(cases, control);
  const failures: string[] = [];
  for (const run of result.garbled) {
    try {
      expectUnobserved(run);
    } catch (err) {
      failures.push((err as Error).message);
    }
  }
  result.control.forEach((r, i) => {
    if (r.outcome !== 'false-alarm') failures.push(`control ${control[i]?.runbook ?? '?'}: expected a false alarm:\n${summary(r)}`);
  });
  expect(failures).toEqual([]);
});
