/**
 * configDrift when a secret could not be compared: pure, no Temporal or stack. Nothing compared is
 * not "no drift", and a reference that does not hold the secret gives nothing to compare with.
 */
import type { SecretHolder } from '../../src/activities/containers/shared-secrets';
import { checksOf, planConfigDrift, verifyAligned, type DriftFacts } from '../../src/workflows/config-drift';

const holder = (component: string, matches = true, present = true): SecretHolder => ({
  component,
  running: true,
  present,
  matches: present && matches,
  fingerprint: present ? (matches ? 'aaaa1111' : 'bbbb2222') : null,
});
const aligned: DriftFacts = { comparisons: [{ env: 'JWT_SECRET', reference: holder('api'), others: [holder('worker')] }], evidenceRule: true };
const noReference: DriftFacts = { comparisons: [{ env: 'NO_SUCH_SECRET', reference: holder('api', true, false), others: [holder('worker', false, false)] }], evidenceRule: true };
const nothing: DriftFacts = { comparisons: [], evidenceRule: true };

describe('configDrift plan', () => {
  it('equal secrets are nothing wrong, no unknown check (positive control)', () => {
    expect(planConfigDrift(aligned)).toMatchObject({ status: 'nothing-wrong', drifted: [] });
    expect(checksOf(aligned).some((c) => c.unknown)).toBe(false);
  });
  it('a drifted secret still proposes its alignment (positive control)', () => {
    const v = planConfigDrift({ ...aligned, comparisons: [{ env: 'JWT_SECRET', reference: holder('api'), others: [holder('worker', false)] }] });
    expect(v.status).toBe('mitigation-proposed');
    expect(v.drifted).toHaveLength(1);
  });
  it('no shared secret configured: escalates naming the setting, never "no drift"', () => {
    const v = planConfigDrift(nothing);
    expect(v.status).toBe('escalated');
    expect(v.escalate).toMatch(/^could not observe shared secrets: .*support\.sharedSecrets/);
    expect(v.drifted).toEqual([]);
    expect(checksOf(nothing)).toEqual([expect.objectContaining({ unknown: true })]);
  });
  it('a reference without the secret: escalates naming it, and aligns nothing', () => {
    const v = planConfigDrift(noReference);
    expect(v.status).toBe('escalated');
    expect(v.escalate).toMatch(/could not observe NO_SUCH_SECRET in api \(reference\): .*support\.sharedSecrets/);
    expect(v.drifted).toEqual([]);
  });
  it('facts of incidents recorded before the rule called nothing compared "no drift" (replay)', () => {
    expect(planConfigDrift({ comparisons: [] }).status).toBe('nothing-wrong');
  });
});

describe('configDrift verification', () => {
  it('equal values in every component have recovered (positive control)', () => {
    expect(verifyAligned(aligned.comparisons)).toMatchObject({ ok: true });
  });
  it('nothing compared: recovery not observed', () => {
    expect(verifyAligned([])).toMatchObject({ ok: false, unknown: expect.stringMatching(/shared secrets: .*support\.sharedSecrets/) });
  });
  it('a reference without the secret: recovery not observed', () => {
    expect(verifyAligned(noReference.comparisons)).toMatchObject({ ok: false, unknown: expect.stringMatching(/NO_SUCH_SECRET in api/) });
  });
});
