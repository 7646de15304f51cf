/**
 * The target's tamper-evident audit chain (INC-09), read and repaired in its own database:
 *   hash = sha256_hex(previous_hash + canonical_json(content)), previous_hash = the hash of the row
 * before it by id (64 zeros for the first), content = {action, actor_user_id, created_at (ISO-8601,
 * ms), details, id, target_id, target_type} with keys sorted at every level.
 *
 * Reading the entries around a break tells how it came about (missing hashes, changed content, two
 * writers on one chain head). Evidence export only reads. The one write, the forward re-hash after a
 * migration wrote entries without hashes, refuses to touch an entry whose content no longer matches
 * its own hash: that is tampering, and tampered entries are evidence, never rewritten.
 */
import { createHash } from 'node:crypto';
import type { PgQueryable } from './pg-exec';
import { heartbeat } from '@temporalio/activity';
import type { ActivityDeps } from '../engine/deps';
import { ErrorType, permanent } from '../engine/errors';
import { checkEvidence, incidentEvidenceDir, preserveEvidence, type EvidenceBundle } from '../engine/evidence';
import { answerReader } from '../target-api/api-fields';
import { createHttpActivities } from '../target-api/http';
import { withPgClient } from './postgres';

export const GENESIS_HASH = '0'.repeat(64);

/** The target's own chain verify, in the engine's shape. */
export interface AuditVerdict {
  valid: boolean;
  firstBreakAt: string | null;
  /** The target's name for the first break; null when it gives none. */
  breakKind: string | null;
  /** null: not reported (the answer lacks the field; `unreadable` names its setting). */
  breaks: number | null;
  total: number | null;
  unreadable?: string;
}

const VERIFY_PATH = '/v1/admin/audit-logs/verify';

interface AuditRow {
  id: string;
  actor_user_id: string | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  details: unknown;
  created_at: Date;
  previous_hash: string | null;
  hash: string | null;
}

/** One entry as a runbook sees it: hashes shortened, no details (they may name people). */
export interface AuditEntryView {
  id: string;
  action: string;
  createdAt: string;
  previousHash: string | null;
  hash: string | null;
  hashMissing: boolean;
  /** previous_hash is the stored hash of the entry before it. */
  linksToPrevious: boolean;
  /** previous_hash is what the entry before it linked to: two writers read the same chain head. */
  linksToPreviousPrevious: boolean;
  /** The stored hash is the hash of the stored content over the stored previous_hash. */
  contentMatches: boolean;
}

export interface AuditNeighbourhood {
  broken?: AuditEntryView;
  entries: AuditEntryView[];
  /** Consecutive entries from the broken one on that lack a hash. */
  missingRun: number;
}

// Qualified column names below: an unqualified ORDER BY id would sort by the text alias.
const ROW_SQL = `SELECT id::text AS id, actor_user_id::text AS actor_user_id, action, target_type, target_id, details,
  created_at, previous_hash, hash FROM audit_logs`;

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object' && !(value instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) out[key] = sortKeys((value as Record<string, unknown>)[key]);
    return out;
  }
  return value;
}

export function auditHash(previousHash: string, row: AuditRow): string {
  const content = JSON.stringify(
    sortKeys({
      action: row.action,
      actor_user_id: row.actor_user_id,
      created_at: new Date(row.created_at).toISOString(),
      details: row.details ?? {},
      id: row.id,
      target_id: row.target_id,
      target_type: row.target_type,
    }),
  );
  return createHash('sha256')
    .update(previousHash + content)
    .digest('hex');
}

const short = (h: string | null): string | null => (h ? `${h.slice(0, 12)}…` : null);

function view(row: AuditRow, before: AuditRow | undefined): AuditEntryView {
  const expectedPrevious = before ? before.hash : GENESIS_HASH;
  const hashMissing = row.hash === null || row.previous_hash === null;
  return {
    id: row.id,
    action: row.action,
    createdAt: new Date(row.created_at).toISOString(),
    previousHash: short(row.previous_hash),
    hash: short(row.hash),
    hashMissing,
    linksToPrevious: !hashMissing && row.previous_hash === expectedPrevious,
    linksToPreviousPrevious: !hashMissing && before !== undefined && row.previous_hash === (before.previous_hash ?? GENESIS_HASH),
    contentMatches: !hashMissing && auditHash(row.previous_hash as string, row) === row.hash,
  };
}

