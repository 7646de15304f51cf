/**
 * The tamper-evident audit chain. Each row stores
 *   hash = sha256_hex(previous_hash + canonical_json(content))
 * where content is {action, actor_user_id, created_at (ISO-8601 UTC, ms), details, id (string),
 * target_id, target_type} with keys sorted at every level, and previous_hash is the hash of the row
 * before it by id (GENESIS_HASH for the first row).
 */
import { createHash } from 'node:crypto';
import type { PoolClient, QueryResultRow } from 'pg';

export const GENESIS_HASH = '0'.repeat(64);

export interface AuditContent {
  id: string;
  actor_user_id: string | number | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  details: unknown;
  created_at: Date | string;
}

export interface AuditRow extends AuditContent {
  previous_hash: string | null;
  hash: string | null;
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object' && !(value instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) out[key] = sortKeys((value as Record<string, unknown>)[key]);
    return out;
  }
  return value;
}

export function canonicalContent(row: AuditContent): string {
  const createdAt =
    row.created_at instanceof Date ? row.created_at.toISOString() : new Date(row.created_at).toISOString();
  return JSON.stringify(
    sortKeys({
      action: row.action,
      actor_user_id: row.actor_user_id === null ? null : String(row.actor_user_id),
      created_at: createdAt,
      details: row.details ?? {},
      id: String(row.id),
      target_id: row.target_id,
      target_type: row.target_type,
    }),
  );
}

export function auditHash(previousHash: string, row: AuditContent): string {
  return createHash('sha256')
    .update(previousHash + canonicalContent(row))
    .digest('hex');
}

export interface AuditEntry {
  actorUserId: number | string | null;
  action: string;
  targetType?: string | null;
  targetId?: string | number | null;
  details?: Record<string, unknown>;
  createdAt?: Date;
}

const CHAIN_LOCK = 7_402_312;

/** Appends one entry inside the caller's transaction; the lock serialises writers on the chain head. */
export async function appendAudit(client: PoolClient, entry: AuditEntry): Promise<{ id: string; hash: string }> {
  await client.query('SELECT pg_advisory_xact_lock($1)', [CHAIN_LOCK]);
  const head = await client.query<{ hash: string | null }>('SELECT hash FROM audit_logs ORDER BY id DESC LIMIT 1');
  const previous = head.rows[0]?.hash ?? GENESIS_HASH;
  const idRow = await client.query<{ id: string }>(
    `SELECT nextval(pg_get_serial_sequence('audit_logs', 'id'))::text AS id`,
  );
  const id = idRow.rows[0]!.id;
  // Millisecond precision so the timestamp reads back exactly as hashed.
  const createdAt = new Date(Math.floor((entry.createdAt ?? new Date()).getTime()));
  const content: AuditContent = {
    id,
    actor_user_id: entry.actorUserId === null ? null : String(entry.actorUserId),
    action: entry.action,
    target_type: entry.targetType ?? null,
    target_id: entry.targetId === undefined || entry.targetId === null ? null : String(entry.targetId),
    details: entry.details ?? {},
    created_at: createdAt,
  };
  const hash = auditHash(previous, content);
  await client.query(
    `INSERT INTO audit_logs (id, actor_user_id, action, target_type, target_id, details, created_at, previous_hash, hash)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
    [
      id,
      content.actor_user_id,
      content.action,
      content.target_type,
      content.target_id,
      JSON.stringify(content.details),
      createdAt,
      previous,
      hash,
    ],
  );
  return { id, hash };
}

export type BreakKind = 'missing_hash' | 'content_mismatch' | 'previous_hash_race' | 'previous_hash_mismatch';

export interface VerifyResult {
  valid: boolean;
  checked: number;
  total: number;
  first_break_at: string | null;
  break_kind: BreakKind | null;
  breaks: number;
}

interface Querier {
  query<R extends QueryResultRow>(sql: string, params?: unknown[]): Promise<{ rows: R[] }>;
}

/** Walks the whole chain by id; reports the first break and how it looks. */
export async function verifyChain(db: Querier): Promise<VerifyResult> {
  let lastId = '0';
  let prevStoredHash = GENESIS_HASH;
  let prevStoredPrevious: string | null = null;
  let total = 0;
  let breaks = 0;
  let first: { id: string; kind: BreakKind } | null = null;
  for (;;) {
    const { rows } = await db.query<AuditRow>(
      `SELECT id::text AS id, actor_user_id::text AS actor_user_id, action, target_type, target_id, details, created_at, previous_hash, hash
       FROM audit_logs WHERE audit_logs.id > $1::bigint ORDER BY audit_logs.id LIMIT 1000`,
      [lastId],
    );
    if (rows.length === 0) break;
    for (const row of rows) {
      total++;
      let kind: BreakKind | null = null;
      if (row.hash === null || row.previous_hash === null) kind = 'missing_hash';
      else if (row.previous_hash !== prevStoredHash) {
        kind = row.previous_hash === prevStoredPrevious ? 'previous_hash_race' : 'previous_hash_mismatch';
      } else if (auditHash(row.previous_hash, row) !== row.hash) kind = 'content_mismatch';
      if (kind) {
        breaks++;
        if (!first) first = { id: row.id, kind };
      }
      prevStoredHash = row.hash ?? '';
      prevStoredPrevious = row.previous_hash;
      lastId = row.id;
    }
  }
  return {
    valid: breaks === 0,
    checked: total,
    total,
    first_break_at: first?.id ?? null,
    break_kind: first?.kind ?? null,
    breaks,
  };
}
