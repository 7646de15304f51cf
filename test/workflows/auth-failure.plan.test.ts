/** INC-06 decision logic: a pure function over findings, no Temporal or drill needed. */
import { planAuthFailure, type AuthFacts } from '../../src/workflows/auth-failure';
import { healthyAuthFailure } from '../fixtures/healthy-facts';

const refused: AuthFacts = { ...healthyAuthFailure, me: { status: 401, error: 'invalid api key' } };

describe('authFailure plan', () => {
  it('calls a working admin sign-in a false alarm', () => {
    const p = planAuthFailure(healthyAuthFailure);
    expect(p.falseAlarm).toBe(true);
    expect(p.steps).toEqual([]);
  });
  it('disables SSO on the refusals the target logs as SSO-unreachable (logs.ssoUnreachable), whatever their reason is called', () => {
    const p = planAuthFailure({ ...refused, ssoRequired: true, authErrors: { total: 2, byReason: { idp_down: 2 }, ssoUnreachable: 2 } });
    expect(p.steps).toEqual(['disable-sso']);
    expect(planAuthFailure({ ...refused, ssoRequired: true, authErrors: { total: 2, byReason: { sso_provider_unreachable: 2 }, ssoUnreachable: 0 } }).steps).not.toEqual([
      'disable-sso',
    ]);
  });
  it('hands an unreachable users table to a child INC-01', () => {
    const p = planAuthFailure({ ...refused, me: { status: 500 }, keyHash: { reachable: false, matches: false, error: 'ECONNREFUSED' } });
    expect(p.steps).toEqual(['database-incident']);
    expect(p.diagnosis).toMatch(/unreachable/);
  });
  it('hands a database the api reports unhealthy to a child INC-01', () => {
    expect(planAuthFailure({ ...refused, apiDatabase: 'unhealthy' }).steps).toEqual(['database-incident']);
  });
  it('turns SSO off when the provider is down and the api requires it', () => {
    const p = planAuthFailure({ ...refused, ssoRequired: true, authErrors: { total: 3, byReason: { sso_provider_unreachable: 3 } } });
    expect(p.steps).toEqual(['disable-sso']);
  });
  it('does not blame SSO when the api does not require it', () => {
    const p = planAuthFailure({ ...refused, authErrors: { total: 3, byReason: { sso_provider_unreachable: 3 } } });
    expect(p.steps).toEqual([]);
    expect(p.escalate).toBeDefined();
  });
  it('rolls back a recent deploy that refuses keys', () => {
    const p = planAuthFailure({
      ...refused,
      authErrors: { total: 2, byReason: { unknown_key: 2 } },
      api: { tag: '1.2.1-authbug', createdAt: '2026-03-01T11:50:00Z', lastGoodTag: '1.1.0' },
    });
    expect(p.steps).toEqual(['rollback-release']);
    expect(p.diagnosis).toMatch(/bad deploy/);
  });
  it('does not roll back a deploy older than the window', () => {
    const p = planAuthFailure({
      ...refused,
      authErrors: { total: 2, byReason: { unknown_key: 2 } },
      api: { tag: '1.2.1-authbug', createdAt: '2026-03-01T09:00:00Z', lastGoodTag: '1.1.0' },
    });
    expect(p.steps).toEqual([]);
    expect(p.escalate).toMatch(/unknown reason/);
  });
  it('escalates a stored hash that no longer matches the configured key, with no automatic step', () => {
    const p = planAuthFailure({ ...refused, keyHash: { reachable: true, matches: false }, authErrors: { total: 1, byReason: { unknown_key: 1 } } });
    expect(p.steps).toEqual([]);
    expect(p.escalate).toMatch(/does not match/);
  });
});
