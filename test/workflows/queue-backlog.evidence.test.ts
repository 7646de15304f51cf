/**
 * queueBacklog when a signal could not be observed: pure, no Temporal or stack. LLEN of a key that is
 * no queue is 0 like an empty queue's; only a key that is a list or among RQ's queues shows depth.
 */
import { planQueueBacklog, queueChecks, verifyQueue, type QueueFacts } from '../../src/workflows/queue-backlog';
import { healthyQueueBacklog } from '../fixtures/healthy-facts';

const q = healthyQueueBacklog.queue;
const empty: QueueFacts = { ...healthyQueueBacklog, known: true, evidenceRule: true };
const noQueue: QueueFacts = { ...empty, queue: { ...q, key: 'rq:queue:nope' }, known: false };

describe('queueBacklog plan', () => {
  it('an empty queue RQ knows is a false alarm with no unknown check (positive control)', () => {
    expect(planQueueBacklog(empty)).toMatchObject({ falseAlarm: true, steps: [] });
    expect(queueChecks(empty).some((c) => c.unknown)).toBe(false);
  });
  it('a key that is no queue escalates naming it and its setting, never a false alarm, no step', () => {
    const p = planQueueBacklog(noQueue);
    expect(p.falseAlarm).toBeUndefined();
    expect(p.steps).toEqual([]);
    expect(p.escalate).toMatch(/^could not observe queue depth \(LLEN rq:queue:nope\): .*setting queue\.key/);
    expect(queueChecks(noQueue).filter((c) => c.unknown).map((c) => c.check)).toEqual(['queue depth (LLEN rq:queue:nope)', 'consumers taking jobs']);
  });
  it('an oldest job whose hash gives no time: its age is unknown, not young', () => {
    const f: QueueFacts = { ...empty, depth: 5, depthAfter: 3, oldestTaken: true, oldest: { id: 'job_1', kind: 'app.jobs.apply_transfer' } };
    expect(queueChecks(f).find((c) => c.check === 'oldest job')).toMatchObject({ unknown: true });
  });
  it('facts of incidents recorded before the rule read such a key as an empty queue (replay)', () => {
    expect(planQueueBacklog({ ...noQueue, evidenceRule: undefined }).falseAlarm).toBe(true);
  });
});

describe('queueBacklog verification', () => {
  it('a known queue below the threshold has recovered (positive control)', () => {
    expect(verifyQueue({ ok: true, depth: 4, known: true }, q)).toMatchObject({ ok: true });
  });
  it('a queue still above the threshold has not, and that is observed', () => {
    const c = verifyQueue({ ok: true, depth: 1500, known: true }, q);
    expect(c.ok).toBe(false);
    expect(c.unknown).toBeUndefined();
  });
  it('Redis not answering: recovery not observed', () => {
    expect(verifyQueue({ ok: false, error: 'ECONNREFUSED', depth: 0 }, q)).toMatchObject({ ok: false, unknown: expect.stringMatching(/Redis did not answer: ECONNREFUSED/) });
  });
  it('a key that is no queue: recovery not observed', () => {
    expect(verifyQueue({ ok: true, depth: 0, known: false }, q)).toMatchObject({ ok: false, unknown: expect.stringMatching(/setting queue\.key/) });
  });
});
