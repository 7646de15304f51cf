/**
 * Database pressure faults (seed 003: connections, locks). The sessions are psql processes started
 * inside the db container (detached execs as the app role over the local socket), so they outlive
 * the fault injector and look exactly like a stuck application session. Undo terminates them by
 * their application_name.
 */
import type { Client } from 'pg';
import { waitFor, type FaultContext } from './context';

export const LOCK_HOLDER = 'drill-lock-holder';
export const LOCK_WAITER = 'drill-lock-waiter';
export const FLOOD = 'drill-connection-flood';
const APP_ROLE = 'alfred';
const PSQL = '/usr/lib/postgresql/15/bin/psql';
// The row every waiter wants: the holder updates it in a transaction it never ends.
const CONTENDED = 'UPDATE wallets SET updated_at = now() WHERE id = (SELECT min(id) FROM wallets)';

/** Starts a shell command in the db container without waiting for it. */
async function spawnInDb(ctx: FaultContext, script: string): Promise<void> {
  const db = await ctx.containers.find('db');
  const exec = await ctx.containers.docker
    .getContainer(db.id)
    .exec({ Cmd: ['sh', '-c', script], AttachStdout: false, AttachStderr: false });
  await exec.start({ Detach: true });
}

function psql(ctx: FaultContext, app: string): string {
  return `PGAPPNAME=${app} ${PSQL} -q -h /tmp -p ${ctx.env.pg.port} -U ${APP_ROLE} -d ${ctx.env.pg.database}`;
}

async function count(pg: Client, where: string, params: unknown[]): Promise<number> {
  const { rows } = await pg.query<{ n: string }>(
    `SELECT count(*)::text AS n FROM pg_stat_activity WHERE ${where}`,
    params,
  );
  return Number(rows[0]?.n ?? 0);
}

/** One session holds a row lock in an open transaction; `waiters` sessions queue behind it. */
export async function holdLock(ctx: FaultContext, waiters: number, seconds: number): Promise<string[]> {
  const pg = await ctx.pg();
  const messages: string[] = [];
  if ((await count(pg, 'application_name = $1', [LOCK_HOLDER])) === 0) {
    // psql runs the statement, then waits on stdin for `seconds`: "idle in transaction", lock held.
    await spawnInDb(ctx, `( echo "BEGIN; ${CONTENDED};"; sleep ${seconds} ) | ${psql(ctx, LOCK_HOLDER)}`);
    const held = await waitFor(
      async () => (await count(pg, "application_name = $1 AND state = 'idle in transaction'", [LOCK_HOLDER])) === 1,
      10000,
    );
    if (!held) throw new Error('the lock holder session did not start');
    messages.push(`a ${APP_ROLE} session holds a row lock on wallets in an open transaction (${seconds} s)`);
  } else messages.push('the lock holder is already there');
  const have = await count(pg, 'application_name = $1', [LOCK_WAITER]);
  for (let i = have; i < waiters; i++) await spawnInDb(ctx, `${psql(ctx, LOCK_WAITER)} -c "${CONTENDED}"`);
  const waiting = await waitFor(
    async () => (await count(pg, "application_name = $1 AND wait_event_type = 'Lock'", [LOCK_WAITER])) >= waiters,
    10000,
  );
  messages.push(
    `${await count(pg, "application_name = $1 AND wait_event_type = 'Lock'", [LOCK_WAITER])} session(s) wait for it${waiting ? '' : ' (fewer than asked)'}`,
  );
  return messages;
}

/** `connections` idle sessions of the app role, each kept open for `seconds`. */
export async function floodConnections(ctx: FaultContext, connections: number, seconds: number): Promise<string[]> {
  const pg = await ctx.pg();
  const have = await count(pg, 'application_name = $1', [FLOOD]);
  const more = Math.max(0, connections - have);
  if (more > 0) {
    await spawnInDb(ctx, `for i in $(seq ${more}); do ( sleep ${seconds} ) | ${psql(ctx, FLOOD)} & done; wait`);
    await waitFor(async () => (await count(pg, 'application_name = $1', [FLOOD])) >= connections, 15000);
  }
  const { rows } = await pg.query<{ max_connections: string }>('SHOW max_connections');
  const total = await count(pg, "backend_type = 'client backend'", []);
  return [
    `${await count(pg, 'application_name = $1', [FLOOD])} idle ${APP_ROLE} sessions open; ${total} of max_connections ${rows[0]?.max_connections ?? '?'} in use`,
  ];
}

/** Ends every session a database-pressure fault started; the remaining ones finish by themselves. */
export async function endPressureSessions(ctx: FaultContext, apps: string[]): Promise<string[]> {
  const pg = await ctx.pg();
  const { rows } = await pg.query<{ app: string; n: string }>(
    `SELECT application_name AS app, count(*) FILTER (WHERE pg_terminate_backend(pid))::text AS n
       FROM pg_stat_activity WHERE application_name = ANY($1::text[]) GROUP BY application_name`,
    [apps],
  );
  await waitFor(async () => (await count(pg, 'application_name = ANY($1::text[])', [apps])) === 0, 10000);
  return rows.length ? rows.map((r) => `terminated ${r.n} ${r.app} session(s)`) : ['no fault sessions were running'];
}
