/**
 * smtpDelivery when the relay in use could not be observed: pure, no Temporal or stack. A mail
 * component whose environment names no relay uses one nobody knows; probing the primary instead
 * proves nothing about it.
 */
import type { SmtpProbe, SmtpRelayInUse } from '../../src/activities/smtp/smtp';
import { checksOf, planSmtpDelivery, relayUnobserved, type SmtpFacts } from '../../src/workflows/smtp-delivery';

const inUse: SmtpRelayInUse = { relay: 'primary', component: 'api', running: true, address: '127.0.0.1:58025', fromEnv: true, hostEnv: 'SMTP_HOST' };
const primaryOk: SmtpProbe = {
  relay: 'primary',
  address: '127.0.0.1:58025',
  ok: true,
  stage: 'done',
  connectMs: 2,
  banner: '220 ready',
  extensions: [],
  recipient: 'delivery-check@alfred.local',
  code: null,
  text: null,
  error: null,
};
const facts = (u: Partial<SmtpRelayInUse> = {}): SmtpFacts => ({ inUse: { ...inUse, ...u }, probe: primaryOk, sandbox: { ...primaryOk, relay: 'sandbox', address: '127.0.0.1:58026' }, evidenceRule: true });

describe('smtpDelivery verdict', () => {
  it('the relay the environment names accepts mail: nothing wrong, no unknown check (positive control)', () => {
    expect(planSmtpDelivery(facts()).status).toBe('nothing-wrong');
    expect(checksOf(facts()).some((c) => c.unknown)).toBe(false);
  });
  it('no relay in the environment: escalates naming the setting, never "SMTP works", no switch', () => {
    const f = facts({ fromEnv: false, hostEnv: 'NO_SUCH_SMTP_HOST' });
    const v = planSmtpDelivery(f);
    expect(v.status).toBe('escalated');
    expect(v.steps).toEqual([]);
    expect(v.escalate).toMatch(/^could not observe the relay in use: NO_SUCH_SMTP_HOST is not in the container environment of api, .*smtp\.hostEnv/);
    expect(checksOf(f).find((c) => c.check === 'relay in use')).toMatchObject({ unknown: true });
  });
  it('a mail component that is not running sends nothing, whatever the relay answers', () => {
    const v = planSmtpDelivery(facts({ running: false }));
    expect(v.status).toBe('escalated');
    expect(v.steps).toEqual([]);
    expect(v.escalate).toMatch(/api, which sends the mail, is not running/);
  });
  it('facts of incidents recorded before the rule assumed the primary (replay)', () => {
    expect(planSmtpDelivery({ ...facts({ fromEnv: false }), evidenceRule: undefined }).status).toBe('nothing-wrong');
  });
  it('the relay in use is known from the environment', () => {
    expect(relayUnobserved(inUse)).toBeUndefined();
  });
});
