/**
 * Redis activities. By default (`redis.via: exec`) every command runs in redis-cli inside the redis
 * component's container, as the seeds do (`docker compose exec redis redis-cli ping`); with
 * `via: tcp`, on a connection to host:port. Either way each call has its own session that fails fast
 * (no offline queue, no reconnect loop, a bound on every round trip), so a dead Redis is a quick
 * finding rather than a hung activity.
 */
import Redis from 'ioredis';
import { heartbeat } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { readSecret, type TargetConfig } from '../../config';
import type { ActivityDeps } from '../engine/deps';
import { dockerFor, targetConfig } from '../engine/deps';
import { findContainer, isParked } from '../containers/containers';
import { ErrorType, describeError, permanent } from '../engine/errors';
import { RedisClient, RedisUnreachableError, ioredisTransport } from './redis-client';
import { RedisCliSession, RedisCliUnusableError, dockerExecSpawn, type CliSpawn } from './redis-cli';

export { RedisClient } from './redis-client';

/** Seed 002, INC-04: `redis-cli --latency -i 1` (one second of PINGs, then `min max avg count` in ms). */
export const LATENCY_ARGS = ['--latency', '-i', '1'];

/** Redis round trips sampled over a short bounded run, in ms; `available: false` with the reason when they could not be. */
export interface RedisLatency {
  available: boolean;
  minMs?: number;
  maxMs?: number;
  avgMs?: number;
  samples?: number;
  /** How it was measured (the command, or PINGs over the configured connection). */
  how: string;
  error?: string;
}

/** Pure: redis-cli's latency line (`min max avg count`, as it prints it without a terminal). */
export function parseLatencyLine(output: string): Pick<RedisLatency, 'minMs' | 'maxMs' | 'avgMs' | 'samples'> | undefined {
  const lines = output.trim().split(/\r?\n/);
  const m = /^(\d+) (\d+) (\d+(?:\.\d+)?) (\d+)$/.exec((lines[lines.length - 1] ?? '').trim());
  if (!m || Number(m[4]) === 0) return undefined;
  return { minMs: Number(m[1]), maxMs: Number(m[2]), avgMs: Number(m[3]), samples: Number(m[4]) };
}

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

/** A number INFO must have: a missing or garbled field is an error, never 0. */
function infoNumber(info: string, key: string): number {
  const v = Number(infoField(info, key));
  if (infoField(info, key) === undefined || !Number.isFinite(v)) throw new Error(`INFO has no numeric ${key}`);
  return v;
}

/** The prefix before the first glob character, or null if the pattern has none. */
function literalPrefix(pattern: string): string {
  const i = pattern.search(/[*?[\\]/);
  return i < 0 ? pattern : pattern.slice(0, i);
}

/** Configuration problems are not findings about Redis: they go up as permanent failures. */
function isPermanent(err: unknown): boolean {
  return err instanceof ApplicationFailure && err.nonRetryable === true;
}

type RedisSettings = NonNullable<TargetConfig['redis']>;

/**
 * redis-cli in the component's running container. A component without a container, or a client
 * that cannot run there, is a permanent failure naming the setting to change; a stopped container
 * is Redis being down.
 */
async function withRedisCli<T>(deps: ActivityDeps, target: string, c: RedisSettings, fn: (r: RedisClient) => Promise<T>): Promise<T> {
  const label = `the ${c.component} container of ${target}`;
  let spawn: CliSpawn;
  if (deps.redisCliSpawn) spawn = deps.redisCliSpawn;
  else {
    let own;
    try {
      own = await findContainer(deps, target, c.component);
    } catch (err) {
      if (err instanceof ApplicationFailure && err.type === ErrorType.UnknownContainer) {
        throw permanent(
          ErrorType.UnknownContainer,
          `${err.message}; redis-cli runs in the container of targets.${target}.redis.component ("${c.component}")`,
        );
      }
      throw err;
    }
    if (own.State !== 'running' || isParked(own)) throw new RedisUnreachableError(`${label} is ${own.State}: Redis is not running there`);
    spawn = dockerExecSpawn(dockerFor(deps, target).getContainer(own.Id));
  }
  const unusable = (err: unknown): unknown =>
    err instanceof RedisCliUnusableError
      ? permanent(
          ErrorType.NotConfigured,
          `${err.message}; set targets.${target}.redis.cli to the client's argv in that container, ` +
            `targets.${target}.redis.component to the component that runs Redis, or targets.${target}.redis.via: tcp`,
        )
      : err;
  let session: RedisCliSession;
  try {
    session = await RedisCliSession.open(spawn, { cli: c.cli, password: readSecret(c.password), label });
  } catch (err) {
    throw unusable(err);
  }
  try {
    return await fn(new RedisClient(session));
  } catch (err) {
    throw unusable(err);
  } finally {
    await session.close();
  }
}

/** One short-lived session with a target's Redis (redis-cli in its container, or a connection), closed afterwards. */
export async function withRedisClient<T>(deps: ActivityDeps, target: string, fn: (r: RedisClient) => Promise<T>): Promise<T> {
  const c = targetConfig(deps, target).redis;
  if (!c) throw permanent(ErrorType.NotConfigured, `target "${target}" has no redis configured`);
  if (c.via === 'exec') return withRedisCli(deps, target, c, fn);
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
    return await fn(new RedisClient(ioredisTransport(r)));
  } finally {
    r.disconnect();
  }
}

