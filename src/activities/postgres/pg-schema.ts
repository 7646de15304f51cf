/**
 * The target's table and column names that the seeds do not state (`postgres.schema`), put into SQL.
 *
 * A statement is built with `pgStatement(schema, (n) => ...)`: `n('users.isAdmin', 'u')` gives the
 * configured name quoted as an identifier (`u."is_admin"`) and records that the statement uses the
 * setting. When PostgreSQL answers that a column or table does not exist (SQLSTATE 42703, 42P01),
 * `runStatement` turns the error into a permanent failure that names the missing name and, when it
 * came from a setting, the setting that fixes it: retrying cannot help, and a guess would be wrong.
 *
 * Configured columns are always qualified by their table's alias. An unqualified name that the inner
 * query lacks would otherwise resolve to an outer query's column of the same name (a correlated
 * reference), and read the wrong column instead of failing.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { PgSchemaNames } from '../../config';
import type { ActivityDeps } from '../engine/deps';
import { targetConfig } from '../engine/deps';
import { ErrorType, permanent } from '../engine/errors';
import { escapeIdentifier, type PgQueryable } from './pg-exec';

/** A setting under `postgres.schema`, as `<table>.<key>`. */
export type SchemaSetting =
  | 'users.isAdmin'
  | 'users.apiKeyHash'
  | 'users.createdAt'
  | 'wallets.table'
  | 'wallets.id'
  | 'wallets.userId'
  | 'wallets.balance'
  | 'requestLogs.id'
  | 'requestLogs.status'
  | 'requestLogs.provider'
  | 'requestLogs.refundOf'
  | 'transfers.appliedAt'
  | 'approvals.id'
  | 'approvals.transferId'
  | 'approvals.status'
  | 'approvals.createdAt';

/** One configured name a statement uses, and where. */
export interface SchemaUse {
  setting: SchemaSetting;
  /** The configured name, unquoted. */
  name: string;
  /** The alias the statement qualifies the column with. */
  alias?: string;
}

/** SQL text with the configured names it contains. */
export interface PgStatement {
  text: string;
  uses: SchemaUse[];
}

/** The configured name of a setting. */
export function schemaName(schema: PgSchemaNames, setting: SchemaSetting): string {
  const [table, key] = setting.split('.') as [keyof PgSchemaNames, string];
  return (schema[table] as Record<string, string>)[key] as string;
}

/** A table name as SQL: each part of `schema.table` quoted. */
export function quoteQualified(name: string): string {
  return name.split('.').map(escapeIdentifier).join('.');
}

/** Builds a statement; `n(setting, alias?)` inserts a configured name, quoted (and qualified by the alias). */
export function pgStatement(
  schema: PgSchemaNames,
  build: (n: (setting: SchemaSetting, alias?: string) => string) => string,
): PgStatement {
  const uses: SchemaUse[] = [];
  const text = build((setting, alias) => {
    const name = schemaName(schema, setting);
    uses.push({ setting, name, ...(alias ? { alias } : {}) });
    if (setting === 'wallets.table') return quoteQualified(name);
    return alias ? `${alias}.${escapeIdentifier(name)}` : escapeIdentifier(name);
  });
  return { text, uses };
}

/** A target's `postgres.schema`; a target without PostgreSQL is refused. */
export function targetSchemaNames(deps: ActivityDeps, target: string): PgSchemaNames {
  const pg = targetConfig(deps, target).postgres;
  if (!pg) throw permanent(ErrorType.NotConfigured, `target "${target}" has no postgres configured`);
  return pg.schema;
}

const UNDEFINED_COLUMN = '42703';
const UNDEFINED_TABLE = '42P01';
/** `schema.table` whose schema is missing. */
const UNDEFINED_SCHEMA = '3F000';

