/**
 * Redis activities. Each call uses its own connection that fails fast (no offline queue, no
 * reconnect loop), so a dead Redis is a quick finding rather than a hung activity.
 */
import Redis from 'ioredis';
import { heartbeat } from '@temporalio/activity';
import { readSecret } from '../config';
import type { ActivityDeps } from './deps';
import { targetConfig } from './deps';
import { ErrorType, describeError, permanent } from './errors';

export interface RedisMemory {
  usedBytes: number;
  peakBytes: number;
  maxmemoryBytes: number;
  usedPct: number;
  policy: string;
}

function infoField(info: string, key: string): string | undefined {
  const m = new RegExp(`^${key}:(.*)$`, 'm').exec(info);
  return m?.[1]?.trim();
}

/** The prefix before the first glob character, or null if the pattern has none. */
function literalPrefix(pattern: string): string {
  const i = pattern.search(/[*?[\\]/);
  return i < 0 ? pattern : pattern.slice(0, i);
}

/** One short-lived connection to a target's Redis that fails fast, closed afterwards. */
export async function withRedisClient<T>(deps: ActivityDeps, target: string, fn: (r: Redis) => Promise<T>): Promise<T> {
  const c = targetConfig(deps, target).redis;
  if (!c) throw permanent(ErrorType.NotConfigured, `target "${target}" has no redis configured`);
  const r = new Redis({
    host: c.host,
    port: c.port,
    password: readSecret(c.password),
    lazyConnect: true,
    connectTimeout: 2000,
    commandTimeout: 5000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  r.on('error', () => undefined);
  await r.connect();
  try {
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

export function createRedisActivities(deps: ActivityDeps) {
  const withRedis = <T>(target: string, fn: (r: Redis) => Promise<T>): Promise<T> => withRedisClient(deps, target, fn);

  async function redisPing(input: { target: string }): Promise<{ ok: boolean; reply?: string; latencyMs: number; error?: string }> {
    const t0 = Date.now();
    try {
      const reply = await withRedis(input.target, (r) => r.ping());
      return { ok: reply === 'PONG', reply, latencyMs: Date.now() - t0 };
    } catch (err) {
      return { ok: false, latencyMs: Date.now() - t0, error: describeError(err) };
    }
  }

  async function redisMemory(input: { target: string }): Promise<RedisMemory> {
    return withRedis(input.target, async (r) => {
      const info = await r.info('memory');
      const max = (await r.config('GET', 'maxmemory')) as string[];
      const used = Number(infoField(info, 'used_memory') ?? 0);
      const maxmemory = Number(max[1] ?? 0);
      return {
        usedBytes: used,
        peakBytes: Number(infoField(info, 'used_memory_peak') ?? 0),
        maxmemoryBytes: maxmemory,
        usedPct: maxmemory > 0 ? Math.round((used / maxmemory) * 1000) / 10 : 0,
        policy: infoField(info, 'maxmemory_policy') ?? '',
      };
    });
  }

  /** Can Redis take a write? (At maxmemory with noeviction it answers OOM.) */
  async function redisWriteProbe(input: { target: string }): Promise<{ ok: boolean; error?: string }> {
    try {
      const probeKey = targetConfig(deps, input.target).redis?.probeKey;
      // withRedis refuses a target without a redis section before the callback runs.
      await withRedis(input.target, (r) => r.set(probeKey as string, String(Date.now()), 'EX', 60));
      return { ok: true };
    } catch (err) {
      return { ok: false, error: describeError(err) };
    }
  }

  async function redisSlowlog(input: { target: string; count?: number }): Promise<{ entries: { id: number; micros: number; command: string }[] }> {
    return withRedis(input.target, async (r) => {
      const raw = (await r.slowlog('GET', input.count ?? 10)) as unknown[];
      const entries = raw.map((e) => {
        const row = e as [number, number, number, string[]];
        // Only the command name and key count: argument values may hold user data.
        const args = row[3] ?? [];
        return { id: row[0], micros: row[2], command: `${args[0] ?? '?'} (${Math.max(0, args.length - 1)} args)` };
      });
      return { entries };
    });
  }

  /** Raises maxmemory to at least `bytes`; never lowers it (idempotent). */
  async function raiseMaxmemory(input: { target: string; bytes: number }): Promise<{ performed: boolean; detail: string }> {
    if (!(input.bytes > 0)) throw permanent(ErrorType.BadInput, 'maxmemory must be positive');
    return withRedis(input.target, async (r) => {
      const cur = Number(((await r.config('GET', 'maxmemory')) as string[])[1] ?? 0);
      if (cur === 0 || cur >= input.bytes) return { performed: false, detail: `maxmemory already ${cur} bytes` };
      await r.config('SET', 'maxmemory', String(input.bytes));
      return { performed: true, detail: `maxmemory raised from ${cur} to ${input.bytes} bytes` };
    });
  }

  async function countKeys(input: { target: string; pattern: string; max?: number }): Promise<{ count: number; capped: boolean }> {
    const max = input.max ?? 100_000;
    return withRedis(input.target, async (r) => {
      let cursor = '0';
      let count = 0;
      do {
        const [next, keys] = await r.scan(cursor, 'MATCH', input.pattern, 'COUNT', 1000);
        cursor = next;
        count += keys.length;
      } while (cursor !== '0' && count < max);
      return { count, capped: count >= max };
    });
  }

  /**
   * Deletes keys matching a pattern with SCAN + UNLINK in bounded batches. The pattern must stay inside
   * the target's configured cache pattern: a pattern that could match everything is refused.
   */
  async function unlinkByPattern(input: { target: string; pattern: string; maxKeys?: number }): Promise<{ deleted: number; done: boolean }> {
    const t = targetConfig(deps, input.target);
    const allowed = literalPrefix(t.cache.keyPattern);
    const prefix = literalPrefix(input.pattern);
    if (prefix.length === 0 || !prefix.startsWith(allowed) || allowed.length === 0) {
      throw permanent(
        ErrorType.Refused,
        `pattern "${input.pattern}" is outside the configured cache pattern "${t.cache.keyPattern}"; refusing to delete`,
      );
    }
    const batch = t.cache.batchSize;
    const maxKeys = input.maxKeys ?? 1_000_000;
    return withRedis(input.target, async (r) => {
      let cursor = '0';
      let deleted = 0;
      do {
        const [next, keys] = await r.scan(cursor, 'MATCH', input.pattern, 'COUNT', batch);
        cursor = next;
        for (let i = 0; i < keys.length && deleted < maxKeys; i += batch) {
          const chunk = keys.slice(i, Math.min(i + batch, i + maxKeys - deleted));
          if (chunk.length > 0) deleted += await r.unlink(...chunk);
        }
        heartbeat({ deleted });
      } while (cursor !== '0' && deleted < maxKeys);
      return { deleted, done: cursor === '0' };
    });
  }

  return { redisPing, redisMemory, redisWriteProbe, redisSlowlog, raiseMaxmemory, countKeys, unlinkByPattern };
}
