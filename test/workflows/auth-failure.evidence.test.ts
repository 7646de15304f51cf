/** INC-06 evidence before conclusions, as pure decisions: what could not be observed is never health. */
import { planAuthFailure, unobservedAuth, verifySignIn, type AuthFacts } from '../../src/workflows/auth-failure';
import { healthyAuthFailure } from '../fixtures/healthy-facts';

const healthy: AuthFacts = { ...healthyAuthFailure, evidenceRule: true };
const refused: AuthFacts = { ...healthy, me: { status: 401, error: 'invalid api key' }, authErrors: { total: 1, byReason: { unknown_key: 1 } } };

function expectEscalation(f: AuthFacts, what: RegExp): void {
  const p = planAuthFailure(f);
  expect(p.falseAlarm).toBeUndefined();
  expect(p.steps).toEqual([]);
  expect(p.escalate).toMatch(/could not observe/);
  expect(p.escalate).toMatch(what);
}

describe('INC-06 plan over unobserved signals', () => {
  test('a sign-in answer without the admin flag', () => {
    const f = { ...healthy, me: { status: 200, email: 'admin@alfred.local' } };
    expectEscalation(f, /GET \/v1\/users\/me \(admin key\): .*api\.fields\.usersMe\.isAdmin/);
    // Even with a database problem in sight: whether authentication fails at all is not known.
    expectEscalation({ ...f, keyHash: { reachable: false, matches: false, error: 'ECONNREFUSED' } }, /users\/me/);
  });

  test('a sign-in the activity could not read', () => {
    expectEscalation({ ...healthy, me: { status: 0 }, meUnreadable: 'no admin key configured' }, /users\/me.*no admin key configured/);
  });

  test('a key-hash self-check over a column the users table lacks', () => {
    const why = 'column "no_such" does not exist (setting targets.alfred.postgres.schema.users.apiKeyHash)';
    expectEscalation({ ...healthy, keyHash: { reachable: true, matches: false }, keyHashUnreadable: why }, /key-hash self-check: .*apiKeyHash/);
    // A refused key with no other cause: the mismatch branch needs the comparison.
    expectEscalation({ ...refused, keyHash: { reachable: true, matches: false }, keyHashUnreadable: why }, /key-hash self-check/);
  });

  test('a /health without its database field', () => {
    expectEscalation({ ...healthy, apiDatabaseUnreadable: 'GET /health answered 200 without a database field' }, /api \/health database/);
  });

  test("api logs that do not show the engine's own refused sign-in", () => {
    const f = { ...refused, ssoRequired: true, authErrors: { total: 0, byReason: {} } };
    expect(unobservedAuth(f).map((u) => u.check)).toEqual(['auth errors in api logs']);
    expectEscalation(f, /auth errors in api logs: .*logs\.authFailed/);
  });

  test('positive controls: a working admin sign-in is a false alarm; refusals the logs show still lead to a remedy', () => {
    expect(planAuthFailure(healthy)).toMatchObject({ falseAlarm: true, steps: [] });
    const sso = planAuthFailure({ ...refused, ssoRequired: true, authErrors: { total: 3, byReason: { sso_provider_unreachable: 3 }, ssoUnreachable: 3 } });
    expect(sso.steps).toEqual(['disable-sso']);
    expect(unobservedAuth(healthy)).toEqual([]);
  });

  test('incidents begun before the rule decide as they did', () => {
    const { evidenceRule: _rule, ...old } = healthy;
    expect(planAuthFailure({ ...old, me: { status: 200, email: 'admin@alfred.local' } }).escalate).not.toMatch(/could not observe/);
  });
});

describe('INC-06 verification', () => {
  test('an answer without the admin flag or the email, or no admin email to compare, is unknown', () => {
    expect(verifySignIn({ status: 200, email: 'admin@alfred.local' }, 'admin@alfred.local').unknown).toMatch(/isAdmin/);
    expect(verifySignIn({ status: 200, isAdmin: true }, 'admin@alfred.local').unknown).toMatch(/no email/);
    expect(verifySignIn({ status: 200, email: 'admin@alfred.local', isAdmin: true }, undefined).unknown).toMatch(/admin's email/);
  });

  test('a refusal is a failure, the admin back is recovery', () => {
    expect(verifySignIn({ status: 401 }, 'admin@alfred.local')).toEqual({ ok: false, detail: '/v1/users/me answers 401' });
    expect(verifySignIn({ status: 200, email: 'admin@alfred.local', isAdmin: true }, 'admin@alfred.local').ok).toBe(true);
    expect(verifySignIn({ status: 200, email: 'x@alfred.local', isAdmin: true }, 'admin@alfred.local')).toMatchObject({ ok: false });
    expect(verifySignIn({ status: 200, email: 'x@alfred.local', isAdmin: true }, 'admin@alfred.local').unknown).toBeUndefined();
  });
});
