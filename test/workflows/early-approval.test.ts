/**
 * An approval that arrives while a step's precondition is being checked, just before the step asks
 * for approval, counts (the approver has seen the step in the plan). A decision on any other step
 * that is not waiting is still refused. Real drill: Redis really at maxmemory, the real runbook; the
 * precondition's Redis read is held until the approval has reached the incident, so the timing is
 * exact rather than lucky.
 */
import { approveSignal, statusQuery } from '../../src/workflows/contracts';
import { fillRedis, unfillRedis } from '../helpers/drill';
import { startEngine, waitUntil, type Engine } from '../helpers/engine';

jest.setTimeout(120_000);

const FILL = 'alfred:cache:test-early-approval:';
let engine: Engine;
let calls = 0;
let reached: () => void = () => undefined;
let release: () => void = () => undefined;
const atPrecondition = new Promise<void>((r) => (reached = r));
const released = new Promise<void>((r) => (release = r));

beforeAll(async () => {
  engine = await startEngine({
    wrapActivities: (real) => ({
      // The runbook reads Redis memory once to diagnose, then again as evict-cache's precondition.
      redisMemory: async (input) => {
        calls += 1;
        if (calls === 2) {
          reached();
          await released;
        }
        return real.redisMemory(input);
      },
    }),
  });
});

afterAll(async () => {
  release();
  await unfillRedis(FILL);
  await engine.stop();
});

test('an approval sent while the step checks its precondition counts; one for a step not yet reached is refused', async () => {
  await fillRedis(FILL);
  const h = await engine.start({ runbook: 'cacheFailure', target: 'alfred' });
  await atPrecondition;
  await h.signal(approveSignal, { incidentId: h.workflowId, stepId: 'evict-cache', approver: 'alice' });
  await h.signal(approveSignal, { incidentId: h.workflowId, stepId: 'raise-maxmemory', approver: 'bob' });
  await waitUntil('decisions recorded', async () => {
    const rec = await h.query(statusQuery);
    return rec.timeline.some((t) => /refused approval of raise-maxmemory/.test(t.event));
  });
  const during = await h.query(statusQuery);
  expect(during.pending).toEqual([]); // the step had not asked yet
  expect(during.timeline.some((t) => t.event === 'alice (sealed) approved evict-cache')).toBe(true);
  release();

  const rec = await engine.result(h);
  expect(rec.outcome).toBe('resolved');
  expect(rec.actions.find((a) => a.stepId === 'evict-cache')).toMatchObject({ state: 'done', approvals: ['alice'] });
  expect(rec.timeline.find((t) => /refused approval of raise-maxmemory from bob/.test(t.event))?.event).toMatch(/not waiting for approval/);
});
