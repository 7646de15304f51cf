/**
 * PostgreSQL sessions of one target's database: the longest running queries, and terminating exactly
 * the ones a person approved. Other databases on the same server and this engine's own sessions are
 * never listed or touched.
 */
import type { ActivityDeps } from '../engine/deps';
import { ErrorType, permanent } from '../engine/errors';
import { withPgAdmin } from './postgres';

export interface RunningQuery {
  pid: number;
  seconds: number;
  state: string;
  /** The first 120 characters of the statement, string literals redacted (bind parameters are never included). */
  query: string;
}

// Every statement here carries the same filter: the target's own database, client backends only.
const OWN_SESSIONS = `datname = current_database() AND backend_type = 'client backend'
  AND pid <> pg_backend_pid() AND application_name <> 'remediation-engine' AND state <> 'idle'`;

/** String literals may hold anything (a password in ALTER ROLE): they never leave this activity. */
export function redactLiterals(sql: string): string {
  return sql.replace(/'(?:[^']|'')*'?/g, "'…'").replace(/\$\$[\s\S]*?(\$\$|$)/g, () => '$$…$$');
}

export function createPgSessionActivities(deps: ActivityDeps) {
  /** Non-idle queries of the target's database running longer than `minSeconds`, longest first. */
  async function runningQueries(input: {
    target: string;
    minSeconds: number;
    limit?: number;
  }): Promise<RunningQuery[]> {
    return withPgAdmin(deps, input.target, async (c) => {
      const r = await c.query<{ pid: number; seconds: string; state: string; query: string }>(
        `SELECT pid, extract(epoch FROM now() - query_start)::text AS seconds, state, left(query, 120) AS query
           FROM pg_stat_activity
          WHERE ${OWN_SESSIONS} AND now() - query_start > make_interval(secs => $1)
          ORDER BY query_start ASC LIMIT $2`,
        [input.minSeconds, input.limit ?? 20],
      );
      return r.rows.map((x) => ({
        pid: x.pid,
        seconds: Math.round(Number(x.seconds)),
        state: x.state,
        query: redactLiterals(x.query),
      }));
    });
  }

  /**
   * Terminates the given backends, each only if it is still in the target's database and still
   * running the same long query (older than `minSeconds`): a pid reused by a new session is spared.
   * Repeating it is harmless; the answer lists what was terminated this time.
   */
  async function terminateQueries(input: {
    target: string;
    pids: number[];
    minSeconds: number;
  }): Promise<{ terminated: number[]; spared: number[] }> {
    if (!(input.minSeconds >= 5)) throw permanent(ErrorType.Refused, 'refusing to terminate queries younger than 5 s');
    const pids = input.pids.filter((p) => Number.isInteger(p) && p > 0);
    if (pids.length === 0) return { terminated: [], spared: [] };
    return withPgAdmin(deps, input.target, async (c) => {
      const r = await c.query<{ pid: number; ok: boolean }>(
        `SELECT pid, pg_terminate_backend(pid) AS ok FROM pg_stat_activity
          WHERE ${OWN_SESSIONS} AND pid = ANY($1::int[]) AND now() - query_start > make_interval(secs => $2)`,
        [pids, input.minSeconds],
      );
      const terminated = r.rows.filter((x) => x.ok).map((x) => x.pid);
      return { terminated, spared: pids.filter((p) => !terminated.includes(p)) };
    });
  }

  return { runningQueries, terminateQueries };
}
