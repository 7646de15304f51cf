/**
 * Faults that live inside the api process, switched by the fault injector through
 * POST /v1/drill/faults. Conditions outside the process (a provider outage, the SSO provider, a
 * billing bug shipped in config, a paused worker) are kept in Redis so they survive a restart of the
 * api; conditions of the process itself (a leaked pool, runaway queries, a memory leak) end with it.
 */
import type Redis from 'ioredis';
import { Client, type PoolClient } from 'pg';
import type { Db } from './db';
import { HttpError } from './http';
import { errText, log } from './log';
import { PROVIDERS, type Provider } from './metrics';
import { redisReady } from './redis';

export const FAULTS_KEY = 'alfred:drill:faults';
export const WORKER_PAUSED_KEY = 'alfred:drill:worker-paused';

export const PERSISTED_FAULTS = ['provider-errors', 'sso-down', 'cost-bug', 'pii-in-logs'] as const;
export const PROCESS_FAULTS = ['exhaust-pool', 'slow-queries', 'memory-growth'] as const;
export const HOOK_FAULTS = [...PERSISTED_FAULTS, ...PROCESS_FAULTS, 'worker-paused'] as const;
export type HookFault = (typeof HOOK_FAULTS)[number];

export interface ProviderErrorsParams {
  providers: Provider[];
  /** When true, requests are not re-routed to a healthy provider (a broken circuit breaker). */
  no_failover: boolean;
}

interface SlowQuery {
  client: Client;
  pid: number;
}

const MB = 1024 * 1024;

export class DrillFaults {
  private persisted = new Map<string, Record<string, unknown>>();
  private workerPaused: Record<string, unknown> | null = null;
  private heldClients: PoolClient[] = [];
  private slowQueries: SlowQuery[] = [];
  private slowParams: { count: number; seconds: number } | null = null;
  private memory: Buffer[] = [];
  private memoryTimer: NodeJS.Timeout | null = null;
  private memoryParams: { mbPerSecond: number; maxMb: number } | null = null;

  constructor(
    private readonly db: Db,
    private readonly redis: Redis,
    private readonly databaseUrl: string,
  ) {}

  /** Re-reads the persisted faults; keeps the last known state while Redis is unreachable. */
  async refresh(): Promise<void> {
    if (!redisReady(this.redis)) return;
    try {
      const [all, paused] = await Promise.all([this.redis.hgetall(FAULTS_KEY), this.redis.get(WORKER_PAUSED_KEY)]);
      const next = new Map<string, Record<string, unknown>>();
      for (const [name, raw] of Object.entries(all)) {
        try {
          next.set(name, JSON.parse(raw) as Record<string, unknown>);
        } catch {
          next.set(name, {});
        }
      }
      this.persisted = next;
      this.workerPaused = paused ? (JSON.parse(paused) as Record<string, unknown>) : null;
    } catch {
      // Redis trouble is reported by /health; the previous snapshot stays in force.
    }
  }

  failingProviders(): ProviderErrorsParams | null {
    const p = this.persisted.get('provider-errors');
    if (!p) return null;
    const providers = Array.isArray(p.providers) ? (p.providers as Provider[]) : [];
    return { providers, no_failover: p.no_failover === true };
  }

  active(name: 'sso-down' | 'cost-bug' | 'pii-in-logs'): boolean {
    return this.persisted.has(name);
  }

