/** INC-14 evidence before conclusions, as pure decisions: nothing scanned, actions never recorded or no traffic is not "no exposure". */
import { planDataBreach, unobservedBreach, type BreachFacts } from '../../src/workflows/data-breach';
import { healthyDataBreach } from '../fixtures/healthy-facts';

const noPii = healthyDataBreach.pii.counts;
const facts = (over: Partial<BreachFacts> = {}): BreachFacts => ({
  ...healthyDataBreach,
  access: { ...healthyDataBreach.access, recordedActions: ['data_export', 'user_read'] },
  evidenceRule: true,
  ...over,
});

function expectEscalation(f: BreachFacts, what: RegExp): void {
  const p = planDataBreach(f);
  expect(p.falseAlarm).toBeUndefined();
  expect(p.steps).toEqual([]);
  expect(p.escalate).toMatch(/could not observe/);
  expect(p.escalate).toMatch(what);
}

describe('INC-14 plan over unobserved signals', () => {
  test('no api log line to scan', () => {
    expectEscalation(facts({ pii: { ...facts().pii, linesScanned: 0 } }), /PII in api logs since 2026-11-27T03:00:00\.000Z: no api log line/);
  });

  test('access actions the audit log has never recorded (security.accessActions)', () => {
    expectEscalation(facts({ access: { hours: 24, count: 0, byAction: {}, actors: [], byNonAdmins: 0, recordedActions: [] } }), /export \/ read actions .*security\.accessActions/);
  });

  test('no request in 24 h to judge key usage by', () => {
    expectEscalation(facts({ usage: { hours: 24, users: 0, medianRequests: 0, anomalies: [] } }), /key usage \(24 h\): no request in request_logs/);
  });

  test('exposure seen in one signal still leads to the response, whatever another could not observe', () => {
    const pii = { ...facts().pii, linesWithPii: 2, counts: { ...noPii, email: 2 }, distinctEmails: 2 };
    const p = planDataBreach(facts({ pii, usage: { hours: 24, users: 0, medianRequests: 0, anomalies: [] } }));
    expect(p.steps).toEqual(['preserve-evidence', 'notify-owner-security-legal']);
  });

  test('positive control: clean logs, admin-only access and traffic seen are a false alarm', () => {
    expect(unobservedBreach(facts())).toEqual([]);
    expect(planDataBreach(facts())).toMatchObject({ falseAlarm: true, steps: [] });
  });

  test('incidents begun before the rule decide as they did', () => {
    expect(planDataBreach(facts({ pii: { ...facts().pii, linesScanned: 0 }, evidenceRule: undefined })).falseAlarm).toBe(true);
  });
});
