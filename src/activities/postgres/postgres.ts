/**
 * PostgreSQL activities. Diagnostics never throw for an unreachable database: they report it, since
 * "the database is down" is a finding, not an activity failure. Each call opens its own short-lived
 * connection with tight timeouts so a dead server costs seconds, not a stuck pool.
 */
import net from 'node:net';
import { Client as PgClient } from 'pg';
import { heartbeat } from '@temporalio/activity';
import type { ActivityDeps } from '../engine/deps';
import { dockerFor, pgPassword, targetConfig } from '../engine/deps';
import { findRunningContainer } from '../containers/containers';
import { createDockerActivities } from '../containers/docker';
import { PsqlSession, type PgQueryable } from './pg-exec';
import { ErrorType, describeError, permanent } from '../engine/errors';

export interface LongQuery {
  pid: number;
  seconds: number;
  state: string;
  query: string;
}

const CORRUPTION = /invalid page|could not read block|checksum mismatch|corrupt|could not open file .* No such file/i;
/** The server refused the engine's login: its database or role is not there, or its password is wrong. */
const LOGIN_REFUSED = /(database|role) "[^"]*" does not exist|password authentication failed|no pg_hba\.conf entry/i;
/** SQLSTATEs of the same: invalid_catalog_name, invalid_authorization_specification, invalid_password. */
const LOGIN_CODES = ['3D000', '28000', '28P01'];

/** The application name of the engine's own sessions, so listings and terminations leave them out. */
const ENGINE_APP_NAME = 'remediation-engine';

