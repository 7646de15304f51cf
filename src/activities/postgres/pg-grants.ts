/**
 * Table privileges of the migration role (seed 004: "permission denied for table", SQLSTATE 42501).
 * The role, the table and the privileges it needs come from the target's configuration only, so a
 * workflow can neither name another role nor grant anything else.
 */
import type { ActivityDeps } from '../engine/deps';
import { targetConfig } from '../engine/deps';
import { ErrorType, permanent } from '../engine/errors';
import { withPgClient } from './postgres';
import { escapeIdentifier } from './pg-exec';

export interface MigrationSettings {
  role: string;
  table: string;
  component: string;
  privileges: string[];
  command: string[];
  /** `postgres.migrations.logWindowSeconds`; absent in results recorded before it was a setting. */
  logWindowSeconds?: number;
  /** Retired (incidents started before alembic was used). */
  statusPath?: string;
  upgradePath?: string;
}

export interface TableGrants {
  role: string;
  table: string;
  tableExists: boolean;
  /** has_table_privilege for each required privilege. */
  granted: string[];
  missing: string[];
  /** Explicit grants on the table (its ACL, what role_table_grants shows), grantee → privileges. */
  grants: Record<string, string[]>;
}

export function createPgGrantActivities(deps: ActivityDeps) {
  function settings(target: string): MigrationSettings {
    const m = targetConfig(deps, target).postgres?.migrations;
    if (!m) throw permanent(ErrorType.NotConfigured, `target "${target}" has no migration role configured`);
    return { ...m, privileges: [...m.privileges], command: [...m.command] };
  }

  async function migrationSettings(input: { target: string }): Promise<MigrationSettings> {
    return settings(input.target);
  }

  /** What the migration role may do on the migrations table, against what it needs. */
  async function tableGrants(input: { target: string }): Promise<TableGrants> {
    const m = settings(input.target);
    return withPgClient(deps, input.target, async (c) => {
      const exists =
        (await c.query<{ oid: string | null }>('SELECT to_regclass($1)::text AS oid', [m.table])).rows[0]?.oid != null;
      const roleExists = (await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [m.role])).rowCount === 1;
      if (!roleExists) throw permanent(ErrorType.NotConfigured, `migration role "${m.role}" does not exist`);
      const base = { role: m.role, table: m.table, tableExists: exists };
      if (!exists) return { ...base, granted: [], missing: [...m.privileges], grants: {} };
      const has = await c.query<{ privilege: string; ok: boolean }>(
        'SELECT p AS privilege, has_table_privilege($1, $2, p) AS ok FROM unnest($3::text[]) AS p',
        [m.role, m.table, m.privileges],
      );
      // The table's ACL itself: information_schema.role_table_grants hides grants among roles the
      // connecting user is not a member of (an owner's own privileges included).
      const rows = await c.query<{ grantee: string; privilege_type: string }>(
        `SELECT r.rolname AS grantee, a.privilege_type FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a
           JOIN pg_roles r ON r.oid = a.grantee WHERE c.oid = to_regclass($1) ORDER BY 1, 2`,
        [m.table],
      );
      const grants: Record<string, string[]> = {};
      for (const r of rows.rows) (grants[r.grantee] ??= []).push(r.privilege_type);
      return {
        ...base,
        granted: has.rows.filter((r) => r.ok).map((r) => r.privilege),
        missing: has.rows.filter((r) => !r.ok).map((r) => r.privilege),
        grants,
      };
    });
  }

  /** GRANTs the missing privileges (re-read in this call); granting what is there already changes nothing. */
  async function grantMissingPrivileges(input: {
    target: string;
  }): Promise<{ performed: boolean; granted: string[]; detail: string }> {
    const m = settings(input.target);
    return withPgClient(deps, input.target, async (c) => {
      const has = await c.query<{ privilege: string; ok: boolean }>(
        'SELECT p AS privilege, has_table_privilege($1, $2, p) AS ok FROM unnest($3::text[]) AS p',
        [m.role, m.table, m.privileges],
      );
      const missing = has.rows.filter((r) => !r.ok).map((r) => r.privilege);
      if (missing.length === 0)
        return {
          performed: false,
          granted: [],
          detail: `${m.role} already has ${m.privileges.join(', ')} on ${m.table}`,
        };
      // Privilege names come from a fixed enum in the configuration schema; identifiers are quoted.
      await c.query(
        `GRANT ${missing.join(', ')} ON TABLE ${escapeIdentifier(m.table)} TO ${escapeIdentifier(m.role)}`,
      );
      return { performed: true, granted: missing, detail: `granted ${missing.join(', ')} on ${m.table} to ${m.role}` };
    });
  }

  return { migrationSettings, tableGrants, grantMissingPrivileges };
}
