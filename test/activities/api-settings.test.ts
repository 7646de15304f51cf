/**
 * Activities read a target's HTTP answers through its API settings (`targets.<name>.api`), against a
 * real local HTTP server standing in for the target: with the replica's defaults, with a target whose
 * paths and fields differ, and with answers that lack a configured field (reported naming the field
 * and its setting, never read as false, 0 or healthy). No stack needed.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type Docker from 'dockerode';
import pino from 'pino';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { createActivities, type Activities } from '../../src/activities';
import { AnswerReader, fieldAt } from '../../src/activities/target-api/api-fields';
import { parseEntry } from '../../src/activities/redis/semantic-cache';
import { ErrorType } from '../../src/activities/engine/errors';
import { ConfigSchema } from '../../src/config';
import { apiRedisView } from '../../src/workflows/cache-failure';
import { applicationFailure } from '../helpers/failure';

const KEY = 'ak_test_admin_key';

interface Seen {
  method: string;
  path: string;
  auth: string | undefined;
  body: unknown;
}

/** A target's HTTP API: answers by `METHOD path`, and what it was sent. */
class FakeTarget {
  readonly seen: Seen[] = [];
  readonly answers = new Map<string, { status: number; body: unknown }>();
  private server: Server = createServer((req, res) => void this.handle(req, res));

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  answer(route: string, body: unknown, status = 200): void {
    this.answers.set(route, { status, body });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const path = (req.url ?? '/').split('?')[0] as string;
    this.seen.push({ method: req.method ?? '', path, auth: req.headers.authorization, body: text ? (JSON.parse(text) as unknown) : undefined });
    const a = this.answers.get(`${req.method} ${path}`);
    res.writeHead(a?.status ?? 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify(a?.body ?? { error: 'not found' }));
  }
}

function activitiesFor(baseUrl: string, target: Record<string, unknown> = {}): Activities {
  const config = ConfigSchema.parse({
    docker: { socketPath: '/nonexistent.sock' },
    targets: {
      alfred: { baseUrl, adminKey: { value: KEY }, containers: { project: 'alfred' }, components: ['api', 'db', 'redis'], ...target },
    },
    policy: { approvers: ['alice'], tiers: [{ name: 'tier-1', waitMs: 1000 }] },
  });
  // No activity under test touches Docker.
  return createActivities({ config, docker: {} as Docker, logger: pino({ level: 'silent' }) });
}

let fake: FakeTarget;
let baseUrl: string;

beforeEach(async () => {
  fake = new FakeTarget();
  baseUrl = await fake.start();
});

afterEach(async () => {
  await fake.stop();
});

describe('reading answers by configured fields', () => {
  test('dotted paths reach into objects and lists; absence is not a value', () => {
    const body = { a: { b: [{ c: 1 }, { c: null }] }, flag: false };
    expect(fieldAt(body, 'a.b.0.c')).toEqual({ found: true, value: 1 });
    expect(fieldAt(body, 'a.b.1.c')).toEqual({ found: true, value: null });
    expect(fieldAt(body, 'flag')).toEqual({ found: true, value: false });
    expect(fieldAt(body, 'a.b.2.c')).toEqual({ found: false });
    expect(fieldAt(body, 'a.x')).toEqual({ found: false });
    expect(fieldAt('text', 'a')).toEqual({ found: false });
  });

  test('a missing or mistyped field is a problem naming the field and its setting', () => {
    const r = new AnswerReader('edge', 'usersMe', { isAdmin: 'admin', id: 'uid' }, 'GET /v1/users/me', { uid: 'seven', admin: 'yes' });
    expect(r.boolean('isAdmin')).toBeUndefined();
    expect(r.id('id')).toBe('seven');
    expect(r.problems).toEqual(['GET /v1/users/me: `admin` is string, not a boolean (setting targets.edge.api.fields.usersMe.isAdmin)']);
    const m = new AnswerReader('edge', 'sla', { errorRatePct: 'm.err', requestCount: 'm.n', p99LatencyMs: 'm.p99' }, 'GET /sla', { m: { n: 3 } });
    expect(m.number('requestCount')).toBe(3);
    expect(m.number('errorRatePct')).toBeUndefined();
    expect(m.problems).toEqual(['GET /sla answered without `m.err` (set targets.edge.api.fields.sla.errorRatePct to the field that holds it)']);
    expect(() => m.orThrow()).toThrow(/targets\.edge\.api\.fields\.sla\.errorRatePct/);
  });
});