export function createPostgresActivities(deps: ActivityDeps) {
  const docker = createDockerActivities(deps);
  function conf(target: string) {
    const pg = targetConfig(deps, target).postgres;
    if (!pg) throw permanent(ErrorType.NotConfigured, `target "${target}" has no postgres configured`);
    return pg;
  }

  const withClient = <T>(target: string, fn: (c: PgQueryable) => Promise<T>, statementTimeoutMs = 5000): Promise<T> =>
    withPgClient(deps, target, fn, statementTimeoutMs);

  /**
   * `SELECT 1` with a timeout. A session refused for the engine's own login (no such database or
   * role, a wrong password) says nothing about the server's health: `unobservable` then says so and
   * names the settings the engine logs in with.
   */
  async function pgPing(input: {
    target: string;
  }): Promise<{ ok: boolean; latencyMs: number; error?: string; corruption: boolean; unobservable?: string }> {
    const t0 = Date.now();
    try {
      await withClient(input.target, (c) => c.query('SELECT 1'), 3000);
      return { ok: true, latencyMs: Date.now() - t0, corruption: false };
    } catch (err) {
      const error = describeError(err);
      const login = LOGIN_REFUSED.test(error) || LOGIN_CODES.includes(String((err as { code?: unknown }).code));
      return {
        ok: false,
        latencyMs: Date.now() - t0,
        error,
        corruption: !login && CORRUPTION.test(error),
        ...(login ? { unobservable: `the engine's session was refused: ${error} (${loginSettings(input.target)})` } : {}),
      };
    }
  }

  /** The settings the engine logs in with, as a user writes them. */
  function loginSettings(target: string): string {
    const pg = conf(target);
    const p = `targets.${target}.postgres`;
    return pg.via === 'exec'
      ? `settings ${p}.database, ${p}.execUser`
      : `settings ${p}.database, ${p}.user, ${p}.password`;
  }

  /**
   * Is the server accepting connections? With `via: exec`, seed 002's own check inside the db
   * container: `pg_isready -U alfred` (exit 0 accepting, 1 rejecting, 2 no response). With `via: tcp`,
   * a TCP connect to the server's address. A container without pg_isready is a configuration problem,
   * reported as such rather than read as "the server is down".
   */
  async function pgReachable(input: {
    target: string;
  }): Promise<{ reachable: boolean; error?: string; method?: string }> {
    const pg = conf(input.target);
    if (pg.via === 'exec') {
      const c = await findRunningContainer(deps, input.target, pg.component);
      if (!c) return { reachable: false, error: `the ${pg.component} container is not running`, method: 'pg_isready' };
      const r = await docker.execInContainer({
        target: input.target,
        component: pg.component,
        cmd: ['pg_isready', '-U', pg.execUser],
      });
      if (r.exitCode === 0) return { reachable: true, method: 'pg_isready' };
      if (
        r.exitCode === 126 ||
        r.exitCode === 127 ||
        /executable file not found|not found in \$PATH|No such file/i.test(r.output)
      ) {
        throw permanent(
          ErrorType.NotConfigured,
          `pg_isready could not run in the ${pg.component} container of ${input.target} (exit ${r.exitCode}: ${r.output.trim().slice(0, 200)}); ` +
            `set targets.${input.target}.postgres.component to the service that runs PostgreSQL, or postgres.via: tcp`,
        );
      }
      return {
        reachable: false,
        error: `pg_isready -U ${pg.execUser}: ${r.output.trim().slice(0, 200) || `exit ${r.exitCode}`}`,
        method: 'pg_isready',
      };
    }
    return new Promise((resolve) => {
      const sock = net.connect({ host: pg.host, port: pg.port as number });
      const done = (r: { reachable: boolean; error?: string }) => {
        sock.destroy();
        resolve({ ...r, method: 'tcp' });
      };
      sock.setTimeout(2000, () => done({ reachable: false, error: 'timeout' }));
      sock.once('connect', () => done({ reachable: true }));
      sock.once('error', (err) => done({ reachable: false, error: describeError(err) }));
    });
  }

  async function pgConnections(input: {
    target: string;
  }): Promise<{ total: number; active: number; max: number; byState: Record<string, number> }> {
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
      return r.rows.map((x) => ({
        pid: x.pid,
        seconds: Math.round(Number(x.seconds)),
        state: x.state,
        query: x.query,
      }));
    });
  }

  /**
   * Terminates queries still running longer than `minSeconds`. The condition is re-checked in the same
   * statement, so a query that finished meanwhile is never touched; repeating it is harmless.
   */
  async function terminateLongQueries(input: {
    target: string;
    minSeconds: number;
  }): Promise<{ terminated: number[] }> {
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

/**
 * A session as `postgres.adminUser`, for work about connections and roles (databasePressure,
 * terminating sessions): it is not refused by the application role's CONNECTION LIMIT it may have
 * just lowered, and superusers keep reserved slots when max_connections is reached.
 */
export function withPgAdmin<T>(
  deps: ActivityDeps,
  target: string,
  fn: (c: PgQueryable) => Promise<T>,
  statementTimeoutMs = 5000,
): Promise<T> {
  return withPgClient(deps, target, fn, statementTimeoutMs, { as: 'admin' });
}

/**
 * One short-lived session with a target's PostgreSQL, closed afterwards: psql inside the db
 * container (`via: exec`, the seeds' way) or a TCP connection (`via: tcp`), with tight timeouts.
 */
export async function withPgClient<T>(
  deps: ActivityDeps,
  target: string,
  fn: (c: PgQueryable) => Promise<T>,
  statementTimeoutMs = 5000,
  opts: { as?: 'app' | 'admin' } = {},
): Promise<T> {
  const pg = targetConfig(deps, target).postgres;
  if (!pg) throw permanent(ErrorType.NotConfigured, `target "${target}" has no postgres configured`);
  if (pg.via === 'exec') {
    const c = await findRunningContainer(deps, target, pg.component);
    if (!c) throw new Error(`the ${pg.component} container of ${target} is not running: no psql session possible`);
    const session = await PsqlSession.open(dockerFor(deps, target).getContainer(c.Id), {
      user: opts.as === 'admin' ? pg.adminUser : pg.execUser,
      database: pg.database,
      statementTimeoutMs,
      applicationName: ENGINE_APP_NAME,
    });
    try {
      return await fn(session);
    } finally {
      await session.close();
    }
  }
  const client = new PgClient({
    host: pg.host,
    port: pg.port,
    database: pg.database,
    user: pg.user,
    password: pgPassword(deps, target),
    connectionTimeoutMillis: 3000,
    statement_timeout: statementTimeoutMs,
    application_name: ENGINE_APP_NAME,
  });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn({
      query: async <R>(text: string, params?: unknown[]) =>
        client.query(text, params) as unknown as { rows: R[]; rowCount: number | null },
    });
  } finally {
    await client.end().catch(() => undefined);
  }
}
