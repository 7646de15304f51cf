/**
 * The target's tamper-evident audit chain (INC-09), read and repaired in its own database. How an
 * entry is hashed is the target's own definition, the setting `audit.hash` (`audit-hash.ts`); the
 * default is the replica's:
 *   hash = sha256_hex(previous_hash + canonical_json(content)), previous_hash = the hash of the row
 * before it by id (64 zeros for the first), content = {action, actor_user_id, created_at (ISO-8601,
 * ms), details, id, target_id, target_type} with keys sorted at every level.
 *
 * Reading the entries around a break tells how it came about (missing hashes, changed content, two
 * writers on one chain head), and whether the definition reproduces the hashes of the entries before
 * the break. Evidence export only reads. The one write, the forward re-hash after a migration wrote
 * entries without hashes, writes nothing unless the definition reproduces those stored hashes, and
 * refuses to touch an entry whose content no longer matches its own hash: that is tampering, and
 * tampered entries are evidence, never rewritten.
 */
import type { PgQueryable } from './pg-exec';
import { escapeIdentifier } from './pg-exec';
import { heartbeat } from '@temporalio/activity';
import { auditHashDefinition, type AuditHashDefinition } from '../../config';
import type { ActivityDeps } from '../engine/deps';
import { targetConfig } from '../engine/deps';
import { ErrorType, permanent } from '../engine/errors';
import { checkEvidence, incidentEvidenceDir, preserveEvidence, type EvidenceBundle } from '../engine/evidence';
import { answerReader } from '../target-api/api-fields';
import { createHttpActivities } from '../target-api/http';
import { withPgClient } from './postgres';
import { AUDIT_HASH_SETTING, checkDefinition, hashColumns, hashEntry, type DefinitionCheck, type StoredEntry } from './audit-hash';

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

/** An entry as read: the columns the seeds quote, and the hashed columns (`audit.hash.columns`) keyed by name. */
interface AuditRow extends StoredEntry {
  actor_user_id: string | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  created_at: Date;
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
  /** The stored hash is the hash of the stored content over the stored previous_hash (by `audit.hash`). */
  contentMatches: boolean;
}

export interface AuditNeighbourhood {
  broken?: AuditEntryView;
  entries: AuditEntryView[];
  /** Consecutive entries from the broken one on that lack a hash. */
  missingRun: number;
  /**
   * Whether the hash definition (`audit.hash`) reproduces the stored hashes of the entries before the
   * break; `contentMatches` above means something only when it does. Absent in incidents recorded
   * before the definition was checked.
   */
  definition?: DefinitionCheck;
}

/** The replica's definition: the schema's defaults. */
export const DEFAULT_AUDIT_HASH: AuditHashDefinition = auditHashDefinition.parse(undefined);
export const GENESIS_HASH = DEFAULT_AUDIT_HASH.genesis;

// Qualified column names below: an unqualified ORDER BY id would sort by the text alias.
const SEED_COLUMNS = `audit_logs.id::text AS id, audit_logs.actor_user_id::text AS actor_user_id, audit_logs.action,
  audit_logs.target_type, audit_logs.target_id, audit_logs.created_at, audit_logs.previous_hash, audit_logs.hash`;

/** SELECT of every entry column the engine reads: the seeds' and the hashed ones (as hc_0, hc_1, ...). */
function rowSql(def: AuditHashDefinition): string {
  const hashed = hashColumns(def).map((c, i) => `, audit_logs.${escapeIdentifier(c.column)} AS hc_${i}`);
  return `SELECT ${SEED_COLUMNS}${hashed.join('')} FROM audit_logs`;
}

function toRow(def: AuditHashDefinition, raw: Record<string, unknown>): AuditRow {
  const content: Record<string, unknown> = {};
  hashColumns(def).forEach((c, i) => {
    content[c.column] = raw[`hc_${i}`];
  });
  return {
    id: raw.id as string,
    actor_user_id: raw.actor_user_id as string | null,
    action: raw.action as string,
    target_type: raw.target_type as string | null,
    target_id: raw.target_id as string | null,
    created_at: raw.created_at as Date,
    previous_hash: raw.previous_hash as string | null,
    hash: raw.hash as string | null,
    content,
  };
}