describe('/health: the api view of Redis', () => {
  test('default field `redis`', async () => {
    fake.answer('GET /health', { database: 'healthy', redis: 'unhealthy' });
    const h = await activitiesFor(baseUrl).httpHealth({ target: 'alfred' });
    expect(h.apiRedis).toEqual({ state: 'unhealthy', detail: 'unhealthy' });
    expect(apiRedisView(h)).toEqual({ state: 'unhealthy', detail: 'unhealthy' });
  });

  test('a target whose health answer nests it elsewhere', async () => {
    fake.answer('GET /health', { status: 'ok', checks: { cache: 'healthy' } });
    const acts = activitiesFor(baseUrl, { api: { fields: { health: { redis: 'checks.cache' } } } });
    expect((await acts.httpHealth({ target: 'alfred' })).apiRedis).toEqual({ state: 'healthy', detail: 'healthy' });
  });

  test('an answer without the field is unknown, naming the setting, never unhealthy or healthy', async () => {
    fake.answer('GET /health', { status: 'ok', checks: { cache: 'healthy' } });
    const h = await activitiesFor(baseUrl).httpHealth({ target: 'alfred' });
    expect(h.apiRedis?.state).toBe('unknown');
    expect(h.apiRedis?.detail).toMatch(/answered without `redis` \(set targets\.alfred\.api\.fields\.health\.redis/);
  });

  test('results recorded before the activity read the field are read as those incidents did', () => {
    expect(apiRedisView({ ok: true, status: 200, latencyMs: 1, body: { redis: 'healthy' } }).state).toBe('healthy');
    expect(apiRedisView({ ok: true, status: 200, latencyMs: 1, body: { database: 'healthy' } }).state).toBe('unhealthy');
    expect(apiRedisView({ ok: false, status: 0, latencyMs: 1, body: null }).state).toBe('unknown');
  });
});

describe('governance settings', () => {
  test('defaults: GET /v1/governance/settings, switches under `settings`', async () => {
    fake.answer('GET /v1/governance/settings', {
      settings: { cache_only_mode: false, disabled_providers: ['google'], cache_similarity_threshold: 0.85, maintenance_mode: true },
    });
    const acts = activitiesFor(baseUrl, { providers: { google: { url: 'http://example.invalid/', model: 'g' } } });
    expect(await acts.governanceSettings({ target: 'alfred' })).toEqual({
      cacheOnlyMode: false,
      disabledProviders: ['google'],
      cacheSimilarityThreshold: 0.85,
      maintenanceMode: true,
      unreadable: [],
    });
    const setup = await acts.providerSetup({ target: 'alfred' });
    expect(setup.governance).toEqual({ cacheOnly: false, disabledProviders: ['google'] });
    expect(fake.seen.every((s) => s.auth === `Bearer ${KEY}`)).toBe(true);
  });

  test('a target with another path and flat fields', async () => {
    fake.answer('GET /admin/governance', { cacheOnly: true, offProviders: [], similarity: 0.99, maintenance: false });
    const acts = activitiesFor(baseUrl, {
      api: {
        paths: { governanceSettings: '/admin/governance' },
        fields: { governanceSettings: { cacheOnlyMode: 'cacheOnly', disabledProviders: 'offProviders', cacheSimilarityThreshold: 'similarity', maintenanceMode: 'maintenance' } },
      },
    });
    expect(await acts.governanceSettings({ target: 'alfred' })).toEqual({
      cacheOnlyMode: true,
      disabledProviders: [],
      cacheSimilarityThreshold: 0.99,
      maintenanceMode: false,
      unreadable: [],
    });
    expect(fake.seen.map((s) => `${s.method} ${s.path}`)).toEqual(['GET /admin/governance']);
  });

  test('a switch the answer lacks is unknown, never off', async () => {
    fake.answer('GET /v1/governance/settings', { settings: { disabled_providers: [], cache_similarity_threshold: 0.9, maintenance_mode: false } });
    const acts = activitiesFor(baseUrl);
    const g = await acts.governanceSettings({ target: 'alfred' });
    expect(g.cacheOnlyMode).toBeUndefined();
    expect(g.unreadable).toEqual([
      'GET /v1/governance/settings answered without `settings.cache_only_mode` (set targets.alfred.api.fields.governanceSettings.cacheOnlyMode to the field that holds it)',
    ]);
    const f = await applicationFailure(acts.providerSetup({ target: 'alfred' }));
    expect(f.type).toBe(ErrorType.NotConfigured);
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toMatch(/targets\.alfred\.api\.fields\.governanceSettings\.cacheOnlyMode/);
  });

  test('enabling a provider goes to the configured path and names it as the undo of a disable', async () => {
    fake.answer('POST /ops/providers/on', { ok: true, didChange: true });
    fake.answer('POST /v1/governance/providers/disable', { changed: false });
    const acts = activitiesFor(baseUrl, {
      providers: { openai: { url: 'http://example.invalid/', model: 'm' } },
      api: { paths: { enableProvider: '/ops/providers/on' }, fields: { providerToggle: { changed: 'didChange' } } },
    });
    const on = await acts.setProviderEnabled({ target: 'alfred', provider: 'openai', enabled: true, reason: 'test' });
    expect(on).toMatchObject({ changed: true, detail: 'openai enabled in the governance API' });
    expect(fake.seen[0]).toMatchObject({ method: 'POST', path: '/ops/providers/on', body: { provider: 'openai', reason: 'test' } });
    const off = await acts.setProviderEnabled({ target: 'alfred', provider: 'openai', enabled: false, reason: 'test' });
    // The answer has `changed`, but this target's flag is `didChange`: unknown, not "already disabled".
    expect(off.changed).toBeNull();
    expect(off.detail).toMatch(/targets\.alfred\.api\.fields\.providerToggle\.changed/);
    expect(off.undo).toBe('POST /ops/providers/on');
  });
});

describe('SLA metrics', () => {
  test("the seed's fields as quoted, the others by default settings", async () => {
    fake.answer('GET /v1/notifications/sla/metrics', {
      metrics: { provider_error_rates: { openai: 1 }, p95_latency_ms: 120, p99_latency_ms: 300, error_rate_pct: 0.5, request_count: 42, cache_hit_rate_pct: 12, window_seconds: 300 },
    });
    expect(await activitiesFor(baseUrl).slaMetrics({ target: 'alfred' })).toEqual({
      available: true,
      providerErrorRates: { openai: 1 },
      errorRatePct: 0.5,
      requestCount: 42,
      windowSeconds: 300,
      p95LatencyMs: 120,
      p99LatencyMs: 300,
      cacheHitRatePct: 12,
      unreadable: [],
    });
  });

  test('a target naming p99 otherwise; a field it lacks is not reported as 0', async () => {
    fake.answer('GET /v1/notifications/sla/metrics', { metrics: { provider_error_rates: {}, p95_latency_ms: 90, latency: { p99: 250 }, window_seconds: 300 } });
    const m = await activitiesFor(baseUrl, { api: { fields: { sla: { p99LatencyMs: 'metrics.latency.p99' } } } }).slaMetrics({ target: 'alfred' });
    expect(m.p99LatencyMs).toBe(250);
    expect(m.errorRatePct).toBeUndefined();
    expect(m.requestCount).toBeUndefined();
    expect(m.unreadable).toEqual([
      expect.stringContaining('targets.alfred.api.fields.sla.errorRatePct'),
      expect.stringContaining('targets.alfred.api.fields.sla.requestCount'),
    ]);
  });
});

describe('blocks', () => {
  test('default path and list', async () => {
    fake.answer('GET /v1/governance/blocks', { blocked: [{ ip: '10.0.0.9', reason: 'x' }] });
    expect(await activitiesFor(baseUrl).blockedIps({ target: 'alfred' })).toEqual({ ips: ['10.0.0.9'] });
  });

  test('a target with another path and shape', async () => {
    fake.answer('GET /acl/deny', { data: { entries: [{ address: '10.0.0.7' }, { address: '10.0.0.8' }] } });
    const acts = activitiesFor(baseUrl, { api: { paths: { blocks: '/acl/deny' }, fields: { blocks: { list: 'data.entries', ip: 'address' } } } });
    expect(await acts.blockedIps({ target: 'alfred' })).toEqual({ ips: ['10.0.0.7', '10.0.0.8'] });
  });

  test('an answer without the list fails naming the setting, never "nothing blocked"', async () => {
    fake.answer('GET /v1/governance/blocks', { items: [] });
    const f = await applicationFailure(activitiesFor(baseUrl).blockedIps({ target: 'alfred' }));
    expect(f.message).toMatch(/without `blocked` \(set targets\.alfred\.api\.fields\.blocks\.list/);
  });
});

describe('users/me', () => {
  test('is_admin by default; another field name by setting', async () => {
    fake.answer('GET /v1/users/me', { email: 'admin@alfred.local', is_admin: true, id: 1 });
    expect(await activitiesFor(baseUrl).whoAmI({ target: 'alfred' })).toEqual({ status: 200, email: 'admin@alfred.local', isAdmin: true });
    fake.answer('GET /v1/users/me', { email: 'admin@alfred.local', role: { admin: false } });
    const acts = activitiesFor(baseUrl, { api: { fields: { usersMe: { isAdmin: 'role.admin' } } } });
    expect(await acts.whoAmI({ target: 'alfred' })).toEqual({ status: 200, email: 'admin@alfred.local', isAdmin: false });
  });

  test('a 200 without the admin flag fails naming the setting; a 401 stays a finding', async () => {
    fake.answer('GET /v1/users/me', { email: 'admin@alfred.local' });
    const f = await applicationFailure(activitiesFor(baseUrl).whoAmI({ target: 'alfred' }));
    expect(f.type).toBe(ErrorType.NotConfigured);
    expect(f.message).toMatch(/targets\.alfred\.api\.fields\.usersMe\.isAdmin/);
    fake.answer('GET /v1/users/me', { error: 'invalid key' }, 401);
    expect(await activitiesFor(baseUrl).whoAmI({ target: 'alfred' })).toMatchObject({ status: 401 });
  });
});

describe('billing', () => {
  const status = { period_start: '2026-12-01', reset_due: true, last_reset_period_start: null, last_reset_at: null, cron_enabled: false };

  test('default path and fields', async () => {
    fake.answer('GET /v1/admin/billing/status', status);
    expect(await activitiesFor(baseUrl).billingStatus({ target: 'alfred' })).toEqual({
      available: true,
      periodStart: '2026-12-01',
      lastResetPeriodStart: null,
      lastResetAt: null,
      resetDue: true,
      cronEnabled: false,
    });
  });

  test('a target with other paths and names; the reset names the period in its own field', async () => {
    fake.answer('GET /billing/period', { period: { start: '2026-12-01', due: false, lastStart: '2026-12-01', lastAt: '2026-12-01T00:00:05Z', cron: true } });
    fake.answer('POST /billing/period/reset', { start: '2026-12-01', count: 7, repeat: false });
    const acts = activitiesFor(baseUrl, {
      api: {
        paths: { billingStatus: '/billing/period', billingReset: '/billing/period/reset' },
        fields: {
          billingStatus: { periodStart: 'period.start', resetDue: 'period.due', lastResetPeriodStart: 'period.lastStart', lastResetAt: 'period.lastAt', cronEnabled: 'period.cron' },
          billingReset: { periodStart: 'period', answerPeriodStart: 'start', usersReset: 'count', idempotent: 'repeat' },
        },
      },
    });
    expect(await acts.billingStatus({ target: 'alfred' })).toMatchObject({ available: true, resetDue: false, lastResetPeriodStart: '2026-12-01', cronEnabled: true });
    expect(await acts.resetBilling({ target: 'alfred', periodStart: '2026-12-01' })).toEqual({ detail: 'period 2026-12-01: usage of 7 users reset' });
    expect(fake.seen.at(-1)).toMatchObject({ method: 'POST', path: '/billing/period/reset', body: { period: '2026-12-01' } });
  });

  test('a status without the due flag is unavailable, naming the setting, never "not due"', async () => {
    const { reset_due: _, ...noFlag } = status;
    fake.answer('GET /v1/admin/billing/status', noFlag);
    const b = await activitiesFor(baseUrl).billingStatus({ target: 'alfred' });
    expect(b.available).toBe(false);
    expect(b.resetDue).toBeUndefined();
    expect(b.error).toMatch(/targets\.alfred\.api\.fields\.billingStatus\.resetDue/);
  });

  test('a top-up carries the idempotency key in the configured field', async () => {
    fake.answer('POST /v1/wallets/5/topup', { topup_id: 11, idempotent: true });
    const acts = activitiesFor(baseUrl, { api: { fields: { topup: { idempotencyKey: 'dedupe_key' } } } });
    const r = await acts.topUpWallet({ target: 'alfred', walletId: 5, amount: 500, reason: 'INC-07', idempotencyKey: 'inc-1:user-3' });
    expect(r.detail).toBe('wallet 5 +500 (top-up #11, already done)');
    expect(fake.seen[0]?.body).toEqual({ amount: 500, reason: 'INC-07', dedupe_key: 'inc-1:user-3' });
  });

  test('a target without idempotent top-ups: an unanswered top-up is never retried, and a second attempt sends nothing', async () => {
    fake.answer('POST /v1/wallets/5/topup', { error: 'upstream timeout' }, 503);
    const once = activitiesFor(baseUrl, { api: { idempotentTopups: false } });
    const f = await applicationFailure(once.topUpWallet({ target: 'alfred', walletId: 5, amount: 500, reason: 'INC-07', idempotencyKey: 'k' }));
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toMatch(/^the top-up ended without an answer .*: wallet 5 may or may not have received \+500: check its balance and ledger/);
    expect(fake.seen).toHaveLength(1);

    const retry = new MockActivityEnvironment({ attempt: 2 }, { logger: new DefaultLogger('ERROR') });
    const g = await applicationFailure(retry.run(once.topUpWallet, { target: 'alfred', walletId: 5, amount: 500, reason: 'INC-07', idempotencyKey: 'k' }));
    expect(g.message).toMatch(/^an earlier attempt of this top-up ended without an answer: wallet 5 may or may not have received/);
    expect(fake.seen).toHaveLength(1);
  });

  test('with idempotent top-ups (the replica), an unanswered top-up is retried as usual', async () => {
    fake.answer('POST /v1/wallets/5/topup', { error: 'upstream timeout' }, 503);
    const err = await activitiesFor(baseUrl)
      .topUpWallet({ target: 'alfred', walletId: 5, amount: 500, reason: 'INC-07', idempotencyKey: 'k' })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(ApplicationFailure);
  });
});

describe('security answers', () => {
  test('erasure confirmed by the configured field; without it the activity fails naming the setting', async () => {
    fake.answer('POST /v1/gdpr/erasure/4', { done: true, repeat: false });
    const acts = activitiesFor(baseUrl, { api: { fields: { erasure: { erased: 'done', idempotent: 'repeat' } } } });
    expect(await acts.eraseUser({ target: 'alfred', userId: 4 })).toEqual({ detail: 'user 4 erased (email anonymised, key revoked)' });
    const f = await applicationFailure(activitiesFor(baseUrl).eraseUser({ target: 'alfred', userId: 4 }));
    expect(f.message).toMatch(/targets\.alfred\.api\.fields\.erasure\.erased/);
  });
});

describe('chat completions and cache entries', () => {
  test('the known query reads `cached` by its setting; without it, says so', async () => {
    fake.answer('POST /v1/chat/completions', { choices: [{ message: { content: 'It is 4.' } }], meta: { fromCache: true } });
    const withField = activitiesFor(baseUrl, { api: { fields: { chatCompletion: { cached: 'meta.fromCache' } } } });
    expect(await withField.probeKnownQuery({ target: 'alfred' })).toEqual({ status: 200, answer: 'It is 4.', correct: true, cached: true });
    const p = await activitiesFor(baseUrl).probeKnownQuery({ target: 'alfred' });
    expect(p.cached).toBeUndefined();
    expect(p.unreadable).toMatch(/targets\.alfred\.api\.fields\.chatCompletion\.cached/);
  });

  test('a live completion whose source is unknown does not pass as "from a provider"', async () => {
    fake.answer('POST /v1/chat/completions', { choices: [{ message: { content: 'x' } }], provider: 'openai' });
    const r = await activitiesFor(baseUrl).liveCompletion({ target: 'alfred', model: 'm' });
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/targets\.alfred\.api\.fields\.chatCompletion\.cached/);
  });

  test('cache entries by the configured fields', () => {
    const raw = JSON.stringify({ request: { text: 'What is 2+2?' }, answer: '4' });
    expect(parseEntry(raw, { prompt: 'request.text', response: 'answer' })).toEqual({ prompt: 'What is 2+2?', response: '4' });
    expect(parseEntry(raw, { prompt: 'prompt', response: 'response' })).toBe('unreadable');
    expect(parseEntry('not json', { prompt: 'prompt', response: 'response' })).toBeUndefined();
  });
});
