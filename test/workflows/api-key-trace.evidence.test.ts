/**
 * apiKeyTrace's verdict when a signal could not be observed: pure, no Temporal or stack. A request
 * or an account's traffic not found among log lines the settings do not recognise, or without the
 * request_logs rows, is not known to be absent: the verdict escalates naming what was not observed.
 */
import type { ApiLogTrace } from '../../src/activities/postgres/support';
import { checksOf, planApiKeyTrace, unobservedSignals, type KeyTraceFacts } from '../../src/workflows/api-key-trace';
import { apiKeyTraceBase } from '../fixtures/healthy-facts';

const log: ApiLogTrace = {
  available: true,
  userRequests: 0,
  userByStatus: {},
  authFailures: 0,
  linesRead: 120,
  requestLines: 80,
  withUser: 40,
  withRequestId: 80,
  unauthorized: 0,
};
/** Nothing found for the account, from signals that were all observed. */
const quiet: KeyTraceFacts = { ...apiKeyTraceBase, rows: { inWindow: 0, byStatus: {} }, log, evidenceRule: true };
const withId: KeyTraceFacts = { ...quiet, requestId: 'req_1' };
const served: KeyTraceFacts = {
  ...withId,
  rows: { inWindow: 1, byStatus: { success: 1 }, match: { rowId: '9', mine: true, amount: 3, status: 'success', provider: 'openai', createdAt: '2026-11-27T09:59:00.000Z' } },
};

/** Each signal the absence verdicts rest on, made unobservable. */
const blind: Array<[string, Partial<KeyTraceFacts>, RegExp]> = [
  ['request_logs unreadable', { rows: undefined, rowsError: 'column "no_such_status" does not exist (setting postgres.schema.requestLogs.status)' }, /could not observe charged requests in the window: .*requestLogs\.status/],
  ['api log unreadable', { log: { ...log, available: false, error: 'no such container' } }, /could not observe the api request log: the api log could not be read: no such container/],
  ['no api log line in the window', { log: { ...log, linesRead: 0, requestLines: 0, withUser: 0, withRequestId: 0 } }, /could not observe the api request log: no api log line between/],
  ['no request line recognised', { log: { ...log, requestLines: 0, withUser: 0, withRequestId: 0 } }, /no request line recognised among 120 api log lines .*logs\.status/],
];

describe('apiKeyTrace: a request id not found', () => {
  it('among signals all observed: it never reached the api (positive control)', () => {
    const v = planApiKeyTrace(withId);
    expect(v.status).toBe('answered');
    expect(v.diagnosis).toMatch(/request req_1 never reached the api/);
    expect(checksOf(withId).some((c) => c.unknown)).toBe(false);
  });
  it.each([...blind, ['no request ids recognised', { log: { ...log, withRequestId: 0 } }, /could not observe request ids in the api log: .*logs\.requestId/] as [string, Partial<KeyTraceFacts>, RegExp]])(
    '%s: escalates naming it, never "never reached the api"',
    (_name, change, expected) => {
      const f = { ...withId, ...change };
      const v = planApiKeyTrace(f);
      expect(v.status).toBe('escalated');
      expect(v.escalate).toMatch(expected);
      expect(v.diagnosis).not.toMatch(/never reached/);
      expect(checksOf(f).some((c) => c.unknown)).toBe(true);
    },
  );
});

describe("apiKeyTrace: no request of the account's in the window", () => {
  it('among signals all observed: none reached the api (positive control)', () => {
    const v = planApiKeyTrace(quiet);
    expect(v.status).toBe('answered');
    expect(v.diagnosis).toMatch(/no request from this account reached the api/);
  });
  it.each([
    ...blind,
    ['no user ids recognised', { log: { ...log, withUser: 0 } }, /could not observe user ids in the api log: none of 80 request lines .*logs\.userId/],
    ['401s without a recognised failed authentication', { log: { ...log, unauthorized: 4 } }, /could not observe failed authentications in the api log: 4 requests answered 401 .*logs\.authFailed/],
  ] as Array<[string, Partial<KeyTraceFacts>, RegExp]>)('%s: escalates naming it, never "no request reached the api"', (_name, change, expected) => {
    const f = { ...quiet, ...change };
    const v = planApiKeyTrace(f);
    expect(v.status).toBe('escalated');
    expect(v.escalate).toMatch(expected);
    expect(checksOf(f).filter((c) => c.unknown).length).toBeGreaterThan(0);
  });
});

