/** transferNotApplied's verdict: a pure function over findings, no Temporal needed. */
import { planTransferNotApplied, type TransferFacts } from '../../src/workflows/transfer-not-applied';
import { healthyTransferNotApplied } from '../fixtures/healthy-facts';

const pending = { id: '42', direction: 'sent' as const, amount: 9, status: 'pending', createdAt: '2026-11-27T10:00:00.000Z', appliedAt: null };
const transferFacts: TransferFacts = {
  ...healthyTransferNotApplied,
  transferId: '42',
  to: '2026-11-27T10:05:00.000Z',
  transfers: [pending],
  queue: { key: 'rq:queue:default', consumer: 'worker', length: 10, lengthAfter: 4, sampleMs: 3000, ahead: { '42': 6 }, scanned: 10 },
};

describe('transferNotApplied plan', () => {
  it('no such user', () => {
    expect(planTransferNotApplied({ ...transferFacts, user: { found: false }, transfers: [] }).diagnosis).toMatch(/^no such user/);
  });
  it('no transfer found asks for the id', () => {
    expect(planTransferNotApplied({ ...transferFacts, transfers: [] })).toMatchObject({ status: 'answered' });
  });
  it('an applied transfer is nothing wrong', () => {
    const v = planTransferNotApplied({ ...transferFacts, transfers: [{ ...pending, status: 'applied', appliedAt: '2026-11-27T10:00:05.000Z' }] });
    expect(v.status).toBe('nothing-wrong');
    expect(v).toMatchObject({ falseAlarm: true, steps: [] });
    expect(v.diagnosis).toMatch(/applied at 2026-11-27T10:00:05.000Z/);
  });
  it('a pending approval is answered, not escalated', () => {
    const v = planTransferNotApplied({ ...transferFacts, transfers: [{ ...pending, approval: { id: '7', status: 'pending', createdAt: pending.createdAt } }] });
    expect(v).toMatchObject({ status: 'answered' });
    expect(v.diagnosis).toMatch(/waits for approval request #7/);
  });
  it('queued and draining: answered with an estimate', () => {
    const v = planTransferNotApplied(transferFacts);
    expect(v.status).toBe('answered');
    expect(v.diagnosis).toMatch(/6 jobs ahead; the worker drains about 2.0 jobs\/s/);
  });
  it('queued but not draining: escalated', () => {
    const v = planTransferNotApplied({ ...transferFacts, queue: { ...transferFacts.queue!, lengthAfter: 10 } });
    expect(v.status).toBe('escalated');
    expect(v.diagnosis).toMatch(/not consuming/);
  });
  it('job missing from the queue: escalated as lost', () => {
    expect(planTransferNotApplied({ ...transferFacts, queue: { ...transferFacts.queue!, ahead: {} } }).diagnosis).toMatch(/job was lost/);
  });
  it('worker down: escalated', () => {
    expect(planTransferNotApplied({ ...transferFacts, workerRunning: false, workerStatus: 'exited' }).diagnosis).toMatch(/worker is exited/);
  });
  it('a failed transfer is escalated', () => {
    expect(planTransferNotApplied({ ...transferFacts, transfers: [{ ...pending, status: 'failed' }] }).status).toBe('escalated');
    expect(planTransferNotApplied({ ...transferFacts, transfers: [{ ...pending, status: 'failed' }] }).escalate).toBe(
      'transfer #42 (sent, 9 tokens, created 2026-11-27T10:00:00.000Z) failed; worker log: 0 lines about it. Escalated to engineering with the transfer id and the worker log lines.',
    );
  });
});
