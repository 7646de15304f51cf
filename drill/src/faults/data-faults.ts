/** Faults written straight into the drill's database, as a bad migration, a tamperer or a racing writer would. */
import { randomBytes } from 'node:crypto';
import type { Client } from 'pg';
import { auditHash, GENESIS_HASH, type AuditRow } from './replica-formats';

export type AuditBreakKind = 'tamper' | 'missing-hash' | 'race';
export const AUDIT_BREAK_KINDS: readonly AuditBreakKind[] = ['tamper', 'missing-hash', 'race'];

// Positions in the chain (0-based, by id) where each kind is planted: mid-chain, apart from each other.
const TAMPER_AT = 19;
const RACE_AT = 24;
const MISSING_FROM = 29;
const MISSING_RUN = 5;

/** Remembers what a fault changed, so its undo restores exactly that. Lives beside the data it describes. */
export async function ensureStateTable(pg: Client): Promise<void> {
  await pg.query(
    `CREATE TABLE IF NOT EXISTS drill_fault_state (name text PRIMARY KEY, data jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`,
  );
}

async function getState<T>(pg: Client, name: string): Promise<T | undefined> {
  await ensureStateTable(pg);
  const { rows } = await pg.query<{ data: T }>('SELECT data FROM drill_fault_state WHERE name = $1', [name]);
  return rows[0]?.data;
}

async function setState(pg: Client, name: string, data: unknown): Promise<void> {
  await ensureStateTable(pg);
  await pg.query(
    `INSERT INTO drill_fault_state (name, data) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET data = EXCLUDED.data, created_at = now()`,
    [name, JSON.stringify(data)],
  );
}

async function clearState(pg: Client, name: string): Promise<void> {
  await ensureStateTable(pg);
  await pg.query('DELETE FROM drill_fault_state WHERE name = $1', [name]);
}

const ROW_SQL = `SELECT id::text AS id, actor_user_id::text AS actor_user_id, action, target_type, target_id, details,
  created_at, previous_hash, hash FROM audit_logs`;

async function rowAt(pg: Client, offset: number): Promise<AuditRow> {
  const { rows } = await pg.query<AuditRow>(`${ROW_SQL} ORDER BY audit_logs.id OFFSET $1 LIMIT 1`, [offset]);
  if (!rows[0]) throw new Error(`the audit chain has fewer than ${offset + 1} entries`);
  return rows[0];
}

async function rowBefore(pg: Client, id: string): Promise<AuditRow | undefined> {
  const { rows } = await pg.query<AuditRow>(`${ROW_SQL} WHERE audit_logs.id < $1 ORDER BY audit_logs.id DESC LIMIT 1`, [
    id,
  ]);
  return rows[0];
}

async function rowById(pg: Client, id: string): Promise<AuditRow | undefined> {
  const { rows } = await pg.query<AuditRow>(`${ROW_SQL} WHERE audit_logs.id = $1`, [id]);
  return rows[0];
}

export interface BreakResult {
  kind: AuditBreakKind;
  id: string;
  changed: boolean;
  message: string;
}

