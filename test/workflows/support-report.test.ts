/** The support runbooks' ticket report: a pure function of what was checked, no Temporal needed. */
import { renderSupportReport, type SupportReport } from '../../src/workflows/support-report';

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
