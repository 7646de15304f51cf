/** INC-08 never concludes from a signal it could not read: pure decisions over facts with one signal unobserved. */
import { planDoubleSpend, type DoubleSpendFacts } from '../../src/workflows/double-spend';
import { healthyDoubleSpend } from '../fixtures/healthy-facts';

const group = (userId: string) => ({
  requestId: `req_${userId}`,
  userId,
  originalId: `${userId}00`,
  firstAt: '2026-03-01T10:00:00.000Z',
  duplicates: [{ id: `${userId}01`, amount: 40 }],
});
const clean: DoubleSpendFacts = { ...healthyDoubleSpend, evidenceRule: true, unobserved: {} };
const doubled: DoubleSpendFacts = { ...clean, groups: [group('2')] };

describe('doubleSpend with a signal unobserved', () => {
  it('deductions unreadable: escalates, never "no request charged twice"', () => {
    const p = planDoubleSpend({ ...clean, unobserved: { duplicates: 'request_logs not readable: column r.refund_of does not exist (postgres.schema.requestLogs.refundOf)' } });
    expect(p.falseAlarm).toBeUndefined();
    expect(p.steps).toEqual([]);
    expect(p.escalate).toMatch(/^could not observe duplicate request_id deductions: request_logs not readable/);
  });

  it('audit chain verification unreadable and no duplicates: escalates, never "ledger reconciles"', () => {
    const { audit: _audit, ...noAudit } = clean;
    const p = planDoubleSpend({ ...noAudit, unobserved: { audit: 'POST /v1/admin/audit-logs/verify answered without a boolean `valid`' } });
    expect(p.falseAlarm).toBeUndefined();
    expect(p.steps).toEqual([]);
    expect(p.escalate).toMatch(/^could not observe audit chain verify/);
  });

  it('maintenance mode unknown with double charges: no step chosen (pausing and resuming traffic depend on it)', () => {
    const { maintenance: _m, ...rest } = doubled;
    const p = planDoubleSpend({ ...rest, unobserved: { maintenance: 'not reported (setting api.fields.governanceSettings.maintenanceMode)' } });
    expect(p.steps).toEqual([]);
    expect(p.escalate).toMatch(/^could not observe maintenance mode: not reported \(setting api\.fields\.governanceSettings\.maintenanceMode\)/);
  });

  it('deploy history unknown with double charges: no step chosen (whether to roll back depends on it)', () => {
    const { deploy: _d, ...rest } = doubled;
    const p = planDoubleSpend({ ...rest, unobserved: { deploy: 'deploy history of api unavailable: no container (setting rollbackOrder names the service)' } });
    expect(p.steps).toEqual([]);
    expect(p.escalate).toMatch(/^could not observe last deploy: deploy history of api unavailable/);
  });

  it('maintenance mode or deploy unknown without double charges: a false alarm only in name (the kernel escalates on the unknown finding diagnose records)', () => {
    const { maintenance: _m, ...rest } = clean;
    const p = planDoubleSpend({ ...rest, unobserved: { maintenance: 'not reported' } });
    expect(p.steps).toEqual([]);
    expect(p.falseAlarm).toBe(true);
  });

  it('positive control: a clean ledger with a valid chain is a false alarm; double charges are refunded', () => {
    expect(planDoubleSpend(clean)).toMatchObject({ falseAlarm: true, steps: [] });
    expect(planDoubleSpend(doubled).steps).toEqual(['maintenance-on', 'refund-duplicates', 'maintenance-off']);
  });

  it('incidents recorded before the rule decide as they did', () => {
    const { maintenance: _m, ...rest } = doubled;
    expect(planDoubleSpend({ ...rest, evidenceRule: undefined, unobserved: { maintenance: 'x' } }).steps).toEqual(['maintenance-on', 'refund-duplicates', 'maintenance-off']);
  });
});
