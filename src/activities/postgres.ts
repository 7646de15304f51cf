/**
 * PostgreSQL activities. Diagnostics never throw for an unreachable database: they report it, since
 * "the database is down" is a finding, not an activity failure. Each call opens its own short-lived
 * connection with tight timeouts so a dead server costs seconds, not a stuck pool.
 */
import net from 'node:net';
import { Client as PgClient } from 'pg';
import { heartbeat } from '@temporalio/activity';
import type { ActivityDeps } from './deps';
import { pgPassword, targetConfig } from './deps';
import { ErrorType, describeError, permanent } from './errors';

export interface LongQuery {
  pid: number;
  seconds: number;
  state: string;
  query: string;
}

const CORRUPTION = /invalid page|could not read block|checksum mismatch|corrupt|could not open file .* No such file/i;

export function createPostgresActivities(deps: ActivityDeps) {
  function conf(target: string) {
    const pg = targetConfig(deps, target).postgres;
    if (!pg) throw permanent(ErrorType.NotConfigured, `target "${target}" has no postgres configured`);
    return pg;
  }

  const withClient = <T>(target: string, fn: (c: PgClient) => Promise<T>, statementTimeoutMs = 5000): Promise<T> =>
    withPgClient(deps, target, fn, statementTimeoutMs);

  /** `SELECT 1` with a timeout. */
  async function pgPing(input: { target: string }): Promise<{ ok: boolean; latencyMs: number; error?: string; corruption: boolean }> {
    const t0 = Date.now();
    try {
      await withClient(input.target, (c) => c.query('SELECT 1'), 3000);
      return { ok: true, latencyMs: Date.now() - t0, corruption: false };
    } catch (err) {
      const error = describeError(err);
      return { ok: false, latencyMs: Date.now() - t0, error, corruption: CORRUPTION.test(error) };
    }
  }

  /** pg_isready equivalent: does anything accept TCP connections on the server's port? */
  async function pgReachable(input: { target: string }): Promise<{ reachable: boolean; error?: string }> {
    const pg = conf(input.target);
    return new Promise((resolve) => {
      const sock = net.connect({ host: pg.host, port: pg.port });
      const done = (r: { reachable: boolean; error?: string }) => {
        sock.destroy();
        resolve(r);
      };
      sock.setTimeout(2000, () => done({ reachable: false, error: 'timeout' }));
      sock.once('connect', () => done({ reachable: true }));
      sock.once('error', (err) => done({ reachable: false, error: describeError(err) }));
    });
  }

  async function pgConnections(input: { target: string }): Promise<{ total: number; active: number; max: number; byState: Record<string, number> }> {
    return withClient(input.target, async (c) => {
      const rows = await c.query<{ state: string | null; n: string }>(
        'SELECT state, count(*)::text AS n FROM pg_stat_activity WHERE backend_type = $1 GROUP BY state',
        ['client backend'],
      );
      const max = await c.query<{ max_connections: string }>('SHOW max_connections');
      const byState: Record<string, number> = {};
      for (const r of rows.rows) byState[r.state ?? 'unknown'] = Number(r.n);
      const total = Object.values(byState).reduce((a, b) => a + b, 0);
      return { total, active: byState.active ?? 0, max: Number(max.rows[0]?.max_connections ?? 0), byState };
    });
  }

  /** Longest non-idle queries, excluding this engine's own sessions. */
  async function longQueries(input: { target: string; minSeconds: number; limit?: number }): Promise<LongQuery[]> {
    return withClient(input.target, async (c) => {
      const r = await c.query<{ pid: number; seconds: string; state: string; query: string }>(
        `SELECT pid, extract(epoch FROM now() - query_start)::text AS seconds, state, left(query, 160) AS query
           FROM pg_stat_activity
          WHERE state <> 'idle' AND pid <> pg_backend_pid() AND backend_type = 'client backend'
            AND application_name <> 'remediation-engine'
            AND now() - query_start > make_interval(secs => $1)
          ORDER BY query_start ASC LIMIT $2`,
        [input.minSeconds, input.limit ?? 20],
      );
      return r.rows.map((x) => ({ pid: x.pid, seconds: Math.round(Number(x.seconds)), state: x.state, query: x.query }));
    });
  }

  /**
   * Terminates queries still running longer than `minSeconds`. The condition is re-checked in the same
   * statement, so a query that finished meanwhile is never touched; repeating it is harmless.
   */
  async function terminateLongQueries(input: { target: string; minSeconds: number }): Promise<{ terminated: number[] }> {
    if (!(input.minSeconds >= 5)) throw permanent(ErrorType.Refused, 'refusing to terminate queries younger than 5 s');
    return withClient(input.target, async (c) => {
      const r = await c.query<{ pid: number; ok: boolean }>(
        `SELECT pid, pg_terminate_backend(pid) AS ok FROM pg_stat_activity
          WHERE state <> 'idle' AND pid <> pg_backend_pid() AND backend_type = 'client backend'
            AND application_name <> 'remediation-engine'
            AND now() - query_start > make_interval(secs => $1)`,
        [input.minSeconds],
      );
      return { terminated: r.rows.filter((x) => x.ok).map((x) => x.pid) };
    });
  }

  /** VACUUM FULL reclaims disk; long, so it heartbeats. */
  async function vacuumFull(input: { target: string }): Promise<{ detail: string }> {
    const beat = setInterval(() => heartbeat('vacuum running'), 5000);
    try {
      const t0 = Date.now();
      await withClient(input.target, (c) => c.query('VACUUM FULL'), 0);
      return { detail: `VACUUM FULL completed in ${Math.round((Date.now() - t0) / 1000)} s` };
    } finally {
      clearInterval(beat);
    }
  }

  return { pgPing, pgReachable, pgConnections, longQueries, terminateLongQueries, vacuumFull };
}

/** One short-lived connection to a target's PostgreSQL, with tight timeouts, closed afterwards. */
export async function withPgClient<T>(
  deps: ActivityDeps,
  target: string,
  fn: (c: PgClient) => Promise<T>,
  statementTimeoutMs = 5000,
): Promise<T> {
  const pg = targetConfig(deps, target).postgres;
  if (!pg) throw permanent(ErrorType.NotConfigured, `target "${target}" has no postgres configured`);
  const client = new PgClient({
    host: pg.host,
    port: pg.port,
    database: pg.database,
    user: pg.user,
    password: pgPassword(deps, target),
    connectionTimeoutMillis: 3000,
    statement_timeout: statementTimeoutMs,
    application_name: 'remediation-engine',
  });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}