const ID = /^[1-9][0-9]{0,17}$/;

export function createAuditChainActivities(deps: ActivityDeps) {
  /** The broken entry, `around` entries on each side, and how many entries from it lack hashes. */
  async function auditNeighbourhood(input: { target: string; id: string; around?: number }): Promise<AuditNeighbourhood> {
    if (!ID.test(input.id)) throw permanent(ErrorType.BadInput, 'audit entry id must be a positive integer');
    const around = Math.min(Math.max(input.around ?? 2, 0), 10);
    return withPgClient(deps, input.target, async (c) => {
      const before = await c.query<AuditRow>(`${ROW_SQL} WHERE audit_logs.id < $1 ORDER BY audit_logs.id DESC LIMIT $2`, [input.id, around + 1]);
      const after = await c.query<AuditRow>(`${ROW_SQL} WHERE audit_logs.id >= $1 ORDER BY audit_logs.id LIMIT $2`, [input.id, around + 1]);
      const rows = [...before.rows.reverse(), ...after.rows];
      // The first row fetched only serves as the predecessor of the first one shown.
      const skip = before.rows.length > around ? 1 : 0;
      const entries = rows.slice(skip).map((r, i) => view(r, rows[i + skip - 1]));
      const run = await c.query<{ n: string }>(
        `SELECT count(*)::text AS n FROM audit_logs WHERE id >= $1 AND id < coalesce(
           (SELECT min(id) FROM audit_logs WHERE id >= $1 AND hash IS NOT NULL AND previous_hash IS NOT NULL), 'Infinity'::numeric)`,
        [input.id],
      );
      const broken = entries.find((e) => e.id === input.id);
      return { ...(broken ? { broken } : {}), entries, missingRun: Number(run.rows[0]?.n ?? 0) };
    });
  }

  /** Exports every audit entry and the chain verdict, with a sha256 manifest; never writes to the table. */
  async function exportAuditEvidence(input: { target: string; incidentId: string; verdict: Record<string, unknown> }): Promise<EvidenceBundle> {
    const dir = incidentEvidenceDir(deps, input.incidentId);
    const rows = await withPgClient(deps, input.target, (c) => c.query<AuditRow>(`${ROW_SQL} ORDER BY audit_logs.id`), 60_000);
    const lines = rows.rows.map((r) => JSON.stringify({ ...r, created_at: new Date(r.created_at).toISOString() }));
    return preserveEvidence(dir, [
      { name: 'audit_logs.jsonl', content: lines.map((l) => `${l}\n`).join('') },
      { name: 'chain-verify.json', content: `${JSON.stringify({ target: input.target, exportedRows: rows.rows.length, ...input.verdict }, null, 2)}\n` },
    ]);
  }

  async function checkIncidentEvidence(input: { incidentId: string }): Promise<{ ok: boolean; detail: string }> {
    const r = await checkEvidence(incidentEvidenceDir(deps, input.incidentId));
    return { ok: r.ok, detail: r.detail };
  }

  /**
   * Re-computes the chain forward from `fromId`: fills entries without hashes and re-links the
   * entries after them. Refuses (and changes nothing) if an entry's content does not match its own
   * hash. One transaction; concurrent writers wait. Re-running on a repaired chain changes nothing.
   */
  async function rehashAuditChain(input: { target: string; fromId: string }): Promise<{ updated: string[] }> {
    if (!ID.test(input.fromId)) throw permanent(ErrorType.BadInput, 'audit entry id must be a positive integer');
    return withPgClient(
      deps,
      input.target,
      async (c) => {
        await c.query('BEGIN');
        try {
          const updated = await rehashInTransaction(c, input.fromId);
          await c.query('COMMIT');
          return { updated };
        } catch (err) {
          await c.query('ROLLBACK');
          throw err;
        }
      },
      120_000,
    );
  }

  async function rehashInTransaction(c: PgQueryable, fromId: string): Promise<string[]> {
    await c.query('LOCK TABLE audit_logs IN SHARE ROW EXCLUSIVE MODE');
    const head = await c.query<{ hash: string | null }>('SELECT hash FROM audit_logs WHERE id < $1 ORDER BY id DESC LIMIT 1', [fromId]);
    let previous = head.rows[0] ? head.rows[0].hash : GENESIS_HASH;
    if (previous === null) throw permanent(ErrorType.Refused, `the entry before ${fromId} has no hash: start the re-hash earlier`);
    const rows = await c.query<AuditRow>(`${ROW_SQL} WHERE audit_logs.id >= $1 ORDER BY audit_logs.id`, [fromId]);
    // The hash definition is the engine's reading of the target's (not in the seeds). Before anything
    // is written it must reproduce the hashes the chain already holds: the entries before the break,
    // and below, every hashed entry after it. Hashes it cannot show to be the target's are not written.
    const known = await c.query<AuditRow>(
      `${ROW_SQL} WHERE audit_logs.id < $1 AND audit_logs.hash IS NOT NULL AND audit_logs.previous_hash IS NOT NULL ORDER BY audit_logs.id DESC LIMIT 20`,
      [fromId],
    );
    const hashedAfter = rows.rows.filter((r) => r.hash !== null && r.previous_hash !== null);
    if (known.rows.length === 0 && hashedAfter.length === 0) {
      throw permanent(ErrorType.Refused, `no audit entry holds a hash to check the hash definition against: not writing hashes that cannot be shown to be the target's`);
    }
    const unlike = known.rows.find((r) => auditHash(r.previous_hash as string, r) !== r.hash);
    if (unlike) {
      throw permanent(
        ErrorType.Refused,
        `the hash definition does not reproduce the stored hash of audit entry ${unlike.id}, before the break: the target hashes its entries otherwise; re-hashing with it would write hashes the target's verification rejects`,
      );
    }
    const updated: string[] = [];
    for (const row of rows.rows) {
      const missing = row.hash === null || row.previous_hash === null;
      if (!missing && auditHash(row.previous_hash as string, row) !== row.hash) {
        throw permanent(ErrorType.Refused, `audit entry ${row.id} does not match its own hash (possible tampering); refusing to re-hash over it`);
      }
      if (!missing && row.previous_hash === previous) {
        previous = row.hash as string;
        continue;
      }
      const hash = auditHash(previous, row);
      await c.query('UPDATE audit_logs SET previous_hash = $2, hash = $3 WHERE id = $1', [row.id, previous, hash]);
      updated.push(row.id);
      previous = hash;
      if (updated.length % 500 === 0) heartbeat({ updated: updated.length });
    }
    return updated;
  }

  /**
   * seed 002: `POST /v1/admin/audit-logs/verify`, `jq '.valid'`, `first_break_at`; the other fields
   * by `api.fields.auditVerify`. A verdict without `valid` fails: it is never taken as either answer.
   */
  async function auditChainVerify(input: { target: string }): Promise<AuditVerdict> {
    const res = await createHttpActivities(deps).adminRequest({ target: input.target, method: 'POST', path: VERIFY_PATH });
    const b = (res.body && typeof res.body === 'object' ? res.body : {}) as Record<string, unknown>;
    if (typeof b.valid !== 'boolean') throw permanent(ErrorType.Refused, `POST ${VERIFY_PATH} answered without a boolean \`valid\``);
    const r = answerReader(deps, input.target, 'auditVerify', `POST ${VERIFY_PATH}`, b);
    const breakKind = r.nullableString('breakKind');
    const breaks = r.number('breaks');
    const total = r.number('total');
    return {
      valid: b.valid,
      firstBreakAt: b.first_break_at === null || b.first_break_at === undefined ? null : String(b.first_break_at),
      breakKind: breakKind ?? null,
      breaks: breaks ?? null,
      total: total ?? null,
      ...(r.problems.length ? { unreadable: r.problems.join('; ') } : {}),
    };
  }

  return { auditNeighbourhood, exportAuditEvidence, checkIncidentEvidence, rehashAuditChain, auditChainVerify };
}
