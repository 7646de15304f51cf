/**
 * Database pressure (seed 003: connections, locks, slow queries) and the two remedies that act on
 * sessions: terminating the sessions that block others, and lowering a role's CONNECTION LIMIT.
 * Everything is confined to the target's own database and never touches this engine's sessions;
 * slow queries themselves are listed and terminated by the pg-sessions activities.
 */
import type { ActivityDeps } from '../engine/deps';
import { targetConfig } from '../engine/deps';
import { ErrorType, permanent } from '../engine/errors';
import { withPgAdmin } from './postgres';
import { escapeIdentifier } from './pg-exec';

export interface RoleConnections {
  role: string;
  total: number;
  active: number;
  idle: number;
  idleInTransaction: number;
  /** The role's CONNECTION LIMIT (-1: none). */
  limit: number;
}

export interface LockWait {
  pid: number;
  role: string;
  waitSeconds: number;
  blockedBy: number[];
  query: string;
}

/** A root blocker: it blocks others and waits on no lock itself (queued waiters block each other too). */
export interface Blocker {
  pid: number;
  role: string;
  state: string;
  /** How long its transaction has been open. */
  xactSeconds: number;
  /** Sessions waiting on it directly. */
  blocking: number;
  query: string;
}

export interface PressureSettings {
  connectionsPct: number;
  lockWaitSeconds: number;
  longQuerySeconds: number;
  limitRoles: string[];
  connectionLimit: number;
  /** `postgres.pressure.trimIdleSeconds`; absent in results recorded before it was a setting. */
  trimIdleSeconds?: number;
}

export interface DbPressure {
  ok: boolean;
  error?: string;
  maxConnections: number;
  /** Client connections to the whole server (max_connections is server-wide). */
  totalConnections: number;
  usedPct: number;
  /** Client connections to the target's database, by role. */
  byRole: RoleConnections[];
  lockWaits: LockWait[];
  blockers: Blocker[];
}

/** The target's database, client backends, never this engine's own sessions (columns of `a`, if given). */
function own(a = ''): string {
  const p = a ? `${a}.` : '';
  return `${p}datname = current_database() AND ${p}backend_type = 'client backend'
    AND ${p}pid <> pg_backend_pid() AND ${p}application_name <> 'remediation-engine'`;
}
const OWN = own();

// Sessions of this database waiting on a lock for longer than $1 seconds, with who blocks them.
const WAITERS = `SELECT pid, usename, now() - query_start AS waited, pg_blocking_pids(pid) AS blocked_by, left(query, 120) AS query
  FROM pg_stat_activity WHERE ${OWN} AND wait_event_type = 'Lock' AND now() - query_start > make_interval(secs => $1)`;

