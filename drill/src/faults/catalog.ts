/**
 * Every fault the drill can inject, each with its undo. Both directions are idempotent: applying an
 * active fault or undoing an absent one reports so and changes nothing.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { cacheKey } from './replica-formats';
import { FaultContext, waitFor } from './context';
import type { Component } from './containers';
import { certNotAfter, writeCert } from './tls';
import { jwtDrift } from './config-drift';
import { smtpRefuse } from './smtp';
import { billingResetMissed } from './billing';
import { restoreMigrationGrant, revokeMigrationGrant } from './migration-grants';
import { FLOOD, LOCK_HOLDER, LOCK_WAITER, endPressureSessions, floodConnections, holdLock } from './db-pressure';
import {
  AUDIT_BREAK_KINDS,
  breakAuditChain,
  insertDuplicateCharges,
  insertPendingTransfers,
  removeDuplicateCharges,
  repairAuditChain,
  type AuditBreakKind,
} from './data-faults';

export type FaultOptions = Record<string, string | boolean | undefined>;

export interface FaultResult {
  messages: string[];
  data?: Record<string, unknown>;
}

export interface FaultDef {
  name: string;
  summary: string;
  /** Option names this fault accepts, with a value placeholder or '' for a flag. */
  options: Record<string, string>;
  apply(ctx: FaultContext, opts: FaultOptions): Promise<FaultResult>;
  undo(ctx: FaultContext, opts: FaultOptions): Promise<FaultResult>;
}

export class FaultUsageError extends Error {}

const PROVIDERS = ['openai', 'anthropic', 'google'];
export const GOOD_TAG = '1.1.0';
export const BAD_TAG = '1.2.0-bad';
export const AUTH_BUG_TAG = '1.2.1-authbug';
export const POISON: ReadonlyArray<{ prompt: string; wrong: string }> = [
  { prompt: 'What is 2+2?', wrong: '5' },
  { prompt: 'What is 3+3?', wrong: '9' },
  { prompt: 'What is the capital of France?', wrong: 'Berlin' },
];
const FILL_PREFIX = 'alfred:cache:fill:';
const FILL_VALUE_BYTES = 256 * 1024;
const MAX_FILL_KEYS = 2000;
const BACKLOG_JOBS = 1500;
const QUEUE_KEY = 'rq:queue:default';

function str(opts: FaultOptions, key: string, fallback: string): string {
  const v = opts[key];
  return typeof v === 'string' && v !== '' ? v : fallback;
}

function num(opts: FaultOptions, key: string, fallback: number, min: number, max: number): number {
  const v = opts[key];
  if (v === undefined || v === true) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max)
    throw new FaultUsageError(`--${key} must be a number from ${min} to ${max}`);
  return n;
}

/** The api answers HTTP at all (any status): it is up, even if unhealthy. */
export async function apiResponding(ctx: FaultContext): Promise<boolean> {
  try {
    await ctx.api.request('GET', '/health', { key: null, timeoutMs: 3000 });
    return true;
  } catch {
    return false;
  }
}

export async function apiHealth(ctx: FaultContext): Promise<{ status: number; body: Record<string, unknown> } | null> {
  try {
    const res = await ctx.api.request('GET', '/health', { key: null, timeoutMs: 5000 });
    return { status: res.status, body: (res.body ?? {}) as Record<string, unknown> };
  } catch {
    return null;
  }
}

const hookFault = (
  name: string,
  summary: string,
  options: Record<string, string>,
  params: (opts: FaultOptions) => Record<string, unknown> = () => ({}),
): FaultDef => ({
  name,
  summary,
  options,
  async apply(ctx, opts) {
    const out = await ctx.api.hook(name, true, params(opts));
    return { messages: [`${name} switched on in alfred-api: ${JSON.stringify(out)}`], data: out };
  },
  async undo(ctx) {
    const out = await ctx.api.hook(name, false);
    return { messages: [`${name} switched off in alfred-api: ${JSON.stringify(out)}`], data: out };
  },
});

async function imageFor(ctx: FaultContext, component: Component, tag: string): Promise<string> {
  const c = await ctx.containers.find(component);
  const repo = c.image.replace(/:[^:/]+$/, '');
  return `${repo}:${tag}`;
}

