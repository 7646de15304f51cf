/** PostgreSQL pool. The pool reconnects on demand, so a database that comes back is picked up by itself. */
import { Pool, type PoolClient, type QueryResultRow } from 'pg';
import { errText, log } from './log';

export interface Db {
  pool: Pool;
  max: number;
  query<R extends QueryResultRow = QueryResultRow>(sql: string, params?: unknown[]): Promise<R[]>;
  tx<T>(fn: (client: PoolClient) => Promise<T>): Promise<T>;
  ping(timeoutMs: number): Promise<boolean>;
}

export class DatabaseUnavailable extends Error {
  constructor(cause: unknown) {
    super(`database unavailable: ${errText(cause)}`);
    this.name = 'DatabaseUnavailable';
  }
}

/** Connection-level failures (as opposed to SQL errors) mean the database is unavailable. */
function isConnectionError(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  const msg = e.message ?? '';
  return (
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', '57P01', '57P02', '57P03', '08006', '08001', '08003'].includes(
      e.code ?? '',
    ) || /timeout exceeded when trying to connect|Connection terminated|connection timeout|not queryable/i.test(msg)
  );
}

export function createDb(url: string, max: number, appName: string): Db {
  const pool = new Pool({
    connectionString: url,
    max,
    connectionTimeoutMillis: 3000,
    idleTimeoutMillis: 30000,
    application_name: appName,
    // A query stuck behind a dead server must not hang a request forever.
    query_timeout: 15000,
  });
  // Idle clients whose server went away emit here; without a listener the process would crash.
  pool.on('error', (err) => log('warn', 'idle database connection lost', { err: errText(err) }));

  const wrap = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      if (isConnectionError(err)) throw new DatabaseUnavailable(err);
      throw err;
    }
  };

  return {
    pool,
    max,
    query: <R extends QueryResultRow>(sql: string, params?: unknown[]) =>
      wrap(async () => (await pool.query<R>(sql, params)).rows),
    tx: <T>(fn: (client: PoolClient) => Promise<T>) =>
      wrap(async () => {
        const client = await pool.connect();
        try {
          await client.query('BEGIN');
          const out = await fn(client);
          await client.query('COMMIT');
          return out;
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw err;
        } finally {
          client.release();
        }
      }),
    async ping(timeoutMs: number) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      });
      const attempt = (async () => {
        try {
          await pool.query('SELECT 1');
          return true;
        } catch {
          return false;
        }
      })();
      try {
        return await Promise.race([attempt, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
