/** configDrift's decision: a pure function over the comparisons, no Temporal needed. */
import { planConfigDrift, stepId, type DriftFacts } from '../../src/workflows/config-drift';
import { stepIds } from '../../src/workflows/shape';

const holder = (component: string, matches = true, present = true) => ({ component, running: true, present, matches, fingerprint: present ? 'abcd1234' : null });
const driftFacts: DriftFacts = { comparisons: [{ env: 'JWT_SECRET', reference: holder('api'), others: [holder('worker')] }] };

describe('configDrift plan', () => {
  it('equal secrets are a false alarm', () => {
    expect(planConfigDrift(driftFacts)).toMatchObject({ status: 'nothing-wrong', falseAlarm: true, drifted: [], steps: [] });
  });
  it('a differing or missing secret is one approved alignment per component', () => {
    const v = planConfigDrift({ comparisons: [{ env: 'JWT_SECRET', reference: holder('api'), others: [holder('worker', false), holder('proxy', false, false)] }] });
    expect(v.status).toBe('mitigation-proposed');
    expect(v.drifted.map(stepId)).toEqual(['align-jwt-secret-worker', 'align-jwt-secret-proxy']);
    expect(v.steps).toEqual([
      { id: 'align-<secret>-<component>', args: { secret: 'jwt-secret', component: 'worker' } },
      { id: 'align-<secret>-<component>', args: { secret: 'jwt-secret', component: 'proxy' } },
    ]);
    expect(stepIds(v)).toEqual(['align-jwt-secret-worker', 'align-jwt-secret-proxy']);
    expect(v.diagnosis).toMatch(/worker differs from api; JWT_SECRET in proxy is missing/);
  });
  it('a reference without the secret escalates: there is nothing to align to', () => {
    const v = planConfigDrift({ comparisons: [{ env: 'JWT_SECRET', reference: holder('api', false, false), others: [holder('worker', false)] }] });
    expect(v.status).toBe('escalated');
    expect(v.drifted).toEqual([]);
    expect(v.steps).toEqual([]);
  });
});