  list(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [name, params] of this.persisted) out[name] = params;
    if (this.workerPaused) out['worker-paused'] = this.workerPaused;
    if (this.heldClients.length) out['exhaust-pool'] = { held: this.heldClients.length };
    if (this.slowParams) out['slow-queries'] = { ...this.slowParams, running: this.slowQueries.length };
    if (this.memoryParams) out['memory-growth'] = { ...this.memoryParams, allocated_mb: this.memory.length };
    return out;
  }

  async set(fault: string, on: boolean, body: Record<string, unknown>): Promise<Record<string, unknown>> {
    switch (fault) {
      case 'provider-errors': {
        if (!on) return this.setPersisted(fault, false, {});
        const raw = body.providers ?? PROVIDERS;
        if (!Array.isArray(raw) || raw.some((p) => !PROVIDERS.includes(p as Provider))) {
          throw new HttpError(400, `providers must be a list drawn from ${PROVIDERS.join(', ')}`);
        }
        return this.setPersisted(fault, on, {
          providers: [...new Set(raw as Provider[])],
          no_failover: body.no_failover === true,
        });
      }
      case 'sso-down':
      case 'cost-bug':
        return this.setPersisted(fault, on, {});
      case 'pii-in-logs':
        if (on) await this.leakPii();
        return this.setPersisted(fault, on, {});
      case 'worker-paused':
        return this.setWorkerPaused(on, body);
      case 'exhaust-pool':
        return on ? this.exhaustPool() : this.releasePool();
      case 'slow-queries':
        return on ? this.startSlowQueries(body) : this.stopSlowQueries();
      case 'memory-growth':
        return on ? this.startMemoryGrowth(body) : this.stopMemoryGrowth();
      default:
        throw new HttpError(
          400,
          `unknown fault ${JSON.stringify(fault).slice(0, 60)}; known: ${HOOK_FAULTS.join(', ')}`,
        );
    }
  }

  private async setPersisted(
    name: string,
    on: boolean,
    params: Record<string, unknown>,
  ): Promise<Record<string, unknown>> {
    if (!redisReady(this.redis)) throw new HttpError(503, 'redis unavailable: fault state cannot be stored');
    if (on) {
      await this.redis.hset(FAULTS_KEY, name, JSON.stringify(params));
      this.persisted.set(name, params);
    } else {
      await this.redis.hdel(FAULTS_KEY, name);
      this.persisted.delete(name);
    }
    log(on ? 'warn' : 'info', on ? 'drill fault enabled' : 'drill fault cleared', { fault: name });
    return { fault: name, on, params };
  }

  private async setWorkerPaused(on: boolean, body: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (!redisReady(this.redis)) throw new HttpError(503, 'redis unavailable: fault state cannot be stored');
    const slowMs = typeof body.slow_ms === 'number' && body.slow_ms > 0 ? Math.min(body.slow_ms, 60000) : undefined;
    // scope "running": only the workers running now hang; a worker started later (a replica) consumes.
    const params = slowMs ? { slow_ms: slowMs } : body.scope === 'running' ? { paused: true, before: Date.now() } : { paused: true };
    if (on) await this.redis.set(WORKER_PAUSED_KEY, JSON.stringify(params));
    else await this.redis.del(WORKER_PAUSED_KEY);
    this.workerPaused = on ? params : null;
    return { fault: 'worker-paused', on, params };
  }

  private async exhaustPool(): Promise<Record<string, unknown>> {
    const want = this.db.max - this.heldClients.length;
    for (let i = 0; i < want; i++) {
      try {
        const client = await this.db.pool.connect();
        // An open transaction left behind, as a leaked session would: "idle in transaction".
        await client.query('BEGIN');
        await client.query('SELECT 1');
        client.on('error', () => undefined);
        this.heldClients.push(client);
      } catch (err) {
        log('warn', 'exhaust-pool could not check out a connection', { err: errText(err) });
        break;
      }
    }
    log('warn', 'drill fault enabled', { fault: 'exhaust-pool', held: this.heldClients.length, pool_max: this.db.max });
    return { fault: 'exhaust-pool', on: true, held: this.heldClients.length, pool_max: this.db.max };
  }

  private async releasePool(): Promise<Record<string, unknown>> {
    const held = this.heldClients.splice(0);
    for (const client of held) {
      try {
        await client.query('ROLLBACK');
        client.release();
      } catch (err) {
        client.release(err instanceof Error ? err : true);
      }
    }
    if (held.length) log('info', 'drill fault cleared', { fault: 'exhaust-pool', released: held.length });
    return { fault: 'exhaust-pool', on: false, released: held.length };
  }

  private async startSlowQueries(body: Record<string, unknown>): Promise<Record<string, unknown>> {
    const count = Math.min(20, Math.max(1, typeof body.count === 'number' ? Math.floor(body.count) : 3));
    const seconds = Math.min(3600, Math.max(1, typeof body.seconds === 'number' ? body.seconds : 300));
    if (this.slowParams) return { fault: 'slow-queries', on: true, already: true, running: this.slowQueries.length };
    this.slowParams = { count, seconds };
    for (let i = 0; i < count; i++) {
      // Separate connections outside the pool, so they show in pg_stat_activity as long active queries.
      const client = new Client({ connectionString: this.databaseUrl, application_name: 'alfred-api' });
      client.on('error', () => undefined);
      try {
        await client.connect();
      } catch (err) {
        log('warn', 'slow-queries could not connect', { err: errText(err) });
        continue;
      }
      const entry: SlowQuery = { client, pid: (client as unknown as { processID: number }).processID };
      this.slowQueries.push(entry);
      client
        .query('SELECT pg_sleep($1) /* report_rollup */', [seconds])
        .catch(() => undefined)
        .finally(() => {
          this.slowQueries = this.slowQueries.filter((q) => q !== entry);
          if (this.slowQueries.length === 0) this.slowParams = null;
          client.end().catch(() => undefined);
        });
    }
    log('warn', 'drill fault enabled', { fault: 'slow-queries', count: this.slowQueries.length, seconds });
    return { fault: 'slow-queries', on: true, running: this.slowQueries.length, seconds };
  }

  private async stopSlowQueries(): Promise<Record<string, unknown>> {
    const pids = this.slowQueries.map((q) => q.pid).filter((p) => Number.isInteger(p));
    if (pids.length) {
      try {
        await this.db.query('SELECT pg_cancel_backend(pid) FROM unnest($1::int[]) AS pid', [pids]);
      } catch (err) {
        log('warn', 'slow-queries cancel failed', { err: errText(err) });
      }
    }
    for (const q of this.slowQueries.splice(0)) q.client.end().catch(() => undefined);
    this.slowParams = null;
    return { fault: 'slow-queries', on: false, cancelled: pids.length };
  }

  private startMemoryGrowth(body: Record<string, unknown>): Record<string, unknown> {
    const mbPerSecond = Math.min(100, Math.max(1, typeof body.mbPerSecond === 'number' ? body.mbPerSecond : 5));
    const maxMb = Math.min(4096, Math.max(1, typeof body.maxMb === 'number' ? body.maxMb : 768));
    this.memoryParams = { mbPerSecond, maxMb };
    if (!this.memoryTimer) {
      this.memoryTimer = setInterval(() => {
        const params = this.memoryParams;
        if (!params) return;
        for (let i = 0; i < params.mbPerSecond && this.memory.length < params.maxMb; i++) {
          // Filled, so the pages are really resident rather than lazily mapped.
          this.memory.push(Buffer.alloc(MB, 0x61));
        }
      }, 1000);
    }
    log('warn', 'drill fault enabled', { fault: 'memory-growth', mb_per_second: mbPerSecond, max_mb: maxMb });
    return { fault: 'memory-growth', on: true, mbPerSecond, maxMb };
  }

  private stopMemoryGrowth(): Record<string, unknown> {
    if (this.memoryTimer) clearInterval(this.memoryTimer);
    this.memoryTimer = null;
    const freed = this.memory.length;
    this.memory = [];
    this.memoryParams = null;
    return { fault: 'memory-growth', on: false, freed_mb: freed };
  }

  /** A debug statement left in by mistake: user emails and card numbers end up in the logs. */
  private async leakPii(): Promise<void> {
    let emails: string[] = ['alice@example.com', 'bob@example.com'];
    try {
      const rows = await this.db.query<{ email: string }>(
        'SELECT email FROM users WHERE NOT is_admin ORDER BY id LIMIT 3',
      );
      if (rows.length) emails = rows.map((r) => r.email);
    } catch {
      // The sample emails are enough for the drill.
    }
    emails.forEach((email, i) => logPii(email, i));
  }
}

const CARDS = ['4111 1111 1111 1111', '5500-0000-0000-0004', '340000000000009'];

/** With `apiKey` (a request's bearer key), the debug line leaks the caller's credential as well. */
export function logPii(email: string, i = 0, apiKey?: string): void {
  log('debug', 'billing profile loaded', {
    user_email: email,
    card_number: CARDS[i % CARDS.length],
    ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}),
  });
}
