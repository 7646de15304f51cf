/** alembic's output as alembic 1.8 prints it (recorded from the replica's api container). */
import { parseHistory, parseRevisions, revisionsBetween } from '../../src/lib/migration-chain';

const HISTORY = [
  '0003 -> 0004 (head), wallet_currency: wallets.currency (shipped by the 1.2.0-bad release)',
  '0002 -> 0003, request_log_indexes: request_id and created_at indexes on request_logs, created_at on audit_logs',
  '0001 -> 0002, governance_and_refunds: governance_settings, ip_blocks, wallet_topups, drill_counters, one refund per charge',
  '<base> -> 0001, core_ledger: users, wallets, request_logs, audit_logs, token_transfers, approval_requests',
].join('\n');

describe('alembic output', () => {
  test('current and heads: the revision, with or without its (head) mark; log lines are not revisions', () => {
    expect(parseRevisions('0003 (head)\n')).toEqual(['0003']);
    expect(parseRevisions('0002\n')).toEqual(['0002']);
    expect(parseRevisions('')).toEqual([]);
    expect(parseRevisions('INFO  [alembic.runtime.migration] Context impl PostgresqlImpl.\n0003 (head)')).toEqual(['0003']);
    expect(parseRevisions('ae1027a6acf (effective head)\n')).toEqual(['ae1027a6acf']);
  });

  test('history: each revision with the one it revises, newest first', () => {
    expect(parseHistory(HISTORY).map((r) => [r.down, r.revision])).toEqual([
      ['0003', '0004'],
      ['0002', '0003'],
      ['0001', '0002'],
      [null, '0001'],
    ]);
    expect(parseHistory(HISTORY)[0]?.description).toBe('wallet_currency: wallets.currency (shipped by the 1.2.0-bad release)');
  });

  test('the revisions a release brought: above the last good head, up to the database', () => {
    const chain = parseHistory(HISTORY);
    expect(revisionsBetween(chain, '0003', '0004')).toEqual(['0004']);
    expect(revisionsBetween(chain, '0002', '0004')).toEqual(['0004', '0003']);
    expect(revisionsBetween(chain, '0004', '0004')).toEqual([]);
    expect(revisionsBetween(chain, null, '0002')).toEqual(['0002', '0001']);
    // Not below it on this chain (the good release is ahead, or on another branch): unknown, not "none".
    expect(revisionsBetween(chain, '0004', '0003')).toBeUndefined();
    expect(revisionsBetween(chain, 'zzzz', '0004')).toBeUndefined();
  });
});