/** The release tags of drill/releases.tsv and the newest migration each ships. */
export function releaseHeads(): Map<string, string> {
  const file = path.join(__dirname, '..', '..', 'releases.tsv');
  const heads = new Map<string, string>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const [tag, head] = line.split('\t');
    if (tag && head && !tag.startsWith('#')) heads.set(tag, head);
  }
  return heads;
}

/**
 * The database back at the revision release `tag` ships: what a newer release brought is reverted
 * with that release's own code (`alembic downgrade <head of tag>` in a one-off container of its
 * image, as `docker compose run` would), since the older release does not know it.
 */
async function revertNewerMigrations(ctx: FaultContext, tag: string): Promise<string> {
  const heads = releaseHeads();
  const goal = heads.get(tag);
  if (!goal) return `release ${tag} is not in drill/releases.tsv: schema left as it is`;
  const { rows } = await (await ctx.pg()).query<{ v: string }>('SELECT version_num AS v FROM alembic_version');
  const at = rows[0]?.v;
  if (!at || Number(at) <= Number(goal)) return `schema at ${at ?? 'no revision'}, which ${tag} ships`;
  const newer = [...heads].find(([, head]) => Number(head) >= Number(at));
  if (!newer) return `schema at ${at}, which no release of drill/releases.tsv ships: left as it is`;
  const run = await ctx.containers.runOnce('api', await imageFor(ctx, 'api', newer[0]), [
    'alembic',
    '-c',
    'src/backend/config/alembic.ini',
    'downgrade',
    goal,
  ]);
  if (run.exitCode !== 0) throw new Error(`alembic downgrade ${goal} with ${newer[0]} failed: ${run.output.slice(-400)}`);
  return `reverted the schema from ${at} to ${goal} with release ${newer[0]}'s alembic`;
}

async function waitApi(ctx: FaultContext, wantHealthy: boolean, timeoutMs = 40000): Promise<string> {
  const ok = await waitFor(async () => {
    const h = await apiHealth(ctx);
    return wantHealthy ? h?.status === 200 : h !== null;
  }, timeoutMs);
  const h = await apiHealth(ctx);
  return ok
    ? `alfred-api answering (/health ${h?.status})`
    : `alfred-api not ${wantHealthy ? 'healthy' : 'answering'} after ${timeoutMs / 1000} s`;
}

async function redisPong(ctx: FaultContext): Promise<boolean> {
  return (await ctx.redis().ping()) === 'PONG';
}

async function redisMemory(ctx: FaultContext): Promise<{ used: number; max: number }> {
  const info = await ctx.redis().info('memory');
  const used = Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
  const max = Number(/maxmemory:(\d+)/.exec(info)?.[1] ?? 0);
  return { used, max };
}

async function unlinkPattern(ctx: FaultContext, pattern: string): Promise<number> {
  const redis = ctx.redis();
  let cursor = '0';
  let removed = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
    cursor = next;
    if (keys.length) removed += await redis.unlink(...keys);
  } while (cursor !== '0');
  return removed;
}