/** The hash of an entry by a definition (the replica's by default); `row` keyed by column name. */
export function auditHash(previousHash: string, row: Record<string, unknown>, def: AuditHashDefinition = DEFAULT_AUDIT_HASH): string {
  return hashEntry(def, previousHash, row);
}

const short = (h: string | null): string | null => (h ? `${h.slice(0, 12)}…` : null);

function view(def: AuditHashDefinition, row: AuditRow, before: AuditRow | undefined): AuditEntryView {
  const expectedPrevious = before ? before.hash : def.genesis;
  const hashMissing = row.hash === null || row.previous_hash === null;
  return {
    id: row.id,
    action: row.action,
    createdAt: new Date(row.created_at).toISOString(),
    previousHash: short(row.previous_hash),
    hash: short(row.hash),
    hashMissing,
    linksToPrevious: !hashMissing && row.previous_hash === expectedPrevious,
    linksToPreviousPrevious: !hashMissing && before !== undefined && row.previous_hash === (before.previous_hash ?? def.genesis),
    contentMatches: !hashMissing && hashEntry(def, row.previous_hash as string, row.content) === row.hash,
  };
}

const UNDEFINED_COLUMN = '42703';

/** Rows of a statement built with `rowSql`; a hashed column the table lacks fails naming `audit.hash.columns`. */
async function readRows(c: PgQueryable, target: string, def: AuditHashDefinition, sql: string, params: unknown[]): Promise<AuditRow[]> {
  try {
    const r = await c.query<Record<string, unknown>>(sql, params);
    return r.rows.map((raw) => toRow(def, raw));
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code;
    const message = err instanceof Error ? err.message : String(err);
    const named = hashColumns(def).find((col) => message.includes(`${col.column} does not exist`) || message.includes(`"${col.column}" does not exist`));
    if (code === UNDEFINED_COLUMN && named) {
      throw permanent(
        ErrorType.NotConfigured,
        `column "${named.column}" of the hash definition (setting targets.${target}.${AUDIT_HASH_SETTING}.columns) does not exist in audit_logs: ${message}`,
      );
    }
    throw err;
  }
}

function hashDefinition(deps: ActivityDeps, target: string): AuditHashDefinition {
  return targetConfig(deps, target).audit.hash;
}

/** The entries before `id` that hold both hashes (those the target's verification passed), latest first. */
function verifiedBefore(c: PgQueryable, target: string, def: AuditHashDefinition, id: string): Promise<AuditRow[]> {
  return readRows(
    c,
    target,
    def,
    `${rowSql(def)} WHERE audit_logs.id < $1 AND audit_logs.hash IS NOT NULL AND audit_logs.previous_hash IS NOT NULL ORDER BY audit_logs.id DESC LIMIT 20`,
    [id],
  );
}

const ID = /^[1-9][0-9]{0,17}$/;

