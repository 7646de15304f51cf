/** Role `api`: the Alfred gateway's HTTP API on PORT. */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import type { PoolClient } from 'pg';
import type Redis from 'ioredis';
import type { DrillConfig } from './config';
import { createDb, DatabaseUnavailable, sleep, type Db } from './db';
import { createRedis, redisPing, redisReady } from './redis';
import { errText, log } from './log';
import { Metrics, PROVIDERS, type Provider } from './metrics';
import { MIGRATIONS, MigrationRefused, migrateDown, migrateUp, migrationStatus, targetVersion } from './migrations';
import { seedIfEmpty, syncAdmin } from './seed';
import { appendAudit, verifyChain } from './audit-chain';
import { ADMIN_EMAIL, hashKey, newApiKey, sameHash } from './keys';
import {
  clientIp,
  HttpError,
  idParam,
  optBool,
  optNumber,
  optString,
  readJson,
  reqString,
  Router,
  sendJson,
  sendText,
  type Ctx,
} from './http';
import { cacheLookup, cacheStore } from './cache';
import { callProvider, countTokens, ProviderError, providerForModel } from './providers';
import { DrillFaults, HOOK_FAULTS, logPii } from './drill-hooks';
import { bumpCounter, Governance, normaliseSettings, type Settings } from './governance';
import { QUEUE_KEY } from './worker';
import { registerUpstream } from './upstream';
import { requestKeyId } from './key-id';
import { billingCronTick, CRON_INTERVAL_MS, registerBillingRoutes } from './billing';

export const TOPUP_CAP = 10000;
const COUNTER_NAMES = [
  'starts_api',
  'starts_worker',
  'topups',
  'refunds',
  'blocks',
  'provider_disables',
  'key_rotations',
  'erasures',
];

interface Principal {
  id: string;
  email: string;
  is_admin: boolean;
  personal_quota: string;
  used_tokens: string;
}