describe('apiKeyTrace: positive evidence stands, and unknown signals are still recorded', () => {
  it('a charged request with all signals observed is nothing wrong, with no unknown check (positive control)', () => {
    expect(planApiKeyTrace(served).status).toBe('nothing-wrong');
    expect(checksOf(served).some((c) => c.unknown)).toBe(false);
  });
  it('a charged request among unrecognised log lines: "nothing wrong" records the log as unknown (the false alarm escalates)', () => {
    const f = { ...served, log: { ...log, requestLines: 0, withUser: 0, withRequestId: 0 } };
    expect(planApiKeyTrace(f).status).toBe('nothing-wrong');
    expect(checksOf(f).filter((c) => c.unknown).map((c) => c.check)).toEqual(['request req_1 in the api log', 'api log for this user']);
  });
  it('the request seen in the log while request_logs is unreadable: the verdict rests on the log, request_logs is unknown', () => {
    const f: KeyTraceFacts = { ...withId, rows: undefined, rowsError: 'column missing', log: { ...log, request: { status: 200, path: '/v1/chat/completions', at: '2026-11-27T09:59:00Z', userId: '3' } } };
    expect(planApiKeyTrace(f).status).toBe('nothing-wrong');
    expect(checksOf(f).find((c) => c.check === 'charged requests in the window')).toMatchObject({ unknown: true, detail: expect.stringMatching(/column missing/) });
  });
  it('facts of incidents recorded before the rule read the absence as before (replay)', () => {
    const old = { ...withId, evidenceRule: undefined, log: { ...log, requestLines: 0 } };
    expect(unobservedSignals(old)).toEqual([]);
    expect(planApiKeyTrace(old).status).toBe('answered');
  });
});

describe('the escalation carries what seed 000 asks for, recent deploys included', () => {
  test('a request that failed on our side: request id, user, endpoint, and the running releases', () => {
    const f: KeyTraceFacts = {
      ...withId,
      log: { ...log, request: { status: 502, path: '/v1/chat/completions', at: '2026-11-27T09:59:00.000Z', userId: '3' } },
      deploys: ['api 1.2.0-bad since 2026-11-27T09:30:00.000Z', 'worker: not read (no container for component "worker")'],
    };
    const v = planApiKeyTrace(f);
    expect(v.status).toBe('escalated');
    expect(v.nextSteps).toEqual([
      'Escalated to SRE with request id req_1, user bob@example.com, endpoint /v1/chat/completions; recent deploys: api 1.2.0-bad since 2026-11-27T09:30:00.000Z; worker: not read (no container for component "worker") (seed 000).',
    ]);
  });

  test('repeated server errors for the account, from facts recorded before deploys were read: said so', () => {
    const v = planApiKeyTrace({ ...quiet, log: { ...log, userRequests: 6, userByStatus: { '500': 6 } } });
    expect(v.status).toBe('escalated');
    expect(v.nextSteps[0]).toMatch(/^Escalated to SRE with user bob@example.com, .* answers 500×6; recent deploys: not read \(seed 000\)\.$/);
  });
});

test('traced by its id, a request found is the verdict; 401s the settings do not recognise are told aside', () => {
  const f: KeyTraceFacts = { ...served, log: { ...log, unauthorized: 3, authFailures: 0, request: { status: 200, path: '/v1/chat/completions', at: '2026-11-27T09:59:00.000Z', userId: '3' } } };
  expect(planApiKeyTrace(f).status).toBe('nothing-wrong');
  expect(checksOf(f).find((c) => c.check === 'failed authentications in the api log')).toMatchObject({ unknown: true, aside: true });
  // Without a request id the account's 401s are what a verdict rests on: not aside.
  const window: KeyTraceFacts = { ...quiet, log: { ...log, unauthorized: 3, authFailures: 0 } };
  expect(checksOf(window).find((c) => c.check === 'failed authentications in the api log')).toMatchObject({ unknown: true });
  expect(checksOf(window).find((c) => c.check === 'failed authentications in the api log')?.aside).toBeUndefined();
});
