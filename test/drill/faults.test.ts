/**
 * Fault drills against the real drill stack. Every test here breaks something shared (the database,
 * Redis, the api container, the audit chain, the cache), so they all live in this one file and run
 * one after another; each undoes its fault in `finally`, leaving the stack as it found it.
 */
import { connect } from 'node:tls';
import { runFault } from '../../drill/src/faults/catalog';
import {
  call,
  chat,
  FaultContext,
  health,
  metric,
  sla,
  uniquePrompt,
  verifyAudit,
  waitFor,
  waitHealthy,
} from './helpers';

jest.setTimeout(90000);

/** The proxy certificate's remaining validity in days, read from a real TLS handshake. */
function certDaysLeft(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, servername: 'localhost' }, () => {
      const cert = socket.getPeerCertificate();
      socket.end();
      resolve((new Date(cert.valid_to).getTime() - Date.now()) / 86400_000);
    });
    socket.on('error', reject);
    socket.setTimeout(5000, () => socket.destroy(new Error('TLS handshake timed out')));
  });
}

describe('alfred drill faults (serial)', () => {
  const ctx = new FaultContext();

  beforeAll(async () => {
    await waitHealthy(ctx);
  });
  afterEach(async () => {
    await ctx.close();
  });

  test('/health reports the service, database and Redis healthy', async () => {
    const h = await health(ctx);
    expect(h.status).toBe(200);
    expect(h.body).toMatchObject({ status: 'ok', version: '1.1.0', database: 'healthy', redis: 'healthy' });
  });

  test('the seeded audit chain verifies', async () => {
    const v = await verifyAudit(ctx);
    expect(v).toMatchObject({ valid: true, first_break_at: null });
    expect(v.checked).toBeGreaterThanOrEqual(50);
  });

  test.each([
    ['tamper', 'content_mismatch'],
    ['missing-hash', 'missing_hash'],
    ['race', 'previous_hash_race'],
  ])('break-audit-chain --kind %s is found at the planted row', async (kind, breakKind) => {
    try {
      const res = await runFault('break-audit-chain', false, { kind });
      const id = String(res.data?.id);
      const v = await verifyAudit(ctx);
      expect(v).toMatchObject({ valid: false, first_break_at: id, break_kind: breakKind });
      const again = await runFault('break-audit-chain', false, { kind });
      expect(again.data?.changed).toBe(false);
    } finally {
      await runFault('break-audit-chain', true, { kind });
    }
    expect((await verifyAudit(ctx)).valid).toBe(true);
  });

  test('a chat completion answers "What is 2+2?" with 4; a poisoned cache makes it 5 until undone', async () => {
    const ip = '198.51.100.31';
    expect(await chat(ctx, 'What is 2+2?', { ip })).toMatchObject({ status: 200, content: '4' });
    try {
      await runFault('poison-cache', false);
      expect(await chat(ctx, 'What is 2+2?', { ip })).toMatchObject({ status: 200, content: '5', provider: 'cache' });
      const settings = await call(ctx, 'GET', '/v1/governance/settings');
      expect(settings.body).toMatchObject({ settings: { cache_similarity_threshold: 0.5 } });
    } finally {
      await runFault('poison-cache', true);
    }
    expect(await chat(ctx, 'What is 2+2?', { ip })).toMatchObject({ status: 200, content: '4' });
    const settings = await call(ctx, 'GET', '/v1/governance/settings');
    expect(settings.body).toMatchObject({ settings: { cache_similarity_threshold: 0.9 } });
  });

  test('a rate-limit storm produces 429s that show in the api container logs', async () => {
    const ip = `203.0.113.${100 + Math.floor(Math.random() * 100)}`;
    try {
      const res = await runFault('rate-limit-storm', false, { ip, requests: '90' });
      const counts = res.data?.counts as Record<string, number>;
      expect(counts['429']).toBeGreaterThanOrEqual(20);
      const found = await waitFor(async () => {
        const logs = await ctx.containers.logs('api', 120);
        return logs.split('\n').some((l) => l.includes('status=429') && l.includes(`client_ip=${ip}`));
      }, 10000);
      expect(found).toBe(true);
    } finally {
      await runFault('rate-limit-storm', true, { ip });
    }
    expect(await chat(ctx, 'ping', { ip })).toMatchObject({ status: 200 });
  });

  test('provider-errors raise that provider error rate; failover answers from another provider', async () => {
    const ip = '198.51.100.32';
    const errorsBefore = await metric(ctx, 'alfred_provider_requests_total{provider="openai",result="error"}');
    try {
      await runFault('provider-errors', false, { providers: 'openai' });
      for (let i = 0; i < 4; i++) {
        const r = await chat(ctx, uniquePrompt('failover'), { ip, model: 'gpt-4o' });
        expect(r.status).toBe(200);
        expect(r.provider).not.toBe('openai');
      }
      await runFault('provider-errors', false, { providers: 'openai', 'no-failover': true });
      expect((await chat(ctx, uniquePrompt('no failover'), { ip, model: 'gpt-4o' })).status).toBe(502);
      const m = await sla(ctx);
      expect(m.provider_error_rates.openai).toBeGreaterThan(0);
      expect(m.provider_error_rate_pct).toBeGreaterThanOrEqual(m.provider_error_rates.openai);
      expect(
        await metric(ctx, 'alfred_provider_requests_total{provider="openai",result="error"}'),
      ).toBeGreaterThanOrEqual(errorsBefore + 5);
    } finally {
      await runFault('provider-errors', true);
    }
    const r = await chat(ctx, uniquePrompt('recovered'), { ip, model: 'gpt-4o' });
    expect(r).toMatchObject({ status: 200, provider: 'openai' });
  });

  test('stop-db makes /health report the database unhealthy; undo restores it', async () => {
    try {
      await runFault('stop-db', false);
      const down = await waitFor(async () => (await health(ctx)).body.database === 'unhealthy', 15000);
      expect(down).toBe(true);
      const h = await health(ctx);
      expect(h.status).toBe(503);
      expect(h.body.redis).toBe('healthy');
    } finally {
      await runFault('stop-db', true);
    }
    await waitHealthy(ctx);
  });

  test('exhaust-pool shows in the pool gauges and /health; undo releases it', async () => {
    try {
      await runFault('exhaust-pool', false);
      const h = await health(ctx);
      expect(h.body.database).toBe('unhealthy');
      expect(await metric(ctx, 'alfred_db_pool_idle')).toBe(0);
      expect(await metric(ctx, 'alfred_db_pool_total')).toBe(await metric(ctx, 'alfred_db_pool_max'));
    } finally {
      await runFault('exhaust-pool', true);
    }
    await waitHealthy(ctx);
  });

  test('kill-redis makes /health report Redis unhealthy while chat still answers; undo restores it', async () => {
    try {
      await runFault('kill-redis', false);
      expect(await waitFor(async () => (await health(ctx)).body.redis === 'unhealthy', 10000)).toBe(true);
      expect((await chat(ctx, uniquePrompt('no cache'), { ip: '198.51.100.33' })).status).toBe(200);
    } finally {
      await runFault('kill-redis', true);
    }
    await waitHealthy(ctx);
  });

  test('fill-redis drives Redis to OOM; undo unlinks the fill keys', async () => {
    try {
      const res = await runFault('fill-redis', false);
      expect(res.data?.oom).toBe(true);
    } finally {
      await runFault('fill-redis', true);
    }
    const [, keys] = await ctx.redis().scan('0', 'MATCH', 'alfred:cache:fill:*', 'COUNT', 1000);
    expect(keys).toHaveLength(0);
  });

  test('migrations: the newest one downgrades and upgrades again', async () => {
    const status = async () =>
      (await call(ctx, 'GET', '/v1/admin/migrations')).body as { current: number; history: Array<{ version: number }> };
    const start = await status();
    expect(start.current).toBe(3);
    try {
      const down = await call(ctx, 'POST', '/v1/admin/migrations/downgrade', { body: { steps: 1 } });
      expect(down.status).toBe(200);
      expect(down.body).toMatchObject({ reverted: [3], current: 2 });
      expect((await status()).history.map((h) => h.version)).toEqual([1, 2]);
      expect((await call(ctx, 'POST', '/v1/admin/migrations/downgrade', { body: { steps: 1 } })).status).toBe(409);
    } finally {
      const up = await call(ctx, 'POST', '/v1/admin/migrations/upgrade');
      expect(up.status).toBe(200);
    }
    expect((await status()).current).toBe(3);
  });

  test('bad-release recreates the api on 1.2.0-bad (health 500); undo returns it to 1.1.0', async () => {
    try {
      await runFault('bad-release', false);
      const h = await health(ctx);
      expect(h.status).toBe(500);
      expect(h.body.version).toBe('1.2.0-bad');
      const api = await ctx.containers.find('api');
      expect(api.info.Config.Labels?.['com.docker.compose.service']).toBe('api');
      expect(api.info.HostConfig.NetworkMode).toBe('host');
    } finally {
      await runFault('bad-release', true);
    }
    await waitHealthy(ctx);
    expect((await health(ctx)).body.version).toBe('1.1.0');
    expect(((await call(ctx, 'GET', '/v1/admin/migrations')).body as { current: number }).current).toBe(3);
  });
  test('duplicate-charges plants same-request_id deductions; a refund of one is applied exactly once', async () => {
    const pg = await ctx.pg();
    const counters = async () =>
      ((await call(ctx, 'GET', '/v1/drill/counters')).body as { counters: Record<string, number> }).counters;
    try {
      await runFault('duplicate-charges', false);
      const { rows } = await pg.query<{ request_id: string; ids: string[] }>(
        `SELECT request_id, array_agg(id::text ORDER BY id) AS ids FROM request_logs
         WHERE created_at > now() - interval '1 hour' AND amount > 0 GROUP BY request_id HAVING count(*) > 1`,
      );
      expect(rows.length).toBeGreaterThanOrEqual(3);
      const duplicate = rows[0]!.ids[1]!;
      const before = (await counters()).refunds!;
      const first = await call(ctx, 'POST', '/v1/admin/refunds', {
        body: { request_log_id: duplicate, reason: 'double charge' },
      });
      const second = await call(ctx, 'POST', '/v1/admin/refunds', {
        body: { request_log_id: duplicate, reason: 'double charge' },
      });
      expect(first.body).toMatchObject({ idempotent: false, refund_of: Number(duplicate) });
      expect(second.body).toMatchObject({ idempotent: true });
      expect((await counters()).refunds).toBe(before + 1);
    } finally {
      await runFault('duplicate-charges', true);
    }
    const { rows } =
      await pg.query(`SELECT 1 FROM request_logs WHERE created_at > now() - interval '1 hour' AND amount > 0
      GROUP BY request_id HAVING count(*) > 1`);
    expect(rows).toHaveLength(0);
  });

  test('slow-queries show as long active queries in pg_stat_activity; undo cancels them', async () => {
    const active = async () => {
      const { rows } = await (
        await ctx.pg()
      ).query<{ n: string }>(
        `SELECT count(*)::text AS n FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'SELECT pg_sleep%'`,
      );
      return Number(rows[0]!.n);
    };
    try {
      await runFault('slow-queries', false, { count: '2', seconds: '120' });
      expect(await active()).toBeGreaterThanOrEqual(2);
    } finally {
      await runFault('slow-queries', true);
    }
    expect(await waitFor(async () => (await active()) === 0, 5000)).toBe(true);
  });

  test('queue-backlog pauses the worker with 1,500 jobs queued; undo lets it drain', async () => {
    const worker = async () =>
      (await (await fetch(`${ctx.env.workerUrl}/health`)).json()) as { queue_depth: number; paused: boolean };
    try {
      await runFault('queue-backlog', false);
      await new Promise((r) => setTimeout(r, 1500));
      const w = await worker();
      expect(w.paused).toBe(true);
      expect(w.queue_depth).toBeGreaterThanOrEqual(1500);
    } finally {
      await runFault('queue-backlog', true);
    }
    expect(await waitFor(async () => (await worker()).queue_depth === 0, 30000, 500)).toBe(true);
  });

  test('expiring-cert puts a 1-day certificate on the TLS proxy; undo restores 30 days', async () => {
    try {
      await runFault('expiring-cert', false);
      expect(await waitFor(async () => (await certDaysLeft(ctx.env.tlsPort)) < 2, 10000)).toBe(true);
    } finally {
      await runFault('expiring-cert', true);
    }
    expect(await waitFor(async () => (await certDaysLeft(ctx.env.tlsPort)) > 25, 10000)).toBe(true);
  });

  test('sso-down with SSO_REQUIRED=true refuses every key with 401; undo restores access', async () => {
    try {
      await runFault('sso-down', false);
      expect((await call(ctx, 'GET', '/v1/users/me')).status).toBe(401);
      expect((await call(ctx, 'GET', '/v1/users/me', { key: 'test-key-1' })).status).toBe(401);
    } finally {
      await runFault('sso-down', true);
    }
    const me = await call(ctx, 'GET', '/v1/users/me');
    expect(me).toMatchObject({ status: 200, body: { email: 'admin@alfred.local' } });
    const api = await ctx.containers.find('api');
    expect(api.info.Config.Env).toContain('SSO_REQUIRED=false');
  });

  test('billing-reset-missed leaves the period un-reset with the cron off and users at quota (402); undo restores all', async () => {
    const usage = async () => (await (await ctx.pg()).query<{ id: string; used_tokens: string }>('SELECT id::text AS id, used_tokens::text AS used_tokens FROM users ORDER BY id')).rows;
    const before = { status: (await call(ctx, 'GET', '/v1/admin/billing/status')).body, usage: await usage() };
    expect(before.status).toMatchObject({ reset_due: false, cron_enabled: true });
    try {
      await runFault('billing-reset-missed', false);
      const status = (await call(ctx, 'GET', '/v1/admin/billing/status')).body as { period_start: string; last_reset_period_start: string };
      expect(status).toMatchObject({ reset_due: true, cron_enabled: false });
      expect(status.last_reset_period_start < status.period_start).toBe(true);
      expect((await chat(ctx, uniquePrompt('carried over'), { key: 'test-key-8', ip: '198.51.100.47' })).status).toBe(402);
      expect((await runFault('billing-reset-missed', false)).messages).toEqual([expect.stringMatching(/already missed/)]);
    } finally {
      await runFault('billing-reset-missed', true);
    }
    expect((await call(ctx, 'GET', '/v1/admin/billing/status')).body).toEqual(before.status);
    expect(await usage()).toEqual(before.usage);
    expect((await runFault('billing-reset-missed', true)).messages).toEqual([expect.stringMatching(/no missed billing reset/)]);
  });
});