export const FAULTS: FaultDef[] = [
  {
    name: 'stop-db',
    summary: 'stop the alfred-db container (INC-01: database unreachable)',
    options: {},
    async apply(ctx) {
      return { messages: [await ctx.containers.stop('db', 10, 'SIGINT')] };
    },
    async undo(ctx) {
      const msg = await ctx.containers.start('db');
      const ready = await waitFor(
        async () => {
          await ctx.close();
          await (await ctx.pg()).query('SELECT 1');
          return true;
        },
        30000,
        500,
      );
      const api = await waitFor(async () => (await apiHealth(ctx))?.body.database === 'healthy', 20000, 500);
      return {
        messages: [
          msg,
          ready ? 'alfred-db accepting connections' : 'alfred-db not accepting connections after 30 s',
          api ? 'alfred-api reports database healthy' : 'alfred-api does not yet report database healthy',
        ],
      };
    },
  },
  {
    name: 'kill-redis',
    summary: 'SIGKILL the alfred-redis container (INC-05: cache failure); its data is lost, as in a crash',
    options: {},
    async apply(ctx) {
      return { messages: [await ctx.containers.kill('redis')] };
    },
    async undo(ctx) {
      const msg = await ctx.containers.start('redis');
      const ok = await waitFor(
        async () => {
          await ctx.close();
          return redisPong(ctx);
        },
        20000,
        500,
      );
      return { messages: [msg, ok ? 'alfred-redis answers PONG' : 'alfred-redis not answering after 20 s'] };
    },
  },
  hookFault(
    'exhaust-pool',
    'the api checks out every pool connection and holds it (INC-01/INC-04: pool exhaustion)',
    {},
  ),
  {
    name: 'fill-redis',
    summary: `write ${FILL_PREFIX}* keys until Redis reaches maxmemory and writes fail with OOM (INC-05)`,
    options: {},
    async apply(ctx) {
      const redis = ctx.redis();
      const start = await redisMemory(ctx);
      if (start.max === 0) throw new Error('alfred-redis has no maxmemory set; refusing to fill it');
      const value = 'x'.repeat(FILL_VALUE_BYTES);
      const base = Date.now().toString(36);
      let written = 0;
      let oom = false;
      while (written < MAX_FILL_KEYS) {
        try {
          const pipe = redis.pipeline();
          for (let i = 0; i < 16; i++) pipe.set(`${FILL_PREFIX}${base}:${written + i}`, value);
          const res = (await pipe.exec()) ?? [];
          const failed = res.find(([err]) => err);
          written += res.filter(([err]) => !err).length;
          if (failed) {
            oom = /OOM/.test(String(failed[0]));
            if (!oom) throw failed[0];
            break;
          }
        } catch (err) {
          if (/OOM/.test(String(err))) {
            oom = true;
            break;
          }
          throw err;
        }
      }
      const end = await redisMemory(ctx);
      return {
        messages: [
          `wrote ${written} keys of ${FILL_VALUE_BYTES / 1024} KiB under ${FILL_PREFIX}*`,
          `used_memory ${(end.used / 1048576).toFixed(1)} MiB of maxmemory ${(end.max / 1048576).toFixed(0)} MiB${oom ? '; writes now fail with OOM' : ''}`,
        ],
        data: { written, oom, used: end.used, max: end.max },
      };
    },
    async undo(ctx) {
      const removed = await unlinkPattern(ctx, `${FILL_PREFIX}*`);
      const mem = await redisMemory(ctx);
      return {
        messages: [`unlinked ${removed} ${FILL_PREFIX}* keys; used_memory ${(mem.used / 1048576).toFixed(1)} MiB`],
      };
    },
  },
  {
    name: 'poison-cache',
    summary:
      'plant wrong answers for known prompts ("What is 2+2?" → "5") and loosen the similarity threshold to 0.5 (INC-15)',
    options: {},
    async apply(ctx) {
      const redis = ctx.redis();
      for (const p of POISON) {
        const entry = {
          prompt: p.prompt,
          response: p.wrong,
          model: 'gpt-4o-mini',
          created_at: new Date().toISOString(),
        };
        await redis.set(cacheKey(p.prompt), JSON.stringify(entry), 'EX', 3600);
      }
      await ctx.api.admin('POST', '/v1/governance/settings', {
        cache_similarity_threshold: 0.5,
        reason: 'cache tuning',
      });
      return {
        messages: [
          `planted ${POISON.length} wrong cache entries (${POISON.map((p) => `"${p.prompt}" → "${p.wrong}"`).join(', ')})`,
          'cache_similarity_threshold set to 0.5',
        ],
      };
    },
    async undo(ctx) {
      const removed = await ctx.redis().del(...POISON.map((p) => cacheKey(p.prompt)));
      await ctx.api.admin('POST', '/v1/governance/settings', {
        cache_similarity_threshold: 0.9,
        reason: 'restore default',
      });
      return { messages: [`removed ${removed} planted cache entries`, 'cache_similarity_threshold restored to 0.9'] };
    },
  },
  {
    name: 'break-audit-chain',
    summary: 'break the audit hash chain mid-way: --kind tamper | missing-hash | race (INC-09)',
    options: { kind: 'tamper|missing-hash|race' },
    async apply(ctx, opts) {
      const kind = str(opts, 'kind', 'tamper') as AuditBreakKind;
      if (!AUDIT_BREAK_KINDS.includes(kind))
        throw new FaultUsageError(`--kind must be one of ${AUDIT_BREAK_KINDS.join(', ')}`);
      const res = await breakAuditChain(await ctx.pg(), kind);
      return { messages: [res.message], data: { kind, id: res.id, changed: res.changed } };
    },
    async undo(ctx, opts) {
      const given = opts.kind;
      const kinds = typeof given === 'string' ? [given as AuditBreakKind] : [...AUDIT_BREAK_KINDS];
      for (const k of kinds) {
        if (!AUDIT_BREAK_KINDS.includes(k))
          throw new FaultUsageError(`--kind must be one of ${AUDIT_BREAK_KINDS.join(', ')}`);
      }
      const pg = await ctx.pg();
      const messages: string[] = [];
      for (const k of kinds) messages.push(`${k}: ${await repairAuditChain(pg, k)}`);
      return { messages };
    },
  },
  {
    name: 'duplicate-charges',
    summary: 'insert pairs of deductions sharing one request_id for three users, both charged (INC-08)',
    options: {},
    async apply(ctx) {
      return { messages: await insertDuplicateCharges(await ctx.pg()) };
    },
    async undo(ctx) {
      return { messages: await removeDuplicateCharges(await ctx.pg()) };
    },
  },
  hookFault(
    'provider-errors',
    'the named providers answer 502 (INC-02/03); --no-failover also stops re-routing',
    { providers: 'openai,anthropic,google', 'no-failover': '' },
    (opts) => {
      const providers = str(opts, 'providers', 'openai')
        .split(',')
        .map((p) => p.trim())
        .filter(Boolean);
      const bad = providers.filter((p) => !PROVIDERS.includes(p));
      if (bad.length) throw new FaultUsageError(`unknown provider ${bad.join(', ')}; known: ${PROVIDERS.join(', ')}`);
      return { providers, no_failover: opts['no-failover'] === true };
    },
  ),
  {
    name: 'rate-limit-storm',
    summary: 'send a bounded burst of real chat requests from one X-Forwarded-For address, so 429s appear (INC-10)',
    options: { ip: '203.0.113.7', requests: '300', key: 'test-key-1' },
    async apply(ctx, opts) {
      const ip = str(opts, 'ip', '203.0.113.7');
      if (!/^[0-9a-fA-F:.]{3,45}$/.test(ip)) throw new FaultUsageError('--ip must be an IP address');
      const total = num(opts, 'requests', 300, 1, 2000);
      const key = str(opts, 'key', 'test-key-1');
      const counts: Record<string, number> = {};
      let next = 0;
      const worker = async () => {
        while (next < total) {
          next++;
          let status = 'error';
          try {
            const res = await ctx.api.request('POST', '/v1/chat/completions', {
              key,
              headers: { 'x-forwarded-for': ip },
              body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'ping' }] },
              timeoutMs: 10000,
            });
            status = String(res.status);
          } catch {
            // Counted as "error".
          }
          counts[status] = (counts[status] ?? 0) + 1;
        }
      };
      await Promise.all(Array.from({ length: 20 }, worker));
      const summary = Object.entries(counts)
        .map(([s, n]) => `${s}×${n}`)
        .join(', ');
      return { messages: [`sent ${total} requests as ${ip}: ${summary}`], data: { ip, counts } };
    },
    async undo(ctx, opts) {
      const ip = str(opts, 'ip', '203.0.113.7');
      const removed = await unlinkPattern(ctx, `alfred:ratelimit:${ip}:*`);
      const unblock = await ctx.api.request('POST', '/v1/governance/unblock', { body: { ip } });
      const changed = (unblock.body as { changed?: boolean } | null)?.changed === true;
      return {
        messages: [
          `cleared ${removed} rate-limit counters for ${ip}`,
          changed ? `unblocked ${ip}` : `${ip} was not blocked`,
        ],
      };
    },
  },
  hookFault(
    'slow-queries',
    'the api runs long pg_sleep queries on their own connections (INC-04: slow queries in pg_stat_activity)',
    { count: '3', seconds: '300' },
    (opts) => ({ count: num(opts, 'count', 3, 1, 20), seconds: num(opts, 'seconds', 300, 1, 3600) }),
  ),
  hookFault(
    'memory-growth',
    'the api allocates and keeps memory at a steady rate (INC-11: memory leak)',
    { 'mb-per-second': '5', 'max-mb': '768' },
    (opts) => ({ mbPerSecond: num(opts, 'mb-per-second', 5, 1, 100), maxMb: num(opts, 'max-mb', 768, 1, 4096) }),
  ),
  {
    name: 'bad-release',
    summary: `recreate alfred-api on image tag ${BAD_TAG} (INC-12); undo returns it to --tag (default ${GOOD_TAG}) and reverts its migration`,
    options: { tag: GOOD_TAG },
    async apply(ctx) {
      const c = await ctx.containers.find('api');
      if (c.image.endsWith(`:${BAD_TAG}`) && c.running) return { messages: [`alfred-api already on ${c.image}`] };
      const msg = await ctx.containers.recreate('api', { image: await imageFor(ctx, 'api', BAD_TAG) });
      return { messages: [msg, await waitApi(ctx, false)] };
    },
    async undo(ctx, opts) {
      const tag = str(opts, 'tag', GOOD_TAG);
      const messages: string[] = [];
      const c = await ctx.containers.find('api');
      if (c.image.endsWith(`:${tag}`) && c.running) messages.push(`alfred-api already on ${c.image}`);
      else {
        messages.push(await ctx.containers.recreate('api', { image: await imageFor(ctx, 'api', tag) }));
        messages.push(await waitApi(ctx, true));
      }
      messages.push(await revertNewerMigrations(ctx, tag));
      return { messages };
    },
  },
  {
    name: 'auth-bug-release',
    summary: `recreate alfred-api on image tag ${AUTH_BUG_TAG}, a release that refuses every user key (INC-06 bad deploy); undo as bad-release`,
    options: { tag: GOOD_TAG },
    async apply(ctx) {
      const c = await ctx.containers.find('api');
      if (c.image.endsWith(`:${AUTH_BUG_TAG}`) && c.running) return { messages: [`alfred-api already on ${c.image}`] };
      const msg = await ctx.containers.recreate('api', { image: await imageFor(ctx, 'api', AUTH_BUG_TAG) });
      return { messages: [msg, await waitApi(ctx, true)] };
    },
    async undo(ctx, opts) {
      // Same way back as any broken release: the good tag, and its migration reverted.
      return (findFault('bad-release') as FaultDef).undo(ctx, opts);
    },
  },
  {
    name: 'expiring-cert',
    summary: 'replace the proxy certificate with one valid for 1 day and restart alfred-proxy (INC-13)',
    options: {},
    async apply(ctx) {
      const notAfter = await certNotAfter(ctx.env.tlsDir);
      if (notAfter && notAfter.getTime() - Date.now() < 2 * 86400_000) {
        return { messages: [`certificate already expires soon (${notAfter.toISOString()})`] };
      }
      await writeCert(ctx.env.tlsDir, 1);
      const msg = await ctx.containers.restart('proxy');
      return { messages: [`wrote a 1-day certificate to ${ctx.env.tlsDir}`, msg] };
    },
    async undo(ctx) {
      const notAfter = await certNotAfter(ctx.env.tlsDir);
      if (notAfter && notAfter.getTime() - Date.now() > 7 * 86400_000) {
        const c = await ctx.containers.find('proxy');
        const start = c.running ? 'alfred-proxy running' : await ctx.containers.start('proxy');
        return { messages: [`certificate valid until ${notAfter.toISOString()}; left as is`, start] };
      }
      await writeCert(ctx.env.tlsDir, 30);
      const msg = await ctx.containers.restart('proxy');
      return { messages: [`wrote a 30-day certificate to ${ctx.env.tlsDir}`, msg] };
    },
  },
  {
    name: 'queue-backlog',
    summary: `pause the worker and queue ${BACKLOG_JOBS} transfer jobs on ${QUEUE_KEY} (queue backlog playbook)`,
    options: { jobs: String(BACKLOG_JOBS) },
    async apply(ctx, opts) {
      const jobs = num(opts, 'jobs', BACKLOG_JOBS, 1, 20000);
      await ctx.api.hook('worker-paused', true, { scope: 'running' });
      const depth = await ctx.redis().llen(QUEUE_KEY);
      if (depth >= jobs) return { messages: ['worker paused', `queue already holds ${depth} jobs`] };
      // Real RQ jobs (ids on the list, data in rq:job:<id>), enqueued by the replica itself.
      const ids = await insertPendingTransfers(await ctx.pg(), jobs - depth);
      await ctx.api.admin('POST', '/v1/drill/jobs', { transfer_ids: ids });
      return {
        messages: [
          'worker paused',
          `queued ${ids.length} apply_transfer jobs; depth ${await ctx.redis().llen(QUEUE_KEY)}`,
        ],
      };
    },
    async undo(ctx) {
      await ctx.api.hook('worker-paused', false);
      return { messages: [`worker resumed; queue depth ${await ctx.redis().llen(QUEUE_KEY)} (it drains by itself)`] };
    },
  },
  {
    name: 'lock-contention',
    summary: 'an app session holds a row lock in an open transaction and --waiters sessions queue behind it (seed 003: locks)',
    options: { waiters: '3', seconds: '600' },
    async apply(ctx, opts) {
      return { messages: await holdLock(ctx, num(opts, 'waiters', 3, 1, 20), num(opts, 'seconds', 600, 10, 3600)) };
    },
    async undo(ctx) {
      return { messages: await endPressureSessions(ctx, [LOCK_HOLDER, LOCK_WAITER]) };
    },
  },
  {
    name: 'connection-flood',
    summary: 'open --connections idle sessions of the app role (seed 003: connections near max_connections)',
    options: { connections: '45', seconds: '600' },
    async apply(ctx, opts) {
      return { messages: await floodConnections(ctx, num(opts, 'connections', 45, 1, 200), num(opts, 'seconds', 600, 10, 3600)) };
    },
    async undo(ctx) {
      return { messages: await endPressureSessions(ctx, [FLOOD]) };
    },
  },
  {
    name: 'migration-grant',
    summary: 'revert the newest migration, revoke UPDATE on alembic_version from the app role, run the migration: it fails with 42501 (seed 004)',
    options: {},
    async apply(ctx) {
      return { messages: await revokeMigrationGrant(ctx) };
    },
    async undo(ctx) {
      return { messages: await restoreMigrationGrant(ctx) };
    },
  },
  hookFault('pii-in-logs', 'the api writes user emails and card numbers into its log lines (INC-14)', {}),
  {
    name: 'sso-down',
    summary:
      'the SSO provider is unreachable and the api is recreated with SSO_REQUIRED=true: every key gets 401 (INC-06)',
    options: {},
    async apply(ctx) {
      const messages = [`sso-down switched on: ${JSON.stringify(await ctx.api.hook('sso-down', true))}`];
      const c = await ctx.containers.find('api');
      if ((c.info.Config.Env ?? []).includes('SSO_REQUIRED=true'))
        messages.push('alfred-api already runs with SSO_REQUIRED=true');
      else {
        messages.push(await ctx.containers.recreate('api', { env: { SSO_REQUIRED: 'true' } }));
        messages.push(await waitApi(ctx, true));
      }
      const refused = await waitFor(
        async () => (await ctx.api.request('GET', '/v1/users/me', { timeoutMs: 3000 })).status === 401,
        10000,
      );
      messages.push(refused ? '/v1/users/me now answers 401 for every key' : '/v1/users/me does not answer 401 yet');
      return { messages };
    },
    async undo(ctx) {
      const messages: string[] = [];
      const c = await ctx.containers.find('api');
      if ((c.info.Config.Env ?? []).includes('SSO_REQUIRED=true')) {
        messages.push(await ctx.containers.recreate('api', { env: { SSO_REQUIRED: 'false' } }));
        messages.push(await waitApi(ctx, true));
      } else messages.push('alfred-api already runs with SSO_REQUIRED=false');
      messages.push(`sso-down switched off: ${JSON.stringify(await ctx.api.hook('sso-down', false))}`);
      return { messages };
    },
  },
  hookFault('cost-bug', 'deductions are doubled and a credit_calc error is logged per request (INC-07)', {}),
  jwtDrift,
  smtpRefuse,
  billingResetMissed,
];

export function findFault(name: string): FaultDef | undefined {
  return FAULTS.find((f) => f.name === name);
}

/** Applies or undoes one fault with a fresh context, closing its connections afterwards. */
export async function runFault(
  name: string,
  undo: boolean,
  opts: FaultOptions = {},
  ctx = new FaultContext(),
): Promise<FaultResult> {
  const def = findFault(name);
  if (!def) throw new FaultUsageError(`unknown fault "${name}"; run with --help for the list`);
  try {
    return undo ? await def.undo(ctx, opts) : await def.apply(ctx, opts);
  } finally {
    await ctx.close();
  }
}
