/**
 * Job-queue activities: how deep a target's Redis job list is, how old its oldest job is, whether
 * consumers are taking jobs at all, and how many clients Redis serves. Producers push on the left
 * and consumers pop on the right (LPUSH / BRPOP), so the oldest job is the last element.
 * Job payloads may hold user data: only a job's id, kind and enqueue time leave this file.
 */
import type Redis from 'ioredis';
import type { ActivityDeps } from './deps';
import { withRedisClient } from './redis';
import { targetConfig } from './deps';
import { ErrorType, describeError, permanent } from './errors';

export interface QueueConfig {
  key: string;
  component: string;
  depthThreshold: number;
  stuckAfterSeconds: number;
  maxReplicas: number;
}

export interface OldestJob {
  id?: string;
  kind?: string;
  /** Seconds since the job was enqueued, when the job carries its enqueue time. */
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
  /** INFO clients: all connections, and those blocked in BRPOP and the like (waiting consumers). */
  connectedClients: number;
  blockedClients: number;
}

const TIME_FIELDS = ['enqueued_at', 'created_at', 'enqueuedAt', 'createdAt'] as const;

/** Id, kind and age of a job payload, without any other field. */
export function describeJob(raw: string | null, now: number): OldestJob | undefined {
  if (raw === null) return undefined;
  let job: Record<string, unknown>;
  try {
    job = JSON.parse(raw) as Record<string, unknown>;
  } catch {
    return {};
  }
  if (!job || typeof job !== 'object') return {};
  const out: OldestJob = {};
  if (typeof job.id === 'string') out.id = job.id.slice(0, 80);
  if (typeof job.kind === 'string') out.kind = job.kind.slice(0, 80);
  for (const f of TIME_FIELDS) {
    const v = job[f];
    const t = typeof v === 'number' ? (v < 1e12 ? v * 1000 : v) : typeof v === 'string' ? Date.parse(v) : NaN;
    if (Number.isFinite(t)) {
      out.ageSeconds = Math.max(0, Math.round((now - t) / 1000));
      break;
    }
  }
  return out;
}

function infoInt(info: string, key: string): number {
  const m = new RegExp(`^${key}:(\\d+)`, 'm').exec(info);
  return m?.[1] ? Number(m[1]) : 0;
}

export function createQueueActivities(deps: ActivityDeps) {
  const withRedis = <T>(target: string, fn: (r: Redis) => Promise<T>): Promise<T> => withRedisClient(deps, target, fn);

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
        const [depth, oldestRaw] = await Promise.all([r.llen(q.key), r.lindex(q.key, -1)]);
        if (sampleMs > 0) await new Promise((res) => setTimeout(res, sampleMs));
        const [depthAfter, oldestAfter, clients] = await Promise.all([
          r.llen(q.key),
          r.lindex(q.key, -1),
          r.info('clients'),
        ]);
        const oldest = describeJob(oldestRaw, Date.now());
        return {
          ok: true,
          depth,
          depthAfter,
          sampleMs,
          oldestTaken: oldestRaw !== null && oldestAfter !== oldestRaw,
          ...(oldest ? { oldest } : {}),
          connectedClients: infoInt(clients, 'connected_clients'),
          blockedClients: infoInt(clients, 'blocked_clients'),
        };
      });
    } catch (err) {
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