export function createAuditChainActivities(deps: ActivityDeps) {
  /**
   * The broken entry, `around` entries on each side, how many entries from it lack hashes, and whether
   * the hash definition (`audit.hash`) reproduces the stored hashes of the entries before it.
   */
  async function auditNeighbourhood(input: { target: string; id: string; around?: number }): Promise<AuditNeighbourhood> {
    if (!ID.test(input.id)) throw permanent(ErrorType.BadInput, 'audit entry id must be a positive integer');
    const around = Math.min(Math.max(input.around ?? 2, 0), 10);
    const def = hashDefinition(deps, input.target);
    return withPgClient(deps, input.target, async (c) => {
      const before = await readRows(c, input.target, def, `${rowSql(def)} WHERE audit_logs.id < $1 ORDER BY audit_logs.id DESC LIMIT $2`, [input.id, around + 1]);
      const after = await readRows(c, input.target, def, `${rowSql(def)} WHERE audit_logs.id >= $1 ORDER BY audit_logs.id LIMIT $2`, [input.id, around + 1]);
      const rows = [...before.reverse(), ...after];
      // The first row fetched only serves as the predecessor of the first one shown.
      const skip = before.length > around ? 1 : 0;
      const entries = rows.slice(skip).map((r, i) => view(def, r, rows[i + skip - 1]));
      const run = await c.query<{ n: string }>(
        `SELECT count(*)::text AS n FROM audit_logs WHERE id >= $1 AND id < coalesce(
           (SELECT min(id) FROM audit_logs WHERE id >= $1 AND hash IS NOT NULL AND previous_hash IS NOT NULL), 'Infinity'::numeric)`,
        [input.id],
      );
      const definition = checkDefinition(def, await verifiedBefore(c, input.target, def, input.id));
      const broken = entries.find((e) => e.id === input.id);
      return { ...(broken ? { broken } : {}), entries, missingRun: Number(run.rows[0]?.n ?? 0), definition };
    });
  }

  /** Exports every audit entry and the chain verdict, with a sha256 manifest; never writes to the table. */
  async function exportAuditEvidence(input: { target: string; incidentId: string; verdict: Record<string, unknown> }): Promise<EvidenceBundle> {
    const dir = incidentEvidenceDir(deps, input.incidentId);
    const def = hashDefinition(deps, input.target);
    const rows = await withPgClient(deps, input.target, (c) => readRows(c, input.target, def, `${rowSql(def)} ORDER BY audit_logs.id`, []), 60_000);
    const iso = (v: unknown) => (v instanceof Date ? v.toISOString() : v);
    const lines = rows.map((r) => {
      const content = Object.fromEntries(Object.entries(r.content).map(([k, v]) => [k, iso(v)]));
      const { content: _content, ...seedColumns } = r;
      return JSON.stringify({ ...content, ...seedColumns, created_at: new Date(r.created_at).toISOString() });
    });
    return preserveEvidence(dir, [
      { name: 'audit_logs.jsonl', content: lines.map((l) => `${l}\n`).join('') },
      { name: 'chain-verify.json', content: `${JSON.stringify({ target: input.target, exportedRows: rows.length, ...input.verdict }, null, 2)}\n` },
    ]);
  }

  async function checkIncidentEvidence(input: { incidentId: string }): Promise<{ ok: boolean; detail: string }> {
    const r = await checkEvidence(incidentEvidenceDir(deps, input.incidentId));
    return { ok: r.ok, detail: r.detail };
  }

  /**
   * Re-computes the chain forward from `fromId` with the target's hash definition (`audit.hash`):
   * fills entries without hashes and re-links the entries after them. Writes nothing unless the
   * definition reproduces the stored hashes of the entries before `fromId`; refuses (and changes
   * nothing) if an entry's content does not match its own hash. One transaction; concurrent writers
   * wait. Re-running on a repaired chain changes nothing.
   */
  async function rehashAuditChain(input: { target: string; fromId: string }): Promise<{ updated: string[] }> {
    if (!ID.test(input.fromId)) throw permanent(ErrorType.BadInput, 'audit entry id must be a positive integer');
    const def = hashDefinition(deps, input.target);
    return withPgClient(
      deps,
      input.target,
      async (c) => {
        await c.query('BEGIN');
        try {
          const updated = await rehashInTransaction(c, input.target, def, input.fromId);
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

  async function rehashInTransaction(c: PgQueryable, target: string, def: AuditHashDefinition, fromId: string): Promise<string[]> {
    await c.query('LOCK TABLE audit_logs IN SHARE ROW EXCLUSIVE MODE');
    const head = await c.query<{ hash: string | null }>('SELECT hash FROM audit_logs WHERE id < $1 ORDER BY id DESC LIMIT 1', [fromId]);
    let previous = head.rows[0] ? head.rows[0].hash : def.genesis;
    if (previous === null) throw permanent(ErrorType.Refused, `the entry before ${fromId} has no hash: start the re-hash earlier`);
    // The hash definition is a setting (the seeds state none). Before anything is written it must
    // reproduce the hashes the entries before the break hold: hashes it cannot show to be the
    // target's are not written.
    const check = checkDefinition(def, await verifiedBefore(c, target, def, fromId));
    if (!check.reproduced) throw permanent(ErrorType.Refused, `${check.detail}; nothing written`);
    const rows = await readRows(c, target, def, `${rowSql(def)} WHERE audit_logs.id >= $1 ORDER BY audit_logs.id`, [fromId]);
    const updated: string[] = [];
    for (const row of rows) {
      const missing = row.hash === null || row.previous_hash === null;
      if (!missing && hashEntry(def, row.previous_hash as string, row.content) !== row.hash) {
        throw permanent(ErrorType.Refused, `audit entry ${row.id} does not match its own hash (possible tampering); refusing to re-hash over it`);
      }
      if (!missing && row.previous_hash === previous) {
        previous = row.hash as string;
        continue;
      }
      const hash = hashEntry(def, previous, row.content);
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
