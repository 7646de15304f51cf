/** apiKeyTrace's verdict and ticket report: pure functions over findings, no Temporal needed. */
import { planApiKeyTrace, apiKeyTraceReport, type KeyTraceFacts } from '../../src/workflows/api-key-trace';
import { apiKeyTraceBase } from '../fixtures/healthy-facts';

const traced: KeyTraceFacts = {
  ...apiKeyTraceBase,
  requestId: 'req_1',
  to: '2026-11-27T10:15:00.000Z',
  user: { found: true, userId: '3', isAdmin: false },
  rows: { inWindow: 4, byStatus: { completed: 4 }, last: '2026-11-27T10:00:01.000Z' },
  log: { available: true, userRequests: 4, userByStatus: { '200': 4 }, authFailures: 0 },
};
const charged = { rowId: '301', mine: true, amount: 12, status: 'completed', provider: 'openai', createdAt: '2026-11-27T10:00:01.000Z' };

describe('apiKeyTrace plan', () => {
  it('an unknown email is "no such user", answered, not an error', () => {
    const v = planApiKeyTrace({ ...traced, user: { found: false } });
    expect(v.status).toBe('answered');
    expect(v.diagnosis).toMatch(/^no such user/);
  });
  it('a charged request of this user: nothing wrong', () => {
    const v = planApiKeyTrace({ ...traced, rows: { ...traced.rows!, match: charged } });
    expect(v.status).toBe('nothing-wrong');
    expect(v).toMatchObject({ falseAlarm: true, steps: [] });
  });
  it("a charged request of another account: the client sends another account's key", () => {
    const v = planApiKeyTrace({ ...traced, rows: { ...traced.rows!, match: { ...charged, mine: false } } });
    expect(v).toMatchObject({ status: 'answered' });
    expect(v.diagnosis).toMatch(/another account's key/);
  });
  it('a 401 after a rotation is traced to the rotation', () => {
    const v = planApiKeyTrace({
      ...traced,
      log: { ...traced.log!, request: { status: 401, path: '/v1/chat/completions', at: '2026-11-27T10:00:00.000Z' } },
      keyEvents: [{ action: 'api_key_rotated', at: '2026-11-27T09:00:00.000Z' }],
    });
    expect(v.diagnosis).toMatch(/rotated at 2026-11-27T09:00:00.000Z/);
  });
  it('a 401 without a rotation is a key that matches no account', () => {
    const v = planApiKeyTrace({ ...traced, log: { ...traced.log!, request: { status: 401, path: '/v1/x', at: traced.at } } });
    expect(v.diagnosis).toMatch(/matches no account/);
  });
  it('a 5xx on our side is escalated (seed 000)', () => {
    const v = planApiKeyTrace({ ...traced, log: { ...traced.log!, request: { status: 502, path: '/v1/chat/completions', at: traced.at } } });
    expect(v.status).toBe('escalated');
  });
  it('429 and 402 are explained, not escalated', () => {
    const v = planApiKeyTrace({ ...traced, log: { ...traced.log!, request: { status: 429, path: '/v1/chat/completions', at: traced.at } } });
    expect(v).toMatchObject({ status: 'answered' });
    expect(v.diagnosis).toMatch(/rate limited/);
  });
  it('a request id the api never saw points at the endpoint', () => {
    const v = planApiKeyTrace(traced);
    expect(v.diagnosis).toMatch(/never reached the api/);
  });
  it('without a request id: repeated 5xx escalate, served requests are nothing wrong', () => {
    const { requestId: _omit, ...noId } = traced;
    expect(planApiKeyTrace({ ...noId, log: { ...traced.log!, userByStatus: { '500': 3 } } }).status).toBe('escalated');
    expect(planApiKeyTrace(noId).status).toBe('nothing-wrong');
    expect(planApiKeyTrace({ ...noId, rows: { inWindow: 0, byStatus: {} }, log: { ...traced.log!, userRequests: 0, userByStatus: {}, authFailures: 5 } }).diagnosis).toMatch(/401/);
  });
  it('an unhealthy service is escalated whatever the user did', () => {
    expect(planApiKeyTrace({ ...traced, serviceHealthy: false }).status).toBe('escalated');
    expect(planApiKeyTrace({ ...traced, serviceHealthy: false }).escalate).toBe(
      'the service itself is unhealthy (/health 200): Escalated to SRE: the service health check fails.',
    );
  });
  it('the report uses the resolution template once answered', () => {
    const f = { ...traced, user: { found: false } };
    const md = apiKeyTraceReport(f, planApiKeyTrace(f), { incidentId: 'i-1', at: traced.at, severity: 3, checks: [] });
    expect(md).toContain('**Root Cause**: There is no account with the email bob@example.com.');
    expect(md).toContain('### Reply to the customer (resolution)');
  });
});
