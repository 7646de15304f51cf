/**
 * The "migration role missing a grant" fault (seed 004: `permission denied for table`, SQLSTATE
 * 42501). The newest migration is reverted so one is pending, the app role loses UPDATE on
 * `alembic_version`, and the migration is run once through the admin API so it really fails (and
 * the api logs why). Undo grants the privilege back and runs the migration again.
 */
import type { FaultContext } from './context';

export const MIGRATION_ROLE = 'alfred';
/** alembic's own table; an upgrade rewrites its one row, so losing UPDATE is what fails it. */
export const MIGRATIONS_TABLE = 'alembic_version';
export const REVOKED_PRIVILEGE = 'UPDATE';

interface MigrationStatus {
  current: number;
  target: number;
}

const status = (ctx: FaultContext) => ctx.api.admin<MigrationStatus>('GET', '/v1/admin/migrations');

async function hasPrivilege(ctx: FaultContext): Promise<boolean> {
  const pg = await ctx.pg();
  const { rows } = await pg.query<{ ok: boolean }>('SELECT has_table_privilege($1, $2, $3) AS ok', [
    MIGRATION_ROLE,
    MIGRATIONS_TABLE,
    REVOKED_PRIVILEGE,
  ]);
  return rows[0]?.ok === true;
}

export async function revokeMigrationGrant(ctx: FaultContext): Promise<string[]> {
  const messages: string[] = [];
  const before = await status(ctx);
  // A migration must be pending for the missing grant to matter: revert the newest one first,
  // while the role still has every privilege on the table.
  if (before.current >= before.target) {
    const down = await ctx.api.admin<{ reverted: number[]; current: number }>(
      'POST',
      '/v1/admin/migrations/downgrade',
      { steps: 1 },
    );
    messages.push(
      `reverted migration ${down.reverted.join(', ')}; schema at ${down.current}, release expects ${before.target}`,
    );
  } else messages.push(`migration already pending: schema at ${before.current}, release expects ${before.target}`);
  if (await hasPrivilege(ctx)) {
    await (await ctx.pg()).query(`REVOKE ${REVOKED_PRIVILEGE} ON TABLE ${MIGRATIONS_TABLE} FROM ${MIGRATION_ROLE}`);
    messages.push(`revoked ${REVOKED_PRIVILEGE} on ${MIGRATIONS_TABLE} from ${MIGRATION_ROLE}`);
  } else messages.push(`${MIGRATION_ROLE} already lacks ${REVOKED_PRIVILEGE} on ${MIGRATIONS_TABLE}`);
  const run = await ctx.api.request('POST', '/v1/admin/migrations/upgrade', { body: {} });
  messages.push(`migration run answered ${run.status}${run.status >= 400 ? ' (it fails: permission denied)' : ''}`);
  return messages;
}

export async function restoreMigrationGrant(ctx: FaultContext): Promise<string[]> {
  const messages: string[] = [];
  if (await hasPrivilege(ctx))
    messages.push(`${MIGRATION_ROLE} already has ${REVOKED_PRIVILEGE} on ${MIGRATIONS_TABLE}`);
  else {
    await (await ctx.pg()).query(`GRANT ${REVOKED_PRIVILEGE} ON TABLE ${MIGRATIONS_TABLE} TO ${MIGRATION_ROLE}`);
    messages.push(`granted ${REVOKED_PRIVILEGE} on ${MIGRATIONS_TABLE} to ${MIGRATION_ROLE}`);
  }
  const before = await status(ctx);
  if (before.current < before.target) {
    const up = await ctx.api.admin<{ applied: number[]; current: number }>('POST', '/v1/admin/migrations/upgrade', {});
    messages.push(`applied migration ${up.applied.join(', ')}; schema at ${up.current}`);
  } else messages.push(`schema at ${before.current}, nothing pending`);
  return messages;
}