export async function breakAuditChain(pg: Client, kind: AuditBreakKind): Promise<BreakResult> {
  if (kind === 'tamper') {
    const prior = await getState<{ id: string }>(pg, 'audit-tamper');
    if (prior) return { kind, id: prior.id, changed: false, message: `audit row ${prior.id} already tampered` };
    const row = await rowAt(pg, TAMPER_AT);
    await setState(pg, 'audit-tamper', { id: row.id, details: row.details });
    await pg.query(
      `UPDATE audit_logs SET details = details || '{"amount": 99999, "approved_by": "mallory"}'::jsonb WHERE id = $1`,
      [row.id],
    );
    return {
      kind,
      id: row.id,
      changed: true,
      message: `tampered with details of audit row ${row.id} (hashes left as they were)`,
    };
  }
  if (kind === 'missing-hash') {
    const first = await rowAt(pg, MISSING_FROM);
    if (first.hash === null)
      return { kind, id: first.id, changed: false, message: `audit rows from ${first.id} already lack hashes` };
    const { rows } = await pg.query<{ id: string }>(
      `UPDATE audit_logs SET hash = NULL, previous_hash = NULL
       WHERE id IN (SELECT id FROM audit_logs ORDER BY id OFFSET $1 LIMIT $2) RETURNING id::text AS id`,
      [MISSING_FROM, MISSING_RUN],
    );
    const ids = rows.map((r) => r.id).sort((a, b) => Number(a) - Number(b));
    return {
      kind,
      id: first.id,
      changed: true,
      message: `cleared hash and previous_hash on audit rows ${ids.join(', ')}`,
    };
  }
  const prior = await getState<{ id: string }>(pg, 'audit-race');
  if (prior)
    return { kind, id: prior.id, changed: false, message: `audit row ${prior.id} already shares its previous_hash` };
  const row = await rowAt(pg, RACE_AT);
  const before = await rowBefore(pg, row.id);
  if (!before) throw new Error('the race needs a row before it');
  // Two writers read the same chain head: this row links to what its predecessor linked to.
  const previous = before.previous_hash ?? GENESIS_HASH;
  await setState(pg, 'audit-race', { id: row.id });
  await pg.query('UPDATE audit_logs SET previous_hash = $2, hash = $3 WHERE id = $1', [
    row.id,
    previous,
    auditHash(previous, row),
  ]);
  return {
    kind,
    id: row.id,
    changed: true,
    message: `audit rows ${before.id} and ${row.id} now share previous_hash ${previous.slice(0, 12)}…`,
  };
}

export async function repairAuditChain(pg: Client, kind: AuditBreakKind): Promise<string> {
  if (kind === 'tamper') {
    const prior = await getState<{ id: string; details: unknown }>(pg, 'audit-tamper');
    if (!prior) return 'no tampered audit row recorded; nothing to restore';
    await pg.query('UPDATE audit_logs SET details = $2 WHERE id = $1', [prior.id, JSON.stringify(prior.details)]);
    await clearState(pg, 'audit-tamper');
    return `restored the original details of audit row ${prior.id}`;
  }
  if (kind === 'missing-hash') {
    // Recompute the chain across rows without hashes, from the stored hash before each gap.
    const { rows } = await pg.query<AuditRow>(`${ROW_SQL} ORDER BY audit_logs.id`);
    let previous = GENESIS_HASH;
    const fixed: string[] = [];
    for (const row of rows) {
      if (row.hash === null || row.previous_hash === null) {
        const hash = auditHash(previous, row);
        await pg.query('UPDATE audit_logs SET previous_hash = $2, hash = $3 WHERE id = $1', [row.id, previous, hash]);
        fixed.push(row.id);
        previous = hash;
      } else previous = row.hash;
    }
    return fixed.length ? `recomputed hashes of audit rows ${fixed.join(', ')}` : 'no audit rows without hashes';
  }
  const prior = await getState<{ id: string }>(pg, 'audit-race');
  if (!prior) return 'no raced audit row recorded; nothing to restore';
  const row = await rowById(pg, prior.id);
  const before = row ? await rowBefore(pg, row.id) : undefined;
  if (row && before?.hash) {
    await pg.query('UPDATE audit_logs SET previous_hash = $2, hash = $3 WHERE id = $1', [
      row.id,
      before.hash,
      auditHash(before.hash, row),
    ]);
  }
  await clearState(pg, 'audit-race');
  return `relinked audit row ${prior.id} to its predecessor`;
}

interface DuplicatePair {
  user_id: string;
  original_id: string;
  duplicate_id: string;
  amount: number;
}