export function createPgPressureActivities(deps: ActivityDeps) {
  function settings(target: string): PressureSettings {
    const pg = targetConfig(deps, target).postgres;
    if (!pg) throw permanent(ErrorType.NotConfigured, `target "${target}" has no postgres configured`);
    return { ...pg.pressure, limitRoles: [...pg.pressure.limitRoles] };
  }

  async function pressureSettings(input: { target: string }): Promise<PressureSettings> {
    return settings(input.target);
  }

  /** Connections against max_connections, lock waits and their blockers. An unreachable database is a finding. */
  async function dbPressure(input: { target: string }): Promise<DbPressure> {
    const s = settings(input.target);
    try {
      return await withPgAdmin(deps, input.target, async (c) => {
        const max = Number(
          (await c.query<{ max_connections: string }>('SHOW max_connections')).rows[0]?.max_connections ?? 0,
        );
        const total = Number(
          (
            await c.query<{ n: string }>(
              `SELECT count(*)::text AS n FROM pg_stat_activity WHERE backend_type = 'client backend'`,
            )
          ).rows[0]?.n ?? 0,
        );
        const roles = await c.query<{
          role: string;
          total: string;
          active: string;
          idle: string;
          idle_tx: string;
          limit: number;
        }>(
          `SELECT a.usename AS role, count(*)::text AS total,
                  count(*) FILTER (WHERE state = 'active')::text AS active,
                  count(*) FILTER (WHERE state = 'idle')::text AS idle,
                  count(*) FILTER (WHERE state LIKE 'idle in transaction%')::text AS idle_tx,
                  max(r.rolconnlimit) AS limit
             FROM pg_stat_activity a JOIN pg_roles r ON r.rolname = a.usename
            WHERE ${own('a')} GROUP BY a.usename ORDER BY count(*) DESC`,
        );
        const waits = await c.query<{
          pid: number;
          usename: string;
          seconds: string;
          blocked_by: number[];
          query: string;
        }>(
          `SELECT pid, usename, extract(epoch FROM waited)::text AS seconds, blocked_by, query FROM (${WAITERS}) w ORDER BY waited DESC LIMIT 50`,
          [s.lockWaitSeconds],
        );
        const blockers = await c.query<{
          pid: number;
          usename: string;
          state: string;
          xact: string;
          blocking: string;
          query: string;
        }>(
          `WITH w AS (${WAITERS})
           SELECT b.pid, b.usename, b.state, extract(epoch FROM now() - coalesce(b.xact_start, b.query_start))::text AS xact,
                  count(*)::text AS blocking, left(b.query, 120) AS query
             FROM w CROSS JOIN LATERAL unnest(w.blocked_by) AS u(pid) JOIN pg_stat_activity b ON b.pid = u.pid
            WHERE b.wait_event_type IS DISTINCT FROM 'Lock'
            GROUP BY b.pid, b.usename, b.state, b.xact_start, b.query_start, b.query
            ORDER BY count(*) DESC LIMIT 20`,
          [s.lockWaitSeconds],
        );
        return {
          ok: true,
          maxConnections: max,
          totalConnections: total,
          usedPct: max > 0 ? Math.round((total / max) * 1000) / 10 : 0,
          byRole: roles.rows.map((r) => ({
            role: r.role,
            total: Number(r.total),
            active: Number(r.active),
            idle: Number(r.idle),
            idleInTransaction: Number(r.idle_tx),
            limit: r.limit,
          })),
          lockWaits: waits.rows.map((w) => ({
            pid: w.pid,
            role: w.usename,
            waitSeconds: Math.round(Number(w.seconds)),
            blockedBy: w.blocked_by,
            query: w.query,
          })),
          blockers: blockers.rows.map((b) => ({
            pid: b.pid,
            role: b.usename,
            state: b.state,
            xactSeconds: Math.round(Number(b.xact)),
            blocking: Number(b.blocking),
            query: b.query,
          })),
        };
      });
    } catch (err) {
      return {
        ok: false,
        error: (err as Error).message,
        maxConnections: 0,
        totalConnections: 0,
        usedPct: 0,
        byRole: [],
        lockWaits: [],
        blockers: [],
      };
    }
  }

  /**
   * Terminates the given sessions, each only if it still is a root blocker of a session of this
   * database that has waited longer than the configured lock wait: a blocker that let go, a waiter
   * queued ahead of others, or a pid reused since, is spared.
   */
  async function terminateBlockers(input: {
    target: string;
    pids: number[];
  }): Promise<{ terminated: number[]; spared: number[] }> {
    const s = settings(input.target);
    const pids = input.pids.filter((p) => Number.isInteger(p) && p > 0);
    if (pids.length === 0) return { terminated: [], spared: [] };
    return withPgAdmin(deps, input.target, async (c) => {
      const r = await c.query<{ pid: number; ok: boolean }>(
        `WITH w AS (${WAITERS}), b AS (SELECT DISTINCT u.pid FROM w CROSS JOIN LATERAL unnest(w.blocked_by) AS u(pid))
         SELECT a.pid, pg_terminate_backend(a.pid) AS ok FROM pg_stat_activity a JOIN b ON b.pid = a.pid
          WHERE ${own('a')} AND a.pid = ANY($2::int[]) AND a.wait_event_type IS DISTINCT FROM 'Lock'`,
        [s.lockWaitSeconds, pids],
      );
      const terminated = r.rows.filter((x) => x.ok).map((x) => x.pid);
      return { terminated, spared: pids.filter((p) => !terminated.includes(p)) };
    });
  }

  /**
   * Lowers a role's CONNECTION LIMIT (new connections beyond it are refused; existing ones stay).
   * Only roles listed in the target's configuration; never raises a limit; repeating it is harmless.
   */
  async function limitRoleConnections(input: {
    target: string;
    role: string;
  }): Promise<{ performed: boolean; detail: string }> {
    const s = settings(input.target);
    if (!s.limitRoles.includes(input.role)) {
      throw permanent(
        ErrorType.Refused,
        `role "${input.role}" may not be limited on ${input.target} (configured: ${s.limitRoles.join(', ') || 'none'})`,
      );
    }
    return withPgAdmin(deps, input.target, async (c) => {
      const cur = (
        await c.query<{ rolconnlimit: number }>('SELECT rolconnlimit FROM pg_roles WHERE rolname = $1', [input.role])
      ).rows[0];
      if (!cur) throw permanent(ErrorType.BadInput, `role "${input.role}" does not exist`);
      if (cur.rolconnlimit >= 0 && cur.rolconnlimit <= s.connectionLimit) {
        return { performed: false, detail: `${input.role} already limited to ${cur.rolconnlimit} connections` };
      }
      await c.query(`ALTER ROLE ${escapeIdentifier(input.role)} CONNECTION LIMIT ${Math.floor(s.connectionLimit)}`);
      return {
        performed: true,
        detail: `${input.role} limited to ${s.connectionLimit} connections (was ${cur.rolconnlimit < 0 ? 'unlimited' : cur.rolconnlimit})`,
      };
    });
  }

  /**
   * Ends the role's idle sessions beyond its new limit, longest idle first, so the limit takes effect
   * now rather than as the pool recycles. Only sessions idle (not in a transaction) for `minIdleSeconds`.
   */
  async function trimIdleSessions(input: {
    target: string;
    role: string;
    minIdleSeconds: number;
  }): Promise<{ terminated: number }> {
    const s = settings(input.target);
    if (!s.limitRoles.includes(input.role))
      throw permanent(ErrorType.Refused, `role "${input.role}" may not be trimmed on ${input.target}`);
    return withPgAdmin(deps, input.target, async (c) => {
      const r = await c.query<{ ok: boolean }>(
        `WITH ranked AS (
           SELECT pid, state, state_change, row_number() OVER (ORDER BY state_change DESC) AS keep_rank
             FROM pg_stat_activity WHERE ${OWN} AND usename = $1)
         SELECT pg_terminate_backend(pid) AS ok FROM ranked
          WHERE keep_rank > $2 AND state = 'idle' AND now() - state_change > make_interval(secs => $3)`,
        [input.role, s.connectionLimit, input.minIdleSeconds],
      );
      return { terminated: r.rows.filter((x) => x.ok).length };
    });
  }

  return { pressureSettings, dbPressure, terminateBlockers, limitRoleConnections, trimIdleSessions };
}
