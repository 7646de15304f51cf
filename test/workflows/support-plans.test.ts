/** Verdicts and ticket reports of the support runbooks: pure functions over findings, no Temporal needed. */
import { planApiKeyTrace, apiKeyTraceReport, type KeyTraceFacts } from '../../src/workflows/api-key-trace';
import { planConfigDrift, stepId, type DriftFacts } from '../../src/workflows/config-drift';
import { renderSupportReport, type SupportReport } from '../../src/workflows/support-report';
import { planTransferNotApplied, type TransferFacts } from '../../src/workflows/transfer-not-applied';

const traced: KeyTraceFacts = {
  email: 'bob@example.com',
  requestId: 'req_1',
  at: '2026-11-27T10:00:00.000Z',
  from: '2026-11-27T09:45:00.000Z',
  to: '2026-11-27T10:15:00.000Z',
  user: { found: true, userId: '3', isAdmin: false },
  rows: { inWindow: 4, byStatus: { completed: 4 }, last: '2026-11-27T10:00:01.000Z' },
  log: { available: true, userRequests: 4, userByStatus: { '200': 4 }, authFailures: 0 },
  keyEvents: [],
  serviceHealthy: true,
  serviceDetail: '/health 200',
};
const charged = { rowId: '301', mine: true, amount: 12, status: 'completed', provider: 'openai', createdAt: '2026-11-27T10:00:01.000Z' };

describe('apiKeyTrace verdict', () => {
  it('an unknown email is "no such user", answered, not an error', () => {
    const v = planApiKeyTrace({ ...traced, user: { found: false } });
    expect(v.status).toBe('answered');
    expect(v.diagnosis).toMatch(/^no such user/);
  });
  it('a charged request of this user: nothing wrong', () => {
    const v = planApiKeyTrace({ ...traced, rows: { ...traced.rows!, match: charged } });
    expect(v.status).toBe('nothing-wrong');
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
  });
  it('the report uses the resolution template once answered', () => {
    const f = { ...traced, user: { found: false } };
    const md = apiKeyTraceReport(f, planApiKeyTrace(f), { incidentId: 'i-1', at: traced.at, severity: 3, checks: [] });
    expect(md).toContain('**Root Cause**: There is no account with the email bob@example.com.');
    expect(md).toContain('### Reply to the customer (resolution)');
  });
});

describe('support report', () => {
  const base: SupportReport = {
    title: 'Trace',
    incidentId: 'incident-1',
    at: '2026-11-27T10:00:00.000Z',
    severity: 2,
    customer: 'carol@example.com',
    issue: 'emails not arriving',
    status: 'escalated',
    verdict: 'the relay refuses connections',
    facts: [['user email', 'carol@example.com']],
    checks: [{ check: 'SMTP | EHLO', ok: false, detail: 'ECONNREFUSED\nafter 3 ms' }],
  };
  it('an open case gets the initial response with the next update in 30 minutes (seed 001)', () => {
    const md = renderSupportReport(base);
    expect(md).toContain('### Reply to the customer (initial response)');
    expect(md).toContain('**Expected Update**: 2026-11-27T10:30:00Z');
    expect(md).toContain('**Severity**: High');
    expect(md).toContain("We'll keep you updated every 30 minutes.");
  });
  it('an answered case gets the resolution template', () => {
    const md = renderSupportReport({ ...base, status: 'answered', rootCause: 'relay down', solution: 'switched', verification: 'EHLO ok' });
    expect(md).toContain('**Root Cause**: relay down');
    expect(md).toContain('**Solution**: switched');
    expect(md).toContain('**Verification**: EHLO ok');
    expect(md).not.toContain('Expected Update');
  });
  it('table cells cannot break the table', () => {
    expect(renderSupportReport(base)).toContain('| SMTP \\| EHLO | FAIL | ECONNREFUSED after 3 ms |');
  });
  it('is the same text for the same facts', () => {
    expect(renderSupportReport(base)).toBe(renderSupportReport({ ...base }));
  });
});

const pending = { id: '42', direction: 'sent' as const, amount: 9, status: 'pending', createdAt: '2026-11-27T10:00:00.000Z', appliedAt: null };
const transferFacts: TransferFacts = {
  email: 'carol@example.com',
  transferId: '42',
  at: '2026-11-27T10:00:00.000Z',
  from: '2026-11-26T10:00:00.000Z',
  to: '2026-11-27T10:05:00.000Z',
  user: { found: true, userId: '4' },
  transfers: [pending],
  queue: { key: 'rq:queue:default', consumer: 'worker', length: 10, lengthAfter: 4, sampleMs: 3000, ahead: { '42': 6 }, scanned: 10 },
  workerRunning: true,
  workerStatus: 'running',
  workerLog: { available: true, errors: 0, warnings: 0, forTransfers: 0, samples: [] },
};

describe('transferNotApplied verdict', () => {
  it('no such user', () => {
    expect(planTransferNotApplied({ ...transferFacts, user: { found: false }, transfers: [] }).diagnosis).toMatch(/^no such user/);
  });
  it('no transfer found asks for the id', () => {
    expect(planTransferNotApplied({ ...transferFacts, transfers: [] })).toMatchObject({ status: 'answered' });
  });
  it('an applied transfer is nothing wrong', () => {
    const v = planTransferNotApplied({ ...transferFacts, transfers: [{ ...pending, status: 'applied', appliedAt: '2026-11-27T10:00:05.000Z' }] });
    expect(v.status).toBe('nothing-wrong');
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
  });
});

const holder = (component: string, matches = true, present = true) => ({ component, running: true, present, matches, fingerprint: present ? 'abcd1234' : null });
const driftFacts: DriftFacts = { comparisons: [{ env: 'JWT_SECRET', reference: holder('api'), others: [holder('worker')] }] };

describe('configDrift plan', () => {
  it('equal secrets are a false alarm', () => {
    expect(planConfigDrift(driftFacts)).toMatchObject({ status: 'nothing-wrong', drifted: [] });
  });
  it('a differing or missing secret is one approved alignment per component', () => {
    const v = planConfigDrift({ comparisons: [{ env: 'JWT_SECRET', reference: holder('api'), others: [holder('worker', false), holder('proxy', false, false)] }] });
    expect(v.status).toBe('mitigation-proposed');
    expect(v.drifted.map(stepId)).toEqual(['align-jwt-secret-worker', 'align-jwt-secret-proxy']);
    expect(v.diagnosis).toMatch(/worker differs from api; JWT_SECRET in proxy is missing/);
  });
  it('a reference without the secret escalates: there is nothing to align to', () => {
    const v = planConfigDrift({ comparisons: [{ env: 'JWT_SECRET', reference: holder('api', false, false), others: [holder('worker', false)] }] });
    expect(v.status).toBe('escalated');
    expect(v.drifted).toEqual([]);
  });
});
