/**
 * Job-queue activities over RQ's layout in Redis (seed 000: `LLEN rq:queue:default`, "RQ queue
 * state"): the queue key holds job ids, enqueued on the right and taken from the left, so the oldest
 * job is the first element; each job's data is the hash `rq:job:<id>` (RQ's own prefix). Job
 * arguments may hold user data: only a job's id, its function and its enqueue time leave this file.
 */
import type { ActivityDeps } from '../engine/deps';
import { withRedisClient, type RedisClient } from './redis';
import { targetConfig } from '../engine/deps';
import { ApplicationFailure } from '@temporalio/common';
import { ErrorType, describeError, permanent } from '../engine/errors';

export interface QueueConfig {
  key: string;
  component: string;
  depthThreshold: number;
  stuckAfterSeconds: number;
  maxReplicas: number;
  /** `queue.drainedPct`, `queue.redisMemoryPct`; absent in results recorded before they were settings. */
  drainedPct?: number;
  redisMemoryPct?: number;
}

export interface OldestJob {
  id?: string;
  /** The job's function (`app.jobs.apply_transfer`), without its arguments. */
  kind?: string;
  /** Seconds since the job was enqueued, when its hash says when. */
  ageSeconds?: number;
}

export interface QueueSnapshot {
  ok: boolean;
  error?: string;
  depth: number;
  /** Depth again after the sample window, and whether the oldest job was taken meanwhile. */
  depthAfter: number;
  sampleMs: number;
  oldestTaken: boolean;
  oldest?: OldestJob;
  /** INFO clients: all connections, and those blocked in BLPOP and the like (waiting consumers). */
  connectedClients: number;
  blockedClients: number;
  /**
   * The key is a queue: a list in Redis, or registered in RQ's `rq:queues`. An empty queue and a key
   * that is no queue both have LLEN 0. Absent in results recorded before.
   */
  known?: boolean;
}

/** RQ keeps each job's data in a hash under this prefix. */
export const RQ_JOB_PREFIX = 'rq:job:';

/** RQ's registry of queue keys: every queue it has enqueued a job to. */
export const RQ_QUEUES = 'rq:queues';

/** The fields of an RQ job hash this engine reads; nothing else (arguments, results) is fetched. */
export const RQ_JOB_FIELDS = ['enqueued_at', 'created_at', 'description'] as const;

/**
 * Id, function and age of a job from its RQ hash fields (`enqueued_at` / `created_at` are UTC
 * times such as `2026-12-01T07:48:46.447400Z`; `description` is `func(args)`, whose arguments are dropped).
 */
export function describeJob(id: string | null, fields: (string | null)[], now: number): OldestJob | undefined {
  if (id === null) return undefined;
  const [enqueuedAt, createdAt, description] = fields;
  const out: OldestJob = { id: id.slice(0, 80) };
  const fn = description ? /^([\w.]+)\(/.exec(description)?.[1] : undefined;
  if (fn) out.kind = fn.slice(0, 80);
  for (const v of [enqueuedAt, createdAt]) {
    const t = v ? Date.parse(v.endsWith('Z') || /[+-]\d\d:?\d\d$/.test(v) ? v : `${v}Z`) : NaN;
    if (Number.isFinite(t)) {
      out.ageSeconds = Math.max(0, Math.round((now - t) / 1000));
      break;
    }
  }
  return out;
}

/**
 * Whether `key` is a queue RQ knows: RQ deletes an empty queue's list, so an empty queue and a wrong
 * key look alike to LLEN; RQ registers every queue it enqueued to in the set `rq:queues`.
 */
export async function queueRegistered(r: RedisClient, key: string): Promise<boolean> {
  return Number(await r.call('SISMEMBER', RQ_QUEUES, key)) === 1;
}

/** A count INFO must have: a missing field is an error, not 0. */
function infoInt(info: string, key: string): number {
  const m = new RegExp(`^${key}:(\\d+)`, 'm').exec(info);
  if (!m?.[1]) throw new Error(`INFO clients has no ${key}`);
  return Number(m[1]);
}

export function createQueueActivities(deps: ActivityDeps) {
  const withRedis = <T>(target: string, fn: (r: RedisClient) => Promise<T>): Promise<T> => withRedisClient(deps, target, fn);

  /** The target's queue settings (no secrets), or a permanent NotConfigured failure. */
  async function queueConfig(input: { target: string }): Promise<QueueConfig> {
    const q = targetConfig(deps, input.target).queue;
    if (!q) throw permanent(ErrorType.NotConfigured, `target "${input.target}" has no job queue configured`);
    return { ...q };
  }

  /**
   * Depth, oldest job and consumer activity over a short sample window. An unreachable Redis is a
   * finding (`ok: false`), not a failure.
   */
  async function queueStats(input: { target: string; sampleMs?: number }): Promise<QueueSnapshot> {
    const q = await queueConfig(input);
    const sampleMs = Math.min(Math.max(input.sampleMs ?? 2000, 0), 10_000);
    try {
      return await withRedis(input.target, async (r) => {
        // Seed 000: `LLEN rq:queue:default`; the head of the queue is its oldest job.
        const depth = await r.llen(q.key);
        const oldestId = await r.lindex(q.key, 0);
        const fields = oldestId === null ? [] : await r.hmget(`${RQ_JOB_PREFIX}${oldestId}`, RQ_JOB_FIELDS);
        if (sampleMs > 0) await new Promise((res) => setTimeout(res, sampleMs));
        const depthAfter = await r.llen(q.key);
        const oldestAfter = await r.lindex(q.key, 0);
        const clients = await r.info('clients');
        const known = depth > 0 || depthAfter > 0 || (await queueRegistered(r, q.key));
        const oldest = describeJob(oldestId, fields, Date.now());
        return {
          ok: true,
          depth,
          depthAfter,
          sampleMs,
          oldestTaken: oldestId !== null && oldestAfter !== oldestId,
          ...(oldest ? { oldest } : {}),
          connectedClients: infoInt(clients, 'connected_clients'),
          blockedClients: infoInt(clients, 'blocked_clients'),
          known,
        };
      });
    } catch (err) {
      if (err instanceof ApplicationFailure && err.nonRetryable === true) throw err;
      return {
        ok: false,
        error: describeError(err),
        depth: 0,
        depthAfter: 0,
        sampleMs,
        oldestTaken: false,
        connectedClients: 0,
        blockedClients: 0,
      };
    }
  }

  return { queueConfig, queueStats };
}
