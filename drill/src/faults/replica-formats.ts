/**
 * What the fault injector must compute exactly as the replica (drill/alfred) does, to plant or undo a
 * fault in its data: the audit chain's hash (app/audit_chain.py), billing periods (app/billing.py)
 * and semantic-cache keys (app/cache.py). The replica is the reference; test/drill checks that both
 * agree (a planted break is found at the planted row, a poisoned entry answers the known prompt).
 */
import { createHash } from 'node:crypto';

/**
 * hash = sha256_hex(previous_hash + canonical_json(content)), content = {action, actor_user_id,
 * created_at (ISO-8601 UTC, ms), details, id (string), target_id, target_type} with keys sorted at
 * every level; previous_hash is the hash of the row before it by id (GENESIS_HASH for the first row).
 */
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

/** The advisory lock the replica's resets, its cron and the fault injector's billing edits share. */
export const BILLING_LOCK = 7_402_377;

const isoDay = (d: Date) => d.toISOString().slice(0, 10);

/** First day (YYYY-MM-DD) of the calendar month, UTC, that contains `at`: a billing period. */
export function periodStart(at: Date): string {
  return isoDay(new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), 1)));
}

/** First day of the period before the one that contains `at`. */
export function previousPeriodStart(at: Date): string {
  return isoDay(new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() - 1, 1)));
}

/** `alfred:cache:<sha256(normalised prompt)>` (seed 002: `alfred:cache:*`). */
export const CACHE_PREFIX = 'alfred:cache:';

export function normalisePrompt(prompt: string): string {
  return prompt
    .toLowerCase()
    .replace(/[^a-z0-9+\-*/.\s]/g, ' ')
    .replace(/\.(?=\s|$)/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

export function cacheKey(prompt: string): string {
  return CACHE_PREFIX + createHash('sha256').update(normalisePrompt(prompt)).digest('hex');
}