/** A retried charge applied twice: pairs of deductions with one request_id, both charged. */
export async function insertDuplicateCharges(pg: Client, users = ['2', '3', '4']): Promise<string[]> {
  const prior = await getState<DuplicatePair[]>(pg, 'duplicate-charges');
  if (prior) return [`duplicate charges already present for users ${prior.map((p) => p.user_id).join(', ')}`];
  const pairs: DuplicatePair[] = [];
  await pg.query('BEGIN');
  try {
    for (const [i, userId] of users.entries()) {
      const requestId = `req_${randomBytes(8).toString('hex')}`;
      const amount = 40 + i * 15;
      const { rows } = await pg.query<{ id: string }>(
        `INSERT INTO request_logs (request_id, user_id, amount, model, provider, status, created_at)
         VALUES ($1, $2, $3, 'gpt-4o', 'openai', 'completed', now() - interval '3 minutes'),
                ($1, $2, $3, 'gpt-4o', 'openai', 'completed', now() - interval '3 minutes' + interval '400 milliseconds')
         RETURNING id::text AS id`,
        [requestId, userId, amount],
      );
      const ids = rows.map((r) => r.id).sort((a, b) => Number(a) - Number(b));
      await pg.query('UPDATE users SET used_tokens = used_tokens + $2 WHERE id = $1', [userId, amount * 2]);
      await pg.query('UPDATE wallets SET balance = balance - $2, updated_at = now() WHERE user_id = $1', [
        userId,
        amount * 2,
      ]);
      pairs.push({ user_id: userId, original_id: ids[0]!, duplicate_id: ids[1]!, amount });
    }
    await setState(pg, 'duplicate-charges', pairs);
    await pg.query('COMMIT');
  } catch (err) {
    await pg.query('ROLLBACK');
    throw err;
  }
  return pairs.map(
    (p) =>
      `user ${p.user_id}: request_logs ${p.original_id} and ${p.duplicate_id} both charge ${p.amount} for one request`,
  );
}

/** Removes the planted charges and any refunds issued against them, restoring balances to their net. */
export async function removeDuplicateCharges(pg: Client): Promise<string[]> {
  const pairs = await getState<DuplicatePair[]>(pg, 'duplicate-charges');
  if (!pairs) return ['no planted duplicate charges recorded'];
  const out: string[] = [];
  await pg.query('BEGIN');
  try {
    for (const p of pairs) {
      const ids = [p.original_id, p.duplicate_id];
      const { rows } = await pg.query<{ net: string | null }>(
        `SELECT sum(amount)::text AS net FROM request_logs WHERE id = ANY($1::bigint[]) OR refund_of = ANY($1::bigint[])`,
        [ids],
      );
      const net = Number(rows[0]?.net ?? 0);
      await pg.query('DELETE FROM request_logs WHERE refund_of = ANY($1::bigint[])', [ids]);
      await pg.query('DELETE FROM request_logs WHERE id = ANY($1::bigint[])', [ids]);
      await pg.query('UPDATE users SET used_tokens = GREATEST(0, used_tokens - $2) WHERE id = $1', [p.user_id, net]);
      await pg.query('UPDATE wallets SET balance = balance + $2, updated_at = now() WHERE user_id = $1', [
        p.user_id,
        net,
      ]);
      out.push(`user ${p.user_id}: removed planted charges (net ${net} given back)`);
    }
    await pg.query(`DELETE FROM drill_fault_state WHERE name = 'duplicate-charges'`);
    await pg.query('COMMIT');
  } catch (err) {
    await pg.query('ROLLBACK');
    throw err;
  }
  return out;
}

/** Pending transfers to back a queue backlog with real rows. */
export async function insertPendingTransfers(pg: Client, count: number): Promise<number[]> {
  const { rows } = await pg.query<{ id: string }>(
    `INSERT INTO token_transfers (sender_id, recipient_id, amount, status)
     SELECT 2 + (g % 10), 2 + ((g + 3) % 10), 1 + (g % 50), 'pending' FROM generate_series(1, $1) AS g
     RETURNING id::text AS id`,
    [count],
  );
  return rows.map((r) => Number(r.id));
}
