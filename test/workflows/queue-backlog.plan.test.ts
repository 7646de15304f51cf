/** Queue backlog decisions and report: pure functions over findings, no Temporal needed. */
import { describeJob } from '../../src/activities/redis/queue';
import { transferIdOf } from '../../src/activities/postgres/support';
import { planQueueBacklog, queueReport, type QueueFacts } from '../../src/workflows/queue-backlog';
import { healthyQueueBacklog } from '../fixtures/healthy-facts';

const quiet: QueueFacts = { ...healthyQueueBacklog, depth: 3, oldestTaken: true, oldest: { id: 'job_1', kind: 'apply_transfer', ageSeconds: 1 } };
const hung: QueueFacts = {
  ...quiet,
  depth: 1500,
  depthAfter: 1500,
  oldestTaken: false,
  oldest: { id: 'job_9', kind: 'apply_transfer', ageSeconds: 40 },
  blockedClients: 0,
};
const meta = {
  target: 'alfred',
  incidentId: 'incident-queueBacklog-alfred',
  at: '2026-11-27T10:00:00.000Z',
  severity: 2 as const,
};

describe('queueBacklog plan', () => {
  it('calls a queue below the threshold a false alarm', () => {
    const p = planQueueBacklog(quiet);
    expect(p.falseAlarm).toBe(true);
    expect(p.steps).toEqual([]);
  });
  it('scales out and back when a running worker takes no jobs', () => {
    const p = planQueueBacklog(hung);
    expect(p.steps).toEqual(['scale-out', 'scale-back']);
    expect(p.stuck).toBe(true);
    expect(p.diagnosis).toMatch(/none taken in 3 s/);
    expect(p.rootCause).toMatch(/running but not consuming/);
  });
  it('counts an old head-of-queue job as stuck even while the queue moves', () => {
    const p = planQueueBacklog({ ...hung, depthAfter: 1400, oldestTaken: false, oldest: { id: 'j', ageSeconds: 900 } });
    expect(p.stuck).toBe(true);
    expect(p.diagnosis).toMatch(/oldest job waiting 900 s/);
  });
  it('calls a moving but deep queue too few consumers', () => {
    const p = planQueueBacklog({
      ...hung,
      depth: 5000,
      depthAfter: 4900,
      oldestTaken: true,
      oldest: { id: 'j', ageSeconds: 20 },
    });
    expect(p.stuck).toBe(false);
    expect(p.rootCause).toMatch(/not enough consumers/);
    expect(p.steps).toEqual(['scale-out', 'scale-back']);
  });
  it('starts a stopped worker first', () => {
    expect(
      planQueueBacklog({ ...hung, worker: { name: 'alfred-worker', running: false, status: 'exited' } }).steps,
    ).toEqual(['start-worker', 'scale-out', 'scale-back']);
  });
  it('escalates when the replicas are already at the maximum', () => {
    const p = planQueueBacklog({ ...hung, replicas: 2 });
    expect(p.steps).toEqual([]);
    expect(p.escalate).toMatch(/backlog persists with 2 extra worker replicas/);
  });
  it('escalates an unreachable Redis without acting', () => {
    const p = planQueueBacklog({ ...quiet, redisOk: false, redisError: 'ECONNREFUSED' });
    expect(p.escalate).toMatch(/cacheFailure/);
    expect(p.steps).toEqual([]);
  });
});

describe('queueBacklog report', () => {
  it('is an initial response with the planned remedy while the backlog is open', () => {
    const md = queueReport(hung, planQueueBacklog(hung), meta);
    expect(md).toContain('## Queue backlog on alfred');
    expect(md).toContain('| queue depth (LLEN rq:queue:default) | FAIL | 1500 jobs (threshold 1000) |');
    expect(md).toContain('| oldest job | OK | job_9 (apply_transfer), waiting 40 s |');
    expect(md).toContain("Inspect alfred-worker's logs");
    expect(md).toContain('Reply to the customer (initial response)');
    expect(md).toContain('**Severity**: High');
    expect(md).toContain('**Expected Update**: 2026-11-27T10:30:00Z');
  });
  it('is a resolution saying nothing is wrong for a short queue', () => {
    const md = queueReport(quiet, planQueueBacklog(quiet), meta);
    expect(md).toContain('Reply to the customer (resolution)');
    expect(md).toContain('found our service working as expected');
  });
});

describe('describeJob', () => {
  const now = Date.parse('2026-11-27T10:00:00Z');
  it("keeps only the id, the job's function and its age from RQ's hash", () => {
    const fields = ['2026-11-27T09:59:00.125000Z', '2026-11-27T09:58:00.000000Z', "app.jobs.apply_transfer(24, 'a@b.c')"];
    expect(describeJob('job_1', fields, now)).toEqual({ id: 'job_1', kind: 'app.jobs.apply_transfer', ageSeconds: 60 });
  });
  it('falls back to created_at, and tolerates a job whose hash is gone', () => {
    expect(describeJob('x', [null, '2026-11-27T09:59:55Z', null], now)).toEqual({ id: 'x', ageSeconds: 5 });
    expect(describeJob('gone', [null, null, null], now)).toEqual({ id: 'gone' });
    expect(describeJob(null, [], now)).toBeUndefined();
  });
});

describe('transferIdOf', () => {
  it('reads the transfer id of the configured function only', () => {
    expect(transferIdOf('app.jobs.apply_transfer(24)', 'app.jobs.apply_transfer')).toBe('24');
    expect(transferIdOf("app.jobs.apply_transfer('7', retry=1)", 'app.jobs.apply_transfer')).toBe('7');
    expect(transferIdOf('app.jobs.send_mail(24)', 'app.jobs.apply_transfer')).toBeUndefined();
    expect(transferIdOf(null, 'app.jobs.apply_transfer')).toBeUndefined();
  });
});
