/**
 * The action budget's decision, without Temporal (src/lib/action-budget.ts): what counts within the
 * window, when an automatic step is refused, that a step people approved may go past it, and how a
 * spent budget is told. The count across incidents and the window rolling over on a workflow clock
 * are in test/workflows/action-budget.time-skipping.test.ts.
 */
import { budgetSpentReason, decideBudget, entryOf, formatWindow, withinWindow } from '../../src/lib/action-budget';
import type { BudgetEntry, BudgetRequest } from '../../src/workflows/contracts';

const T0 = Date.parse('2026-12-02T10:00:00Z');
const MIN = 60_000;
const HOUR = 60 * MIN;

function entry(stepId: string, minutesAfterT0: number, over: Partial<BudgetEntry> = {}): BudgetEntry {
  return {
    requestId: `incident-${stepId}/run/${stepId}`,
    incidentId: `incident-${stepId}`,
    stepId,
    resource: 'redis',
    at: new Date(T0 + minutesAfterT0 * MIN).toISOString(),
    state: 'performed',
    ...over,
  };
}

const request = (over: Partial<BudgetRequest> = {}): BudgetRequest => ({
  requestId: 'incident-next/run/restart-redis',
  incidentId: 'incident-next',
  stepId: 'restart-redis',
  resource: 'redis',
  maxActions: 2,
  windowMs: HOUR,
  ...over,
});

test('within the budget an automatic step is granted and counted', () => {
  const { answer, reserve } = decideBudget([entry('restart-api', 0)], request(), T0 + 10 * MIN);
  expect(answer).toMatchObject({ granted: true, overBudget: false, maxActions: 2, windowMs: HOUR });
  expect(answer.recent.map((e) => e.stepId)).toEqual(['restart-api']);
  expect(reserve).toBe(true);
});

test('with the budget spent an automatic step is refused and not counted', () => {
  const entries = [entry('restart-api', 0), entry('restart-redis', 20)];
  const { answer, reserve } = decideBudget(entries, request(), T0 + 30 * MIN);
  expect(answer).toMatchObject({ granted: false, overBudget: false });
  expect(reserve).toBe(false);
});

test('a reservation not yet released counts like an action that ran', () => {
  const entries = [entry('restart-api', 0), entry('restart-redis', 20, { state: 'reserved' })];
  expect(decideBudget(entries, request(), T0 + 30 * MIN).answer.granted).toBe(false);
});

test('a step people approved runs past a spent budget, and is counted', () => {
  const entries = [entry('restart-api', 0), entry('restart-redis', 20)];
  const { answer, reserve } = decideBudget(
    entries,
    request({ stepId: 'evict-cache', approvedBy: ['bob'] }),
    T0 + 30 * MIN,
  );
  expect(answer).toMatchObject({ granted: true, overBudget: true });
  expect(reserve).toBe(true);
  expect(entryOf(request({ approvedBy: ['bob'] }), T0 + 30 * MIN)).toMatchObject({
    approvedBy: ['bob'],
    state: 'reserved',
    at: '2026-12-02T10:30:00.000Z',
  });
  // An approval nobody gave is no approval.
  expect(decideBudget(entries, request({ approvedBy: [] }), T0 + 30 * MIN).answer.granted).toBe(false);
});

test('the window rolls: an action exactly one window old no longer counts', () => {
  const entries = [entry('restart-api', 0), entry('restart-redis', 20)];
  expect(decideBudget(entries, request(), T0 + 60 * MIN - 1).answer.granted).toBe(false);
  const rolled = decideBudget(entries, request(), T0 + 60 * MIN);
  expect(rolled.answer.granted).toBe(true);
  expect(rolled.answer.recent.map((e) => e.stepId)).toEqual(['restart-redis']);
  // Each request counts in its own window.
  expect(decideBudget(entries, request({ windowMs: 15 * MIN }), T0 + 40 * MIN).answer.recent).toEqual([]);
});

test('a budget of 0 lets nothing run automatically', () => {
  const { answer } = decideBudget([], request({ maxActions: 0 }), T0);
  expect(answer.granted).toBe(false);
  expect(budgetSpentReason('alfred', answer)).toBe(
    'action budget of 0 per 1h on alfred spent: no action may run automatically',
  );
});

test('a spent budget is told with the actions that spent it, oldest first', () => {
  const entries = [entry('restart-redis', 20, { approvedBy: ['alice'] }), entry('restart-api', 0)];
  expect(withinWindow(entries, HOUR, T0 + 30 * MIN).map((e) => e.stepId)).toEqual(['restart-api', 'restart-redis']);
  const { answer } = decideBudget(entries, request(), T0 + 30 * MIN);
  expect(budgetSpentReason('alfred', answer)).toBe(
    'action budget of 2 per 1h on alfred spent: restart-api on redis at 2026-12-02T10:00:00.000Z (incident-restart-api); ' +
      'restart-redis on redis at 2026-12-02T10:20:00.000Z (incident-restart-redis, approved by alice)',
  );
});

test('windows are written as people write them', () => {
  expect([HOUR, 2 * HOUR, 90 * MIN, 30_000, 1500].map(formatWindow)).toEqual(['1h', '2h', '90m', '30s', '1500 ms']);
});