/** The name PostgreSQL reports missing: `column "x"`, `column a.x` or `relation "s.t"`. */
function missingName(code: string, message: string): { alias?: string; name: string } | undefined {
  if (code === UNDEFINED_COLUMN) {
    const quoted = /column "([^"]+)" does not exist/.exec(message);
    if (quoted) return { name: quoted[1] as string };
    const qualified = /column (\S+)\.([^\s.]+) does not exist/.exec(message);
    if (qualified) return { alias: qualified[1] as string, name: qualified[2] as string };
    return undefined;
  }
  const relation = /(?:relation|schema) "([^"]+)" does not exist/.exec(message);
  return relation ? { name: relation[1] as string } : undefined;
}

/**
 * The permanent failure for a statement that names a column or table the target lacks, or undefined
 * for any other error. `target` is the configured target's name, for the setting's full path.
 */
export function schemaFailure(err: unknown, target: string, stmt: PgStatement): Error | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (code !== UNDEFINED_COLUMN && code !== UNDEFINED_TABLE && code !== UNDEFINED_SCHEMA) return undefined;
  const message = err instanceof Error ? err.message : String(err);
  const kind = code === UNDEFINED_COLUMN ? 'column' : code === UNDEFINED_TABLE ? 'table' : 'schema';
  const missing = missingName(code, message);
  const matches = (u: SchemaUse, m: { alias?: string; name: string }): boolean => {
    if (kind === 'column')
      return u.setting !== 'wallets.table' && u.name === m.name && (m.alias === undefined || u.alias === m.alias);
    if (u.setting !== 'wallets.table') return false;
    const parts = u.name.split('.');
    return kind === 'schema'
      ? parts.length === 2 && parts[0] === m.name
      : u.name === m.name || parts[parts.length - 1] === m.name;
  };
  const candidates = missing ? stmt.uses.filter((u) => matches(u, missing)) : [];
  const settings = [...new Set(candidates.map((u) => u.setting))];
  const what = `${kind} ${missing ? `"${missing.name}"` : '(unnamed)'} does not exist on target "${target}" (SQLSTATE ${code}: ${message})`;
  const details: SchemaFailureDetails = {
    sqlstate: code,
    missing: missing?.name ?? null,
    settings: settings.map((s) => `postgres.schema.${s}`),
  };
  if (settings.length > 0) {
    const paths = settings.map((s) => `targets.${target}.postgres.schema.${s}`);
    return schemaFailureOf(
      `${what}; the name comes from the setting ${paths.join(' or ')}: set it to the name this target uses`,
      details,
    );
  }
  const configured = stmt.uses.length
    ? `; the configurable names it uses: ${stmt.uses.map((u) => `postgres.schema.${u.setting} = "${u.name}"`).join(', ')}`
    : '';
  return schemaFailureOf(
    `${what}; the statement takes this name from the seeds, so no setting changes it: the target's schema differs from the seeds'${configured}`,
    details,
  );
}

/** What a schema failure carries besides its message. */
export interface SchemaFailureDetails {
  sqlstate: string;
  /** The name PostgreSQL reported missing. */
  missing: string | null;
  /** The settings (`postgres.schema.*`) that gave the statement that name; empty for a name from the seeds. */
  settings: string[];
}

function schemaFailureOf(message: string, details: SchemaFailureDetails): ApplicationFailure {
  return ApplicationFailure.create({ message, type: ErrorType.NotConfigured, nonRetryable: true, details: [details] });
}

/** True for the failure `runStatement` throws when the target lacks a column or table. */
export function isSchemaFailure(err: unknown): err is ApplicationFailure {
  if (!(err instanceof ApplicationFailure) || err.type !== ErrorType.NotConfigured) return false;
  const d = err.details?.[0] as Partial<SchemaFailureDetails> | undefined;
  return typeof d?.sqlstate === 'string';
}

/** Runs a statement built with `pgStatement`; a missing column or table fails permanently, naming its setting. */
export async function runStatement<R>(
  c: PgQueryable,
  target: string,
  stmt: PgStatement,
  params?: unknown[],
): Promise<{ rows: R[]; rowCount: number | null }> {
  try {
    return await c.query<R>(stmt.text, params);
  } catch (err) {
    throw schemaFailure(err, target, stmt) ?? err;
  }
}
