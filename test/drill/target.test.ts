/**
 * The drill target's read-only surface: nothing here breaks the stack, so it may run beside other
 * files. Fault drills live in faults.test.ts.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { call, callUntil, chatBody, FaultContext, sla, uniquePrompt } from './helpers';

const run = promisify(execFile);
const REPO = path.resolve(__dirname, '../..');

describe('alfred drill target (read-only)', () => {
  const ctx = new FaultContext();
  afterAll(() => ctx.close());

  test('/metrics exposes the pool gauges, request counters and build info', async () => {
    const res = await call(ctx, 'GET', '/metrics', { key: null });
    expect(res.status).toBe(200);
    for (const name of [
      'alfred_db_pool_total',
      'alfred_db_pool_idle',
      'alfred_db_pool_waiting',
      'alfred_db_pool_max',
      'alfred_http_requests_total',
      'alfred_http_request_duration_seconds_bucket',
      'alfred_provider_requests_total',
      'alfred_cache_hits_total',
      'alfred_cache_misses_total',
      'alfred_rate_limited_total',
      'process_resident_memory_bytes',
      'alfred_build_info',
    ]) {
      expect(res.text).toMatch(new RegExp(`^${name}[ {]`, 'm'));
    }
    expect(res.text).toMatch(/^alfred_db_pool_max 10$/m);
  });

  test('SLA metrics are computed over real requests in a 300 s window', async () => {
    const before = await sla(ctx);
    for (let i = 0; i < 3; i++) {
      const res = await callUntil(ctx, 'POST', '/v1/chat/completions', {
        key: 'test-key-2',
        headers: { 'x-forwarded-for': '198.51.100.21' },
        body: chatBody(uniquePrompt('sla'), 'claude-3-haiku'),
      });
      expect(res.status).toBe(200);
    }
    const m = await sla(ctx);
    expect(m.window_seconds).toBe(300);
    expect(m.request_count).toBeGreaterThanOrEqual(Math.min(before.request_count + 3, 3));
    expect(m.p95_latency_ms).toBeGreaterThan(0);
    expect(m.p99_latency_ms).toBeGreaterThanOrEqual(m.p95_latency_ms);
    expect(Object.keys(m.provider_error_rates).sort()).toEqual(['anthropic', 'google', 'openai']);
    expect(m.provider_error_rate_pct).toBe(Math.max(...Object.values(m.provider_error_rates)));
    for (const v of [m.error_rate_pct, m.cache_hit_rate_pct, m.provider_error_rate_pct]) {
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThanOrEqual(100);
    }
  });

  test('admin endpoints refuse a wrong key with 401 and never echo it', async () => {
    const wrong = `wrong-key-${Math.random().toString(36).slice(2)}`;
    for (const [method, p] of [
      ['GET', '/v1/notifications/sla/metrics'],
      ['GET', '/v1/governance/settings'],
      ['POST', '/v1/admin/audit-logs/verify'],
      ['GET', '/v1/drill/faults'],
    ] as const) {
      const res = await call(ctx, method, p, { key: wrong });
      expect(res.status).toBe(401);
      expect(res.text).not.toContain(wrong);
    }
    const logs = await ctx.containers.logs('api', 60);
    expect(logs).not.toContain(wrong);
    expect(logs).not.toContain(ctx.env.adminKey);
  });

  test('a normal user is not an admin', async () => {
    const me = await callUntil(ctx, 'GET', '/v1/users/me', { key: 'test-key-3' });
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ email: 'carol@example.com', is_admin: false });
    const settings = await callUntil(ctx, 'GET', '/v1/governance/settings', { key: 'test-key-3' }, (s) => s !== 401);
    expect(settings.status).toBe(403);
  });

  test('the admin key resolves to the bootstrap admin', async () => {
    const me = await callUntil(ctx, 'GET', '/v1/users/me', {});
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ id: 1, email: 'admin@alfred.local', is_admin: true });
  });

  test('top-ups above the cap are refused and an idempotency key applies one exactly once', async () => {
    const tooMuch = await callUntil(
      ctx,
      'POST',
      '/v1/wallets/5/topup',
      { body: { amount: 10001, reason: 'test' } },
      (s) => s !== 401,
    );
    expect(tooMuch.status).toBe(400);
    const counters = async () =>
      ((await callUntil(ctx, 'GET', '/v1/drill/counters', {})).body as { counters: Record<string, number> }).counters;
    const before = await counters();
    const key = `topup-${Date.now()}-${Math.random()}`;
    const first = await callUntil(ctx, 'POST', '/v1/wallets/5/topup', {
      body: { amount: 25, reason: 'drill test', idempotency_key: key },
    });
    const again = await callUntil(ctx, 'POST', '/v1/wallets/5/topup', {
      body: { amount: 25, reason: 'drill test', idempotency_key: key },
    });
    expect(first.status).toBe(200);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ idempotent: true, topup_id: (first.body as { topup_id: number }).topup_id });
    expect((await counters()).topups).toBe(before.topups! + 1);
  });

  test('fault CLI: --help lists every fault; bad usage exits 2', async () => {
    const tsx = path.join(REPO, 'node_modules/.bin/tsx');
    const help = await run(tsx, ['scripts/fault.ts', '--help'], { cwd: REPO });
    for (const f of [
      'stop-db',
      'kill-redis',
      'exhaust-pool',
      'fill-redis',
      'poison-cache',
      'break-audit-chain',
      'bad-release',
      'sso-down',
    ]) {
      expect(help.stdout).toContain(f);
    }
    await expect(run(tsx, ['scripts/fault.ts', 'no-such-fault'], { cwd: REPO })).rejects.toMatchObject({ code: 2 });
    await expect(
      run(tsx, ['scripts/fault.ts', 'break-audit-chain', '--kind', 'bogus'], { cwd: REPO }),
    ).rejects.toMatchObject({
      code: 2,
    });
  });
});