export function startApi(cfg: DrillConfig): void {
  const db = createDb(cfg.databaseUrl, cfg.poolMax, 'alfred-api');
  const redis = createRedis(cfg.redisUrl, 'alfred-api');
  const metrics = new Metrics();
  const faults = new DrillFaults(db, redis, cfg.databaseUrl);
  const gov = new Governance(db);
  const adminHash = cfg.adminKey ? hashKey(cfg.adminKey) : '';
  const state = { schemaReady: false };
  const router = buildRouter({ cfg, db, redis, metrics, faults, gov, adminHash, state });

  const server = createServer((req, res) => {
    void handle(req, res);
  });
  server.keepAliveTimeout = 5000;
  server.requestTimeout = 60000;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = (req.method ?? 'GET').toUpperCase();
    const headerId = req.headers['x-request-id'];
    const requestId =
      typeof headerId === 'string' && /^[\w.:-]{1,100}$/.test(headerId)
        ? headerId
        : `req_${randomBytes(8).toString('hex')}`;
    const ctx: Ctx = {
      req,
      res,
      method,
      path: url.pathname,
      route: 'unmatched',
      params: {},
      query: url.searchParams,
      clientIp: clientIp(req),
      requestId,
      logFields: {},
      body: () => readJson(req),
    };
    res.setHeader('x-request-id', requestId);
    let status = 500;
    try {
      const monitoring = ctx.path === '/health' || ctx.path === '/metrics' || ctx.path.startsWith('/v1/drill/');
      if (!monitoring && gov.blocked.has(ctx.clientIp)) throw new HttpError(403, 'client blocked');
      const found = router.match(method, ctx.path);
      if (!found) throw new HttpError(404, 'not found');
      if ('allowed' in found) throw new HttpError(405, 'method not allowed', { allowed: found.allowed });
      ctx.route = found.route.pattern;
      ctx.params = found.params;
      const out = await found.route.handler(ctx);
      status = res.headersSent ? res.statusCode : 200;
      if (!res.headersSent) sendJson(res, 200, out);
    } catch (err) {
      status = errorResponse(ctx, err);
    }
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const inWindow =
      ctx.path.startsWith('/v1/') && !ctx.path.startsWith('/v1/drill/') && !ctx.path.startsWith('/v1/notifications/');
    metrics.recordHttp(ctx.route, status, ms, inWindow);
    log(status >= 500 ? 'error' : 'info', undefined, {
      method,
      path: ctx.path,
      status,
      duration_ms: Math.round(ms),
      client_ip: ctx.clientIp,
      ...ctx.logFields,
      request_id: requestId,
    });
  }

  function errorResponse(ctx: Ctx, err: unknown): number {
    if (err instanceof HttpError) {
      sendJson(ctx.res, err.status, { error: err.message, ...err.extra });
      return err.status;
    }
    if (err instanceof DatabaseUnavailable) {
      log('error', 'database error', { err: errText(err), request_id: ctx.requestId });
      sendJson(ctx.res, 500, { error: 'database unavailable' });
      return 500;
    }
    log('error', 'unhandled error', { err: errText(err), request_id: ctx.requestId });
    sendJson(ctx.res, 500, { error: 'internal error' });
    return 500;
  }

  server.listen(cfg.port, () => log('info', 'alfred api listening', { port: cfg.port, version: cfg.version }));

  // Schema and seed in the background: /health answers from the first second, DB or not.
  void (async () => {
    const deadline = Date.now() + 30000;
    let warned = false;
    for (;;) {
      try {
        const applied = await migrateUp(db, targetVersion(cfg.version));
        if (applied.length) log('info', 'migrations applied', { versions: applied.join(',') });
        await seedIfEmpty(db, cfg.adminKey);
        await syncAdmin(db, cfg.adminKey);
        await bumpCounter(db, 'starts_api');
        await gov.refresh();
        state.schemaReady = true;
        log('info', 'database ready', { schema_target: targetVersion(cfg.version) });
        return;
      } catch (err) {
        if (Date.now() > deadline && !warned) {
          log('error', 'database not ready after 30 s; still retrying in the background', { err: errText(err) });
          warned = true;
        }
        await sleep(warned ? 5000 : 1000);
      }
    }
  })();

  const every = (ms: number, fn: () => Promise<void>) => {
    const timer = setInterval(() => {
      fn().catch(() => undefined);
    }, ms);
    timer.unref();
  };
  every(1000, () => faults.refresh());
  every(2000, async () => {
    if (state.schemaReady) await gov.refresh();
  });
  // The billing reset runs at period start (within one tick), unless billing_settings switched the cron off.
  every(CRON_INTERVAL_MS, async () => {
    if (state.schemaReady) await billingCronTick(db);
  });
  // Faults kept in Redis take effect as soon as Redis is reachable, not a refresh tick later.
  redis.on('ready', () => void faults.refresh());

  const shutdown = (signal: string) => {
    log('info', 'shutting down', { signal });
    server.close();
    redis.disconnect();
    void db.pool.end().catch(() => undefined);
    setTimeout(() => process.exit(0), 1500).unref();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

interface Deps {
  cfg: DrillConfig;
  db: Db;
  redis: Redis;
  metrics: Metrics;
  faults: DrillFaults;
  gov: Governance;
  adminHash: string;
  state: { schemaReady: boolean };
}

function bearer(ctx: Ctx): string {
  const h = ctx.req.headers.authorization ?? '';
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  if (!m) throw new HttpError(401, 'missing or malformed Authorization header');
  return m[1]!;
}

function buildRouter(d: Deps): Router {
  const { cfg, db, redis, metrics, faults, gov } = d;
  const r = new Router();
  const memLimiter = new Map<string, number>();

  const requireSchema = () => {
    if (!d.state.schemaReady) throw new HttpError(503, 'service starting: database not ready');
  };

  const ssoGate = (ctx: Ctx) => {
    if (cfg.ssoRequired && faults.active('sso-down')) {
      log('warn', 'auth failed', { reason: 'sso_provider_unreachable', path: ctx.path, client_ip: ctx.clientIp });
      throw new HttpError(401, 'authentication failed: SSO provider unavailable');
    }
  };

  /** Any valid key, looked up by its hash; the stored hash is compared in constant time. */
  async function authUser(ctx: Ctx): Promise<Principal> {
    const key = bearer(ctx);
    ssoGate(ctx);
    requireSchema();
    // The auth-bug release hashes the key with a stray newline, so no stored hash ever matches.
    const hash = hashKey(cfg.authBug ? `${key}\n` : key);
    const rows = await db.query<Principal & { api_key_hash: string }>(
      `SELECT id::text AS id, email, is_admin, api_key_hash, personal_quota::text AS personal_quota,
              used_tokens::text AS used_tokens FROM users WHERE api_key_hash = $1`,
      [hash],
    );
    const row = rows[0];
    if (!row || !sameHash(row.api_key_hash, hash)) {
      log('warn', 'auth failed', { reason: 'unknown_key', path: ctx.path, client_ip: ctx.clientIp });
      throw new HttpError(401, 'invalid api key');
    }
    ctx.logFields.user_id = row.id;
    return row;
  }

  /** Admin endpoints. The bootstrap admin (ADMIN_KEY) is checked without the database, so operators keep access during a DB outage. */
  async function authAdmin(ctx: Ctx, opts: { sso?: boolean } = {}): Promise<Principal> {
    const key = bearer(ctx);
    if (opts.sso !== false) ssoGate(ctx);
    if (d.adminHash && sameHash(hashKey(key), d.adminHash)) {
      ctx.logFields.user_id = '1';
      return { id: '1', email: ADMIN_EMAIL, is_admin: true, personal_quota: '0', used_tokens: '0' };
    }
    if (opts.sso === false) {
      log('warn', 'auth failed', { reason: 'not_bootstrap_admin', path: ctx.path, client_ip: ctx.clientIp });
      throw new HttpError(401, 'invalid api key');
    }
    const user = await authUser(ctx);
    if (!user.is_admin) throw new HttpError(403, 'admin only');
    return user;
  }

  async function rateLimited(ip: string): Promise<boolean> {
    const minute = Math.floor(Date.now() / 60000);
    const key = `alfred:ratelimit:${ip}:${minute}`;
    if (redisReady(redis)) {
      try {
        const res = await redis.multi().incr(key).expire(key, 120).exec();
        const count = Number(res?.[0]?.[1] ?? 0);
        return count > cfg.rateLimitPerMinute;
      } catch (err) {
        log('warn', 'rate limiter falling back to memory', { err: errText(err) });
      }
    }
    const count = (memLimiter.get(key) ?? 0) + 1;
    memLimiter.set(key, count);
    if (memLimiter.size > 10000) memLimiter.clear();
    return count > cfg.rateLimitPerMinute;
  }

  const audit = (
    c: PoolClient,
    actor: Principal,
    action: string,
    targetType: string,
    targetId: string,
    details: Record<string, unknown>,
  ) => appendAudit(c, { actorUserId: actor.id, action, targetType, targetId, details });

  // ---------- health and metrics ----------
  const dependencies = async (): Promise<{ database: boolean; redis: boolean }> => {
    const [database, redisUp] = await Promise.all([
      d.state.schemaReady ? db.ping(2000) : Promise.resolve(false),
      redisPing(redis, 1000),
    ]);
    return { database, redis: redisUp };
  };
  const health = async (ctx: Ctx) => {
    const { database: dbOk, redis: redisOk } = await dependencies();
    const body = {
      status: dbOk && redisOk ? 'ok' : 'degraded',
      version: cfg.version,
      database: dbOk ? 'healthy' : 'unhealthy',
      redis: redisOk ? 'healthy' : 'unhealthy',
    };
    if (cfg.badRelease) {
      log('error', 'health check failed', { err: "TypeError: Cannot read properties of undefined (reading 'ready')" });
      sendJson(ctx.res, 500, { ...body, status: 'error', error: 'internal error' });
      return;
    }
    sendJson(ctx.res, dbOk && redisOk ? 200 : 503, body);
  };
  r.on('GET', '/health', health);
  r.on('GET', '/v1/health', health);

  r.on('GET', '/metrics', async (ctx) => {
    const pool = { total: db.pool.totalCount, idle: db.pool.idleCount, waiting: db.pool.waitingCount, max: db.max };
    sendText(ctx.res, 200, metrics.prometheus({ version: cfg.version, pool, dependencies: await dependencies() }), 'text/plain; version=0.0.4');
  });

  r.on('GET', '/v1/notifications/sla/metrics', async (ctx) => {
    await authAdmin(ctx);
    return { metrics: metrics.sla() };
  });

  // ---------- governance ----------
  async function updateSettings(
    ctx: Ctx,
    actor: Principal,
    patch: Partial<Settings>,
    action: string,
  ): Promise<Settings> {
    requireSchema();
    const next = normaliseSettings({ ...gov.settings, ...patch });
    await db.tx(async (c) => {
      await c.query(
        `INSERT INTO governance_settings (id, settings, updated_at) VALUES (1, $1, now())
         ON CONFLICT (id) DO UPDATE SET settings = EXCLUDED.settings, updated_at = now()`,
        [JSON.stringify(next)],
      );
      await audit(c, actor, action, 'settings', 'governance', { changed: patch, client_ip: ctx.clientIp });
    });
    gov.settings = next;
    log('info', 'governance settings changed', {
      changed: Object.keys(patch).join(','),
      reason: next.reason ?? undefined,
    });
    return next;
  }

  r.on('GET', '/v1/governance/settings', async (ctx) => {
    await authAdmin(ctx);
    return { settings: gov.settings };
  });

  r.on('POST', '/v1/governance/settings', async (ctx) => {
    const actor = await authAdmin(ctx);
    const body = await ctx.body();
    const patch: Partial<Settings> = {};
    const cacheOnly = optBool(body, 'cache_only_mode');
    if (cacheOnly !== undefined) patch.cache_only_mode = cacheOnly;
    const maintenance = optBool(body, 'maintenance_mode');
    if (maintenance !== undefined) patch.maintenance_mode = maintenance;
    const threshold = optNumber(body, 'cache_similarity_threshold');
    if (threshold !== undefined) {
      if (threshold <= 0 || threshold > 1) throw new HttpError(400, 'cache_similarity_threshold must be in (0, 1]');
      patch.cache_similarity_threshold = threshold;
    }
    if (body.disabled_providers !== undefined) {
      const list = body.disabled_providers;
      if (!Array.isArray(list) || list.some((p) => !PROVIDERS.includes(p as Provider))) {
        throw new HttpError(400, `disabled_providers must be a list drawn from ${PROVIDERS.join(', ')}`);
      }
      patch.disabled_providers = [...new Set(list as Provider[])];
    }
    const reason = optString(body, 'reason');
    if (reason !== undefined) patch.reason = reason;
    if (Object.keys(patch).length === 0) throw new HttpError(400, 'no known setting in the request body');
    return { settings: await updateSettings(ctx, actor, patch, 'settings_changed') };
  });

  const providerToggle = (disable: boolean) => async (ctx: Ctx) => {
    const actor = await authAdmin(ctx);
    const body = await ctx.body();
    const provider = reqString(body, 'provider', 40) as Provider;
    if (!PROVIDERS.includes(provider)) throw new HttpError(400, `provider must be one of ${PROVIDERS.join(', ')}`);
    const reason = optString(body, 'reason') ?? null;
    const current = gov.settings.disabled_providers;
    const already = current.includes(provider) === disable;
    if (already) return { provider, disabled: disable, changed: false, settings: gov.settings };
    const list = disable ? [...current, provider] : current.filter((p) => p !== provider);
    const settings = await updateSettings(
      ctx,
      actor,
      { disabled_providers: list, reason },
      disable ? 'provider_disabled' : 'provider_enabled',
    );
    if (disable) await bumpCounter(db, 'provider_disables');
    return { provider, disabled: disable, changed: true, settings };
  };
  r.on('POST', '/v1/governance/providers/disable', providerToggle(true));
  r.on('POST', '/v1/governance/providers/enable', providerToggle(false));

  const blockIp = async (ctx: Ctx) => {
    const actor = await authAdmin(ctx);
    requireSchema();
    const body = await ctx.body();
    const ip = reqString(body, 'ip', 45);
    if (!isIP(ip)) throw new HttpError(400, 'ip must be an IPv4 or IPv6 address');
    if (ip === '127.0.0.1' || ip === '::1')
      throw new HttpError(400, 'refusing to block loopback: it would lock out operators');
    const reason = optString(body, 'reason') ?? null;
    const created = await db.tx(async (c) => {
      const ins = await c.query(
        'INSERT INTO ip_blocks (ip, reason) VALUES ($1, $2) ON CONFLICT (ip) DO NOTHING RETURNING ip',
        [ip, reason],
      );
      if (ins.rowCount === 0) return false;
      await audit(c, actor, 'ip_blocked', 'ip', ip, { reason });
      await c.query(
        `INSERT INTO drill_counters (name, value) VALUES ('blocks', 1) ON CONFLICT (name) DO UPDATE SET value = drill_counters.value + 1`,
      );
      return true;
    });
    gov.blocked.set(ip, reason);
    if (created) log('warn', 'client blocked', { blocked_ip: ip, reason: reason ?? undefined });
    return { ip, blocked: true, changed: created };
  };
  const unblockIp = async (ctx: Ctx) => {
    const actor = await authAdmin(ctx);
    requireSchema();
    const body = ctx.method === 'DELETE' && ctx.query.get('ip') ? {} : await ctx.body();
    const ip = ctx.query.get('ip') ?? reqString(body, 'ip', 45);
    const removed = await db.tx(async (c) => {
      const del = await c.query('DELETE FROM ip_blocks WHERE ip = $1', [ip]);
      if (del.rowCount === 0) return false;
      await audit(c, actor, 'ip_unblocked', 'ip', ip, {});
      return true;
    });
    gov.blocked.delete(ip);
    return { ip, blocked: false, changed: removed };
  };
  r.on('POST', '/v1/governance/block', blockIp);
  r.on('DELETE', '/v1/governance/block', unblockIp);
  r.on('POST', '/v1/governance/unblock', unblockIp);
  r.on('GET', '/v1/governance/blocks', async (ctx) => {
    await authAdmin(ctx);
    return { blocked: [...gov.blocked.entries()].map(([ip, reason]) => ({ ip, reason })) };
  });

  // ---------- users, wallets, ledger ----------
  r.on('GET', '/v1/users/me', async (ctx) => {
    const user = await authUser(ctx);
    return { id: Number(user.id), email: user.email, is_admin: user.is_admin };
  });

  r.on('GET', '/v1/wallets/:id', async (ctx) => {
    await authAdmin(ctx);
    requireSchema();
    const id = idParam(ctx.params, 'id');
    const rows = await db.query(
      'SELECT id::int, user_id::int, balance::int, hard_limit::int, updated_at FROM wallets WHERE id = $1',
      [id],
    );
    if (!rows[0]) throw new HttpError(404, 'wallet not found');
    return rows[0];
  });

  r.on('POST', '/v1/wallets/:id/topup', async (ctx) => {
    const actor = await authAdmin(ctx);
    requireSchema();
    const id = idParam(ctx.params, 'id');
    const body = await ctx.body();
    const amount = optNumber(body, 'amount');
    if (amount === undefined || !Number.isInteger(amount) || amount <= 0)
      throw new HttpError(400, 'amount must be a positive integer');
    if (amount > TOPUP_CAP)
      throw new HttpError(400, `amount exceeds the top-up cap of ${TOPUP_CAP}`, { cap: TOPUP_CAP });
    const reason = reqString(body, 'reason');
    const idem = optString(body, 'idempotency_key', 200);
    return db.tx(async (c) => {
      const w = await c.query<{ user_id: string }>(
        'SELECT user_id::text AS user_id FROM wallets WHERE id = $1 FOR UPDATE',
        [id],
      );
      if (!w.rows[0]) throw new HttpError(404, 'wallet not found');
      if (idem) {
        const prior = await c.query<{ id: string }>(
          'SELECT id::text AS id FROM wallet_topups WHERE idempotency_key = $1',
          [idem],
        );
        if (prior.rows[0]) {
          const bal = await c.query<{ balance: string }>('SELECT balance::text AS balance FROM wallets WHERE id = $1', [
            id,
          ]);
          return {
            wallet_id: Number(id),
            topup_id: Number(prior.rows[0].id),
            balance: Number(bal.rows[0]?.balance),
            idempotent: true,
          };
        }
      }
      const t = await c.query<{ id: string }>(
        'INSERT INTO wallet_topups (wallet_id, amount, reason, idempotency_key) VALUES ($1, $2, $3, $4) RETURNING id::text AS id',
        [id, amount, reason, idem ?? null],
      );
      const bal = await c.query<{ balance: string }>(
        'UPDATE wallets SET balance = balance + $2, updated_at = now() WHERE id = $1 RETURNING balance::text AS balance',
        [id, amount],
      );
      await c.query('UPDATE users SET personal_quota = personal_quota + $2 WHERE id = $1', [w.rows[0].user_id, amount]);
      await audit(c, actor, 'wallet_topup', 'wallet', id, { amount, reason });
      await c.query(
        `INSERT INTO drill_counters (name, value) VALUES ('topups', 1) ON CONFLICT (name) DO UPDATE SET value = drill_counters.value + 1`,
      );
      return {
        wallet_id: Number(id),
        topup_id: Number(t.rows[0]!.id),
        balance: Number(bal.rows[0]?.balance),
        idempotent: false,
      };
    });
  });

  r.on('POST', '/v1/admin/refunds', async (ctx) => {
    const actor = await authAdmin(ctx);
    requireSchema();
    const body = await ctx.body();
    const rawId = body.request_log_id;
    const originalId = typeof rawId === 'number' || typeof rawId === 'string' ? String(rawId) : '';
    if (!/^[1-9][0-9]{0,17}$/.test(originalId))
      throw new HttpError(400, 'request_log_id must be the id of the charged request_logs row');
    const reason = reqString(body, 'reason');
    try {
      return await db.tx(async (c) => {
        const o = await c.query<{
          id: string;
          user_id: string;
          amount: string;
          refund_of: string | null;
          model: string | null;
          provider: string | null;
        }>(
          'SELECT id::text AS id, user_id::text AS user_id, amount::text AS amount, refund_of::text AS refund_of, model, provider FROM request_logs WHERE id = $1 FOR UPDATE',
          [originalId],
        );
        const orig = o.rows[0];
        if (!orig) throw new HttpError(404, 'request log not found');
        if (orig.refund_of !== null || Number(orig.amount) <= 0)
          throw new HttpError(400, 'only a deduction can be refunded');
        const prior = await c.query<{ id: string }>('SELECT id::text AS id FROM request_logs WHERE refund_of = $1', [
          originalId,
        ]);
        if (prior.rows[0])
          return { refund_id: Number(prior.rows[0].id), refund_of: Number(originalId), idempotent: true };
        const amount = Number(orig.amount);
        const ins = await c.query<{ id: string }>(
          `INSERT INTO request_logs (request_id, user_id, amount, refund_of, model, provider, status)
           VALUES ($1, $2, $3, $4, $5, $6, 'refunded') RETURNING id::text AS id`,
          [`refund_${originalId}`, orig.user_id, -amount, originalId, orig.model, orig.provider],
        );
        await c.query('UPDATE wallets SET balance = balance + $2, updated_at = now() WHERE user_id = $1', [
          orig.user_id,
          amount,
        ]);
        await c.query('UPDATE users SET used_tokens = GREATEST(0, used_tokens - $2) WHERE id = $1', [
          orig.user_id,
          amount,
        ]);
        await audit(c, actor, 'refund_issued', 'request_log', originalId, { amount, reason, user_id: orig.user_id });
        await c.query(
          `INSERT INTO drill_counters (name, value) VALUES ('refunds', 1) ON CONFLICT (name) DO UPDATE SET value = drill_counters.value + 1`,
        );
        return {
          refund_id: Number(ins.rows[0]!.id),
          refund_of: Number(originalId),
          amount: -amount,
          idempotent: false,
        };
      });
    } catch (err) {
      // Two concurrent refunds of the same charge: the unique index lets only one through.
      if ((err as { code?: string }).code === '23505') {
        const prior = await db.query<{ id: string }>('SELECT id::text AS id FROM request_logs WHERE refund_of = $1', [
          originalId,
        ]);
        return { refund_id: Number(prior[0]?.id), refund_of: Number(originalId), idempotent: true };
      }
      throw err;
    }
  });

  r.on('POST', '/v1/admin/audit-logs/verify', async (ctx) => {
    await authAdmin(ctx);
    requireSchema();
    return verifyChain({ query: async (sql, params) => ({ rows: await db.query(sql, params) }) });
  });

  r.on('POST', '/v1/admin/users/:id/rotate-key', async (ctx) => {
    const actor = await authAdmin(ctx);
    requireSchema();
    const id = idParam(ctx.params, 'id');
    const body = await ctx.body().catch(() => ({}) as Record<string, unknown>);
    const reason = optString(body, 'reason') ?? null;
    const key = newApiKey();
    await db.tx(async (c) => {
      const u = await c.query<{ email: string }>('SELECT email FROM users WHERE id = $1 FOR UPDATE', [id]);
      if (!u.rows[0]) throw new HttpError(404, 'user not found');
      if (u.rows[0].email === ADMIN_EMAIL) {
        throw new HttpError(
          409,
          'the bootstrap admin key comes from ADMIN_KEY; rotate it there and restart the service',
        );
      }
      await c.query('UPDATE users SET api_key_hash = $2 WHERE id = $1', [id, hashKey(key)]);
      await audit(c, actor, 'api_key_rotated', 'user', id, { reason, new_key_fingerprint: hashKey(key).slice(0, 8) });
      await c.query(
        `INSERT INTO drill_counters (name, value) VALUES ('key_rotations', 1) ON CONFLICT (name) DO UPDATE SET value = drill_counters.value + 1`,
      );
    });
    log('warn', 'api key rotated', { target_user_id: id });
    return { user_id: Number(id), api_key: key, note: 'shown once; only its sha256 is stored' };
  });

  r.on('POST', '/v1/gdpr/erasure/:id', async (ctx) => {
    const actor = await authAdmin(ctx);
    requireSchema();
    const id = idParam(ctx.params, 'id');
    return db.tx(async (c) => {
      const u = await c.query<{ email: string }>('SELECT email FROM users WHERE id = $1 FOR UPDATE', [id]);
      if (!u.rows[0]) throw new HttpError(404, 'user not found');
      if (u.rows[0].email === ADMIN_EMAIL) throw new HttpError(409, 'the bootstrap admin cannot be erased');
      const erasedEmail = `erased-${id}@erased.invalid`;
      if (u.rows[0].email === erasedEmail) return { user_id: Number(id), erased: true, idempotent: true };
      await c.query('UPDATE users SET email = $2, api_key_hash = $3 WHERE id = $1', [
        id,
        erasedEmail,
        hashKey(newApiKey()),
      ]);
      await audit(c, actor, 'gdpr_erasure', 'user', id, { fields: ['email', 'api_key_hash'] });
      await c.query(
        `INSERT INTO drill_counters (name, value) VALUES ('erasures', 1) ON CONFLICT (name) DO UPDATE SET value = drill_counters.value + 1`,
      );
      return { user_id: Number(id), erased: true, idempotent: false };
    });
  });

  r.on('GET', '/v1/admin/migrations', async (ctx) => {
    await authAdmin(ctx);
    const status = await migrationStatus(db);
    return {
      ...status,
      target: targetVersion(cfg.version),
      known: MIGRATIONS.map((m) => ({ version: m.version, name: m.name })),
    };
  });

  r.on('POST', '/v1/admin/migrations/downgrade', async (ctx) => {
    const actor = await authAdmin(ctx);
    const body = await ctx.body();
    const steps = optNumber(body, 'steps') ?? 1;
    if (!Number.isInteger(steps) || steps < 1 || steps > 3) throw new HttpError(400, 'steps must be 1, 2 or 3');
    let reverted: number[];
    try {
      reverted = await migrateDown(db, steps);
    } catch (err) {
      if (err instanceof MigrationRefused) throw new HttpError(409, err.message);
      throw err;
    }
    await db.tx((c) => audit(c, actor, 'migration_downgraded', 'schema', String(reverted[0] ?? ''), { reverted }));
    log('warn', 'schema downgraded', { reverted: reverted.join(',') });
    return { reverted, ...(await migrationStatus(db)) };
  });

  r.on('POST', '/v1/admin/migrations/upgrade', async (ctx) => {
    const actor = await authAdmin(ctx);
    const applied = await migrateUp(db, targetVersion(cfg.version));
    if (applied.length)
      await db.tx((c) =>
        audit(c, actor, 'migration_applied', 'schema', String(applied[applied.length - 1]), { applied }),
      );
    return { applied, ...(await migrationStatus(db)) };
  });

  // ---------- transfers ----------
  r.on('POST', '/v1/transfers', async (ctx) => {
    if (gov.settings.maintenance_mode) throw new HttpError(503, 'maintenance mode: writes are paused');
    const user = await authUser(ctx);
    const body = await ctx.body();
    const recipient = optNumber(body, 'recipient_id');
    const amount = optNumber(body, 'amount');
    if (!recipient || !Number.isInteger(recipient)) throw new HttpError(400, 'recipient_id must be a user id');
    if (!amount || !Number.isInteger(amount) || amount <= 0 || amount > TOPUP_CAP)
      throw new HttpError(400, `amount must be 1..${TOPUP_CAP}`);
    const rows = await db.query<{ id: string }>(
      `INSERT INTO token_transfers (sender_id, recipient_id, amount) SELECT $1, id, $3 FROM users WHERE id = $2 RETURNING id::text AS id`,
      [user.id, recipient, amount],
    );
    if (!rows[0]) throw new HttpError(404, 'recipient not found');
    const job = {
      id: `job_${randomBytes(6).toString('hex')}`,
      kind: 'apply_transfer',
      transfer_id: Number(rows[0].id),
      enqueued_at: new Date().toISOString(),
    };
    await redis.lpush(QUEUE_KEY, JSON.stringify(job)).catch((err: unknown) => {
      log('error', 'enqueue failed', { err: errText(err), transfer_id: rows[0]!.id });
    });
    sendJson(ctx.res, 202, { transfer_id: Number(rows[0].id), status: 'pending', job_id: job.id });
  });

  // ---------- chat completions ----------
  r.on('POST', '/v1/chat/completions', async (ctx) => {
    if (gov.settings.maintenance_mode) throw new HttpError(503, 'maintenance mode: writes are paused');
    if (await rateLimited(ctx.clientIp)) {
      metrics.rateLimited++;
      log('warn', 'rate limit exceeded', {
        client_ip: ctx.clientIp,
        key_id: requestKeyId(ctx.req),
        limit_per_minute: cfg.rateLimitPerMinute,
      });
      throw new HttpError(429, 'rate limit exceeded', { limit_per_minute: cfg.rateLimitPerMinute });
    }
    const user = await authUser(ctx);
    const body = await ctx.body();
    const model = reqString(body, 'model', 100);
    const messages = body.messages;
    if (!Array.isArray(messages) || messages.length === 0)
      throw new HttpError(400, 'messages must be a non-empty list');
    const userMessages = messages.filter(
      (m): m is { role: string; content: string } =>
        !!m &&
        typeof m === 'object' &&
        (m as { role?: unknown }).role === 'user' &&
        typeof (m as { content?: unknown }).content === 'string',
    );
    const prompt = userMessages[userMessages.length - 1]?.content;
    if (!prompt) throw new HttpError(400, 'messages must include a user message with string content');
    const primary = providerForModel(model);
    if (!primary) throw new HttpError(400, `unknown model ${JSON.stringify(model.slice(0, 40))}`);
    ctx.logFields.provider = primary;
    if (cfg.badRelease) {
      log('error', 'unhandled exception in completion handler', {
        err: "TypeError: Cannot read properties of undefined (reading 'usage')",
      });
      throw new HttpError(500, 'internal error');
    }
    if (Number(user.used_tokens) >= Number(user.personal_quota)) {
      throw new HttpError(402, 'quota exhausted: personal quota reached', {
        personal_quota: Number(user.personal_quota),
      });
    }

    let answer: string | undefined;
    let served: Provider | 'cache' | undefined;
    let cached = false;
    try {
      const hit = await cacheLookup(redis, prompt, gov.settings.cache_similarity_threshold);
      metrics.recordCache(!!hit);
      if (hit) {
        answer = hit.entry.response;
        served = 'cache';
        cached = true;
      }
    } catch (err) {
      metrics.recordCache(false);
      log('warn', 'cache lookup failed', { err: errText(err) });
    }

    if (answer === undefined) {
      if (gov.settings.cache_only_mode) throw new HttpError(503, 'cache-only mode: no cached response for this prompt');
      const disabled = gov.settings.disabled_providers;
      const order = [primary, ...PROVIDERS.filter((p) => p !== primary)].filter((p) => !disabled.includes(p));
      if (order.length === 0) throw new HttpError(503, 'every provider is disabled');
      const failing = faults.failingProviders();
      for (const provider of order) {
        try {
          answer = await callProvider(provider, prompt, failing?.providers.includes(provider) ?? false);
          metrics.recordProvider(provider, true);
          served = provider;
          break;
        } catch (err) {
          if (!(err instanceof ProviderError)) throw err;
          metrics.recordProvider(provider, false);
          log('error', 'provider error', { provider, status: err.status, model, request_id: ctx.requestId });
          if (failing?.no_failover) break;
        }
      }
      if (answer === undefined || served === undefined) throw new HttpError(502, 'upstream provider error');
      if (served !== primary)
        log('warn', 'provider failover', { from: primary, to: served, request_id: ctx.requestId });
    }
    ctx.logFields.provider = served;

    const promptTokens = countTokens(prompt);
    const completionTokens = countTokens(answer);
    let amount = cached ? 1 : promptTokens + completionTokens;
    if (faults.active('cost-bug') && !cached) {
      amount *= 2;
      log('error', 'credit_calc error: token multiplier applied twice', {
        user_id: user.id,
        amount,
        request_id: ctx.requestId,
      });
    }
    await db.tx(async (c) => {
      await c.query(
        `INSERT INTO request_logs (request_id, user_id, amount, model, provider, status) VALUES ($1, $2, $3, $4, $5, 'completed')`,
        [ctx.requestId, user.id, amount, model, served],
      );
      await c.query('UPDATE users SET used_tokens = used_tokens + $2 WHERE id = $1', [user.id, amount]);
      await c.query('UPDATE wallets SET balance = balance - $2, updated_at = now() WHERE user_id = $1', [
        user.id,
        amount,
      ]);
    });
    if (!cached) {
      await cacheStore(redis, prompt, answer, model).catch((err: unknown) =>
        log('warn', 'cache write failed', { err: errText(err) }),
      );
    }
    if (faults.active('pii-in-logs')) logPii(user.email, 0, bearer(ctx));
    return {
      id: `chatcmpl-${ctx.requestId}`,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model,
      provider: served,
      cached,
      choices: [{ index: 0, message: { role: 'assistant', content: answer }, finish_reason: 'stop' }],
      usage: {
        prompt_tokens: promptTokens,
        completion_tokens: completionTokens,
        total_tokens: promptTokens + completionTokens,
      },
    };
  });

  // ---------- drill hooks (used by scripts/fault.ts only) ----------
  r.on('GET', '/v1/drill/faults', async (ctx) => {
    await authAdmin(ctx, { sso: false });
    return { faults: faults.list(), known: HOOK_FAULTS };
  });
  r.on('POST', '/v1/drill/faults', async (ctx) => {
    await authAdmin(ctx, { sso: false });
    const body = await ctx.body();
    const fault = reqString(body, 'fault', 60);
    const on = optBool(body, 'on');
    if (on === undefined) throw new HttpError(400, 'on must be true or false');
    return faults.set(fault, on, body);
  });
  r.on('GET', '/v1/drill/counters', async (ctx) => {
    await authAdmin(ctx, { sso: false });
    requireSchema();
    const rows = await db.query<{ name: string; value: string }>(
      'SELECT name, value::text AS value FROM drill_counters',
    );
    const counters: Record<string, number> = Object.fromEntries(COUNTER_NAMES.map((n) => [n, 0]));
    for (const row of rows) counters[row.name] = Number(row.value);
    return { counters };
  });

  registerUpstream(r, faults);
  registerBillingRoutes(r, { db, authAdmin, requireSchema });
  return r;
}
