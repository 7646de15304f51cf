/**
 * transferNotApplied's verdict when a signal could not be observed: pure, no Temporal or stack. An
 * account or transfer table that could not be read, or a queue key that is no queue, is never read
 * as "no such transfer" or "its job is lost"; the verdict escalates naming what was not observed.
 */
import type { QueueState, TransferRow } from '../../src/activities/postgres/support';
import { checksOf, planTransferNotApplied, queueUnobserved, type TransferFacts } from '../../src/workflows/transfer-not-applied';
import { healthyTransferNotApplied } from '../fixtures/healthy-facts';

const pending: TransferRow = { id: '41', direction: 'sent', amount: 9, status: 'pending', createdAt: '2026-11-27T09:58:00.000Z', appliedAt: null };
const queue: QueueState = { key: 'rq:queue:default', consumer: 'worker', length: 3, lengthAfter: 1, sampleMs: 3000, ahead: {}, scanned: 3, transferJobs: 3, known: true };
const base: TransferFacts = { ...healthyTransferNotApplied, evidenceRule: true };
const lost: TransferFacts = { ...base, transfers: [pending], queue };

describe('transferNotApplied: records that could not be read', () => {
  it.each([
    ['the account', { userError: 'column "no_created_at" does not exist (setting postgres.schema.users.createdAt)', user: { found: false } }, /could not observe the account: .*users\.createdAt/],
    ['token_transfers', { transfersError: 'column "no_applied_at" does not exist (setting postgres.schema.transfers.appliedAt)', transfers: [] }, /could not observe token_transfers: .*transfers\.appliedAt/],
  ] as Array<[string, Partial<TransferFacts>, RegExp]>)('%s unreadable: escalates naming it, never "no such user" or "no such transfer"', (_name, change, expected) => {
    const f = { ...base, ...change };
    const v = planTransferNotApplied(f);
    expect(v.status).toBe('escalated');
    expect(v.escalate).toMatch(expected);
    expect(v.diagnosis).not.toMatch(/no such user|no transfer/);
    expect(checksOf(f).some((c) => c.unknown)).toBe(true);
  });
});

describe("transferNotApplied: a pending transfer whose job is not seen on the queue", () => {
  it('a queue read in full without it: the job was lost (positive control)', () => {
    const v = planTransferNotApplied(lost);
    expect(v.status).toBe('escalated');
    expect(v.diagnosis).toMatch(/its job is missing from the queue rq:queue:default .*: the job was lost/);
    expect(checksOf(lost).some((c) => c.unknown)).toBe(false);
  });
  it.each([
    ['a key that is no queue', { length: 0, lengthAfter: 0, scanned: 0, transferJobs: 0, known: false }, /rq:queue:default is neither a list in Redis nor among RQ's queues .*queue\.key/],
    ['jobs none of which is recognised as a transfer job', { transferJobs: 0 }, /none of the 3 jobs on rq:queue:default is recognised .*queue\.transferFunction/],
    ['jobs beyond those scanned', { length: 30_000, lengthAfter: 29_990, scanned: 20_000, transferJobs: 20_000 }, /only 20000 of the 30000 jobs/],
  ] as Array<[string, Partial<QueueState>, RegExp]>)('%s: escalates as not observed, never "the job was lost"', (_name, change, expected) => {
    const f: TransferFacts = { ...lost, queue: { ...queue, ...change } };
    const v = planTransferNotApplied(f);
    expect(v.status).toBe('escalated');
    expect(v.escalate).toMatch(/^could not observe the transfer's job on the queue: /);
    expect(v.escalate).toMatch(expected);
    expect(v.diagnosis).not.toMatch(/was lost/);
  });
  it('facts of incidents recorded before the rule read it as lost (replay)', () => {
    const old: TransferFacts = { ...lost, evidenceRule: undefined, queue: { ...queue, length: 0, lengthAfter: 0, scanned: 0, known: false } };
    expect(planTransferNotApplied(old).diagnosis).toMatch(/the job was lost/);
  });
});

describe('transferNotApplied: an applied transfer', () => {
  it('with every signal observed is nothing wrong, no unknown check (positive control)', () => {
    expect(planTransferNotApplied(base).status).toBe('nothing-wrong');
    expect(checksOf(base).some((c) => c.unknown)).toBe(false);
  });
  it('with a queue key that is no queue: the queue check is unknown (the false alarm escalates)', () => {
    const f: TransferFacts = { ...base, queue: { ...queue, key: 'rq:queue:nope', length: 0, lengthAfter: 0, scanned: 0, transferJobs: 0, known: false } };
    expect(checksOf(f).find((c) => c.check === 'LLEN rq:queue:nope')).toMatchObject({ unknown: true, detail: expect.stringMatching(/setting queue\.key/) });
  });
  it('with the worker log unreadable: the worker log check is unknown', () => {
    const f: TransferFacts = { ...base, workerLog: { available: false, error: 'no such container', errors: 0, warnings: 0, forTransfers: 0, samples: [] } };
    expect(checksOf(f).find((c) => c.check === 'worker log errors')).toMatchObject({ unknown: true });
  });
  it('an empty queue RQ knows is read, not unknown', () => {
    expect(queueUnobserved({ ...queue, length: 0, lengthAfter: 0, scanned: 0, transferJobs: 0, known: true })).toBeUndefined();
  });
});
