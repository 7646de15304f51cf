/** INC-12 decision logic: a pure function over findings, no Temporal or drill needed. */
import { planBadRelease } from '../../src/workflows/bad-release';
import { healthyBadRelease } from '../fixtures/healthy-facts';

describe('badRelease plan', () => {
  it('calls a recent deploy at baseline a false alarm', () => {
    const p = planBadRelease(healthyBadRelease);
    expect(p.falseAlarm).toBe(true);
    expect(p.steps).toEqual([]);
  });
  it('calls no recent deploy with good health a false alarm', () => {
    const { deployed: _none, ...rest } = healthyBadRelease;
    expect(planBadRelease(rest).falseAlarm).toBe(true);
  });
  it('escalates failing health without a recent deploy: nothing to roll back', () => {
    const { deployed: _none, ...rest } = healthyBadRelease;
    const p = planBadRelease({ ...rest, healthOk: false, healthDetail: 'HTTP 500' });
    expect(p.steps).toEqual([]);
    expect(p.escalate).toMatch(/no recent deploy/);
  });
  it('rolls back a release that raised errors, SEV-2 when the rate is moderate', () => {
    const p = planBadRelease({ ...healthyBadRelease, after: { requests: 100, errors: 5 } });
    expect(p.steps).toEqual(['rollback-release']);
    expect(p.severity).toBe(2);
  });
  it('is SEV-1 and downgrades the migration the release brought when health fails', () => {
    const p = planBadRelease({
      ...healthyBadRelease,
      healthOk: false,
      healthDetail: 'HTTP 500',
      after: { requests: 20, errors: 20 },
      migration: { via: 'alembic', available: true, current: '0005', broughtByRelease: ['0005', '0004'], goodHead: '0003' },
    });
    expect(p.steps).toEqual(['rollback-release', 'migration-downgrade']);
    expect(p.severity).toBe(1);
    expect(p.diagnosis).toMatch(/downgrade migration 0005, 0004$/);
  });
  it('does not blame a release whose errors were already there before it', () => {
    const p = planBadRelease({ ...healthyBadRelease, before: { requests: 100, errors: 5 }, after: { requests: 100, errors: 5 } });
    expect(p.falseAlarm).toBe(true);
  });
  it('escalates a bad release with no earlier release to go back to', () => {
    const p = planBadRelease({ ...healthyBadRelease, after: { requests: 10, errors: 10 }, deployed: { ...healthyBadRelease.deployed!, lastGoodTag: null } });
    expect(p.steps).toEqual([]);
    expect(p.escalate).toMatch(/no earlier release/);
  });
});
