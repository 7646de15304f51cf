/** Role `worker`: applies token transfers queued on the Redis list `rq:queue:default`. */
import { createServer } from 'node:http';
import type { DrillConfig } from './config';
import { createDb, sleep } from './db';
import { createRedis, redisPing, redisReady } from './redis';
import { errText, log } from './log';
import { sendJson } from './http';
import { WORKER_PAUSED_KEY } from './drill-hooks';
import { bumpCounter } from './governance';

export const QUEUE_KEY = 'rq:queue:default';

interface Job {
  id?: string;
  kind?: string;
  transfer_id?: number | string;
}

export function startWorker(cfg: DrillConfig): void {
  const db = createDb(cfg.databaseUrl, 3, 'alfred-worker');
  const redis = createRedis(cfg.redisUrl, 'alfred-worker');
  // BRPOP holds its connection, so it gets one of its own.
  const blocking = createRedis(cfg.redisUrl, 'alfred-worker-brpop');
  const stats = { processed: 0, failed: 0, paused: false };
  // A pause may hold only the workers running when it was set (a hung consumer); ones started later work.
  const startedAt = Date.now();
  let stopping = false;

  const server = createServer((req, res) => {
    void (async () => {
      const path = new URL(req.url ?? '/', 'http://localhost').pathname;
      if (path !== '/health') return sendJson(res, 404, { error: 'not found' });
      const [dbOk, redisOk] = await Promise.all([db.ping(2000), redisPing(redis, 1000)]);
      let depth: number | null = null;
      if (redisOk) depth = await redis.llen(QUEUE_KEY).catch(() => null);
      sendJson(res, dbOk && redisOk ? 200 : 503, {
        status: dbOk && redisOk ? 'ok' : 'degraded',
        version: cfg.version,
        queue_depth: depth,
        processed: stats.processed,
        failed: stats.failed,
        paused: stats.paused,
        database: dbOk ? 'healthy' : 'unhealthy',
        redis: redisOk ? 'healthy' : 'unhealthy',
      });
    })();
  });
  // Replicas on the host network share the port: they consume without a health endpoint of their own.
  server.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EADDRINUSE') log('warn', 'health port in use; running without a health endpoint', { port: cfg.workerPort });
    else throw err;
  });
  server.listen(cfg.workerPort, () =>
    log('info', 'alfred worker listening', { port: cfg.workerPort, queue: QUEUE_KEY }),
  );

  void (async () => {
    for (;;) {
      try {
        await bumpCounter(db, 'starts_worker');
        return;
      } catch {
        await sleep(2000);
      }
    }
  })();

  async function pausedState(): Promise<{ paused: boolean; slowMs: number }> {
    const raw = await redis.get(WORKER_PAUSED_KEY);
    if (!raw) return { paused: false, slowMs: 0 };
    try {
      const v = JSON.parse(raw) as { slow_ms?: number; before?: number };
      if (typeof v.slow_ms === 'number') return { paused: false, slowMs: v.slow_ms };
      return { paused: typeof v.before !== 'number' || startedAt < v.before, slowMs: 0 };
    } catch {
      return { paused: true, slowMs: 0 };
    }
  }

  async function apply(job: Job): Promise<void> {
    if (job.kind !== 'apply_transfer' || job.transfer_id === undefined) {
      log('error', 'unknown job', { job_id: job.id, kind: job.kind });
      stats.failed++;
      return;
    }
    const rows = await db.query(
      `UPDATE token_transfers SET status = 'applied', applied_at = now() WHERE id = $1 AND status = 'pending' RETURNING id`,
      [job.transfer_id],
    );
    if (rows.length === 0)
      log('warn', 'transfer not pending; job skipped', { job_id: job.id, transfer_id: job.transfer_id });
    stats.processed++;
  }

  void (async () => {
    while (!stopping) {
      if (!redisReady(redis) || !redisReady(blocking)) {
        await sleep(500);
        continue;
      }
      try {
        const state = await pausedState();
        stats.paused = state.paused;
        if (state.paused) {
          await sleep(500);
          continue;
        }
        const popped = await blocking.brpop(QUEUE_KEY, 1);
        if (!popped) continue;
        const raw = popped[1];
        // Paused while this BRPOP was waiting: hand the job back to the head of the queue.
        if ((await pausedState()).paused) {
          await redis.rpush(QUEUE_KEY, raw);
          continue;
        }
        let job: Job;
        try {
          job = JSON.parse(raw) as Job;
        } catch {
          log('error', 'malformed job dropped', { bytes: raw.length });
          stats.failed++;
          continue;
        }
        if (state.slowMs) await sleep(state.slowMs);
        try {
          await apply(job);
        } catch (err) {
          log('error', 'job failed; requeued', { job_id: job.id, transfer_id: job.transfer_id, err: errText(err) });
          stats.failed++;
          await redis.rpush(QUEUE_KEY, raw).catch(() => log('error', 'requeue failed; job lost', { job_id: job.id }));
          await sleep(1000);
        }
      } catch (err) {
        log('error', 'queue error', { err: errText(err) });
        await sleep(1000);
      }
    }
  })();

  const shutdown = () => {
    stopping = true;
    server.close();
    redis.disconnect();
    blocking.disconnect();
    void db.pool.end().catch(() => undefined);
    setTimeout(() => process.exit(0), 1500).unref();
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}