export function createRedisActivities(deps: ActivityDeps) {
  const withRedis = <T>(target: string, fn: (r: RedisClient) => Promise<T>): Promise<T> => withRedisClient(deps, target, fn);

  /** PING, and its round trip once the session is up (seed 002: `redis-cli ping`). */
  async function redisPing(input: { target: string }): Promise<{ ok: boolean; reply?: string; latencyMs: number; error?: string }> {
    const t0 = Date.now();
    try {
      const { reply, latencyMs } = await withRedis(input.target, async (r) => {
        const t1 = Date.now();
        const pong = await r.ping();
        return { reply: pong, latencyMs: Date.now() - t1 };
      });
      return { ok: reply === 'PONG', reply, latencyMs };
    } catch (err) {
      if (isPermanent(err)) throw err;
      return { ok: false, latencyMs: Date.now() - t0, error: describeError(err) };
    }
  }

  /** Seed 002: `redis-cli info memory`, `redis-cli config get maxmemory`. */
  async function redisMemory(input: { target: string }): Promise<RedisMemory> {
    return withRedis(input.target, async (r) => {
      const info = await r.info('memory');
      const max = await r.configGet('maxmemory');
      if (max === undefined || !Number.isFinite(Number(max))) throw new Error('CONFIG GET maxmemory gave no number');
      const used = infoNumber(info, 'used_memory');
      const maxmemory = Number(max);
      return {
        usedBytes: used,
        peakBytes: infoNumber(info, 'used_memory_peak'),
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
      await withRedis(input.target, (r) => r.set(probeKey as string, String(Date.now()), { exSeconds: 60 }));
      return { ok: true };
    } catch (err) {
      if (isPermanent(err)) throw err;
      return { ok: false, error: describeError(err) };
    }
  }

  /** Seed 002: `redis-cli slowlog get 10`. */
  async function redisSlowlog(input: { target: string; count?: number }): Promise<{ entries: { id: number; micros: number; command: string }[] }> {
    return withRedis(input.target, async (r) => ({ entries: await r.slowlogGet(input.count ?? 10) }));
  }

  /** Raises maxmemory to at least `bytes`; never lowers it (idempotent). */
  async function raiseMaxmemory(input: { target: string; bytes: number }): Promise<{ performed: boolean; detail: string }> {
    if (!(input.bytes > 0)) throw permanent(ErrorType.BadInput, 'maxmemory must be positive');
    return withRedis(input.target, async (r) => {
      const cur = Number(await r.configGet('maxmemory'));
      if (!Number.isFinite(cur)) throw new Error('CONFIG GET maxmemory gave no number');
      if (cur === 0 || cur >= input.bytes) return { performed: false, detail: `maxmemory already ${cur} bytes` };
      await r.configSet('maxmemory', String(input.bytes));
      return { performed: true, detail: `maxmemory raised from ${cur} to ${input.bytes} bytes` };
    });
  }

  /** Seed 002: `redis-cli --scan --pattern "alfred:cache:*"`, counted (SCAN, 1,000 a step). */
  async function countKeys(input: { target: string; pattern: string; max?: number }): Promise<{ count: number; capped: boolean }> {
    const max = input.max ?? 100_000;
    return withRedis(input.target, async (r) => {
      let cursor = '0';
      let count = 0;
      do {
        const step = await r.scan(cursor, { match: input.pattern, count: 1000 });
        cursor = step.cursor;
        count += step.keys.length;
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
        const step = await r.scan(cursor, { match: input.pattern, count: batch });
        cursor = step.cursor;
        const keys = step.keys;
        for (let i = 0; i < keys.length && deleted < maxKeys; i += batch) {
          const chunk = keys.slice(i, Math.min(i + batch, i + maxKeys - deleted));
          if (chunk.length > 0) deleted += await r.unlink(chunk);
        }
        heartbeat({ deleted });
      } while (cursor !== '0' && deleted < maxKeys);
      return { deleted, done: cursor === '0' };
    });
  }

  /**
   * Redis round-trip latency (seed 002, INC-04: `docker compose exec redis redis-cli --latency -i 1
   * -c 10`). With `redis.via: exec` the seed's command runs in the redis container (the configured
   * `redis.cli` plus `--latency -i 1`; the seed's `-c` is redis-cli's cluster mode, not a count, and is
   * left out): one second of PINGs, bounded. With `via: tcp`, `pings` PINGs timed over the
   * connection. Never reads a failure as fast: it is `available: false` with the reason.
   */
  async function redisLatency(input: { target: string; pings?: number }): Promise<RedisLatency> {
    const c = targetConfig(deps, input.target).redis;
    if (!c) throw permanent(ErrorType.NotConfigured, `target "${input.target}" has no redis configured`);
    if (c.via === 'tcp') {
      const n = Math.max(1, Math.min(input.pings ?? 10, 100));
      const how = `${n} PINGs over ${c.host ?? '?'}:${c.port ?? '?'}`;
      try {
        const ms = await withRedis(input.target, async (r) => {
          const out: number[] = [];
          for (let i = 0; i < n; i++) {
            const t0 = process.hrtime.bigint();
            await r.ping();
            out.push(Number(process.hrtime.bigint() - t0) / 1e6);
          }
          return out;
        });
        const round = (x: number) => Math.round(x * 100) / 100;
        return { available: true, how, minMs: round(Math.min(...ms)), maxMs: round(Math.max(...ms)), avgMs: round(ms.reduce((a, b) => a + b, 0) / ms.length), samples: ms.length };
      } catch (err) {
        if (isPermanent(err)) throw err;
        return { available: false, how, error: describeError(err) };
      }
    }
    const argv = [...c.cli, ...LATENCY_ARGS];
    const how = `${argv.join(' ')} in the ${c.component} container`;
    let spawn: CliSpawn;
    if (deps.redisCliSpawn) spawn = deps.redisCliSpawn;
    else {
      const own = await findContainer(deps, input.target, c.component);
      if (own.State !== 'running' || isParked(own)) return { available: false, how, error: `the ${c.component} container is ${own.State}` };
      spawn = dockerExecSpawn(dockerFor(deps, input.target).getContainer(own.Id));
    }
    const password = readSecret(c.password);
    try {
      const proc = await spawn(argv, password ? { REDISCLI_AUTH: password } : {});
      let out = '';
      proc.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
      proc.stderr.on('data', (d: Buffer) => (out += d.toString('utf8')));
      // -i 1 ends it after a second; a client that hangs is cut off.
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), 10_000)));
      const code = await Promise.race([proc.exitCode(), timedOut]);
      clearTimeout(timer);
      if (code === 'timeout') {
        proc.kill();
        return { available: false, how, error: 'no result within 10 s' };
      }
      const parsed = code === 0 ? parseLatencyLine(out) : undefined;
      if (!parsed) return { available: false, how, error: `exit ${code ?? '?'}: ${out.trim().slice(0, 200) || 'no output'}` };
      return { available: true, how, ...parsed };
    } catch (err) {
      return { available: false, how, error: describeError(err) };
    }
  }

  return { redisPing, redisLatency, redisMemory, redisWriteProbe, redisSlowlog, raiseMaxmemory, countKeys, unlinkByPattern };
}
