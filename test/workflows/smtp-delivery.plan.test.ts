/** smtpDelivery's verdict and ticket report: pure functions over probe results, no Temporal or stack needed. */
import type { SmtpProbe, SmtpRelayInUse } from '../../src/activities/smtp/smtp';
import { SWITCH_STEP, planSmtpDelivery, probeChecks, smtpReport, type SmtpFacts } from '../../src/workflows/smtp-delivery';

const inUse: SmtpRelayInUse = { relay: 'primary', component: 'api', running: true, address: 'mx.example:25', fromEnv: true };
const ok = (relay: SmtpProbe['relay'], address: string): SmtpProbe => ({
  relay,
  address,
  ok: true,
  stage: 'done',
  connectMs: 4,
  banner: '220 mx ESMTP ready',
  extensions: ['PIPELINING', 'SIZE 1000'],
  recipient: 'check@example.com',
  code: null,
  text: null,
  error: null,
});
const primaryOk = ok('primary', 'mx.example:25');
const sandboxOk = ok('sandbox', 'sandbox.example:1025');
const refusedAtGreeting: SmtpProbe = { ...primaryOk, ok: false, stage: 'greeting', banner: '554 5.7.1 suspended', code: 554, text: '5.7.1 suspended', extensions: [] };
const facts = (probe: SmtpProbe, sandbox: SmtpProbe | null = sandboxOk, relay: SmtpRelayInUse = inUse): SmtpFacts => ({ inUse: relay, probe, sandbox });
const meta = { incidentId: 'incident-1', at: '2026-11-27T10:00:00.000Z', severity: 3 as const, target: 'alfred' };

describe('smtpDelivery plan', () => {
  it('a relay that accepts mail is nothing wrong, and nothing is switched', () => {
    const v = planSmtpDelivery(facts(primaryOk));
    expect(v).toMatchObject({ status: 'nothing-wrong', falseAlarm: true, steps: [] });
    expect(v.diagnosis).toMatch(/^SMTP works: the primary relay mx\.example:25/);
  });
  it('a 554 greeting with a working sandbox proposes the switch, with the reply in the diagnosis', () => {
    const v = planSmtpDelivery(facts(refusedAtGreeting));
    expect(v).toMatchObject({ status: 'mitigation-proposed', steps: [SWITCH_STEP] });
    expect(v.diagnosis).toBe('the primary relay mx.example:25 fails at greeting: 554 5.7.1 suspended; the sandbox relay sandbox.example:1025 accepts mail');
    expect(v.rootCause).toMatch(/refuses every session at the greeting/);
  });
  it('a 4xx greeting is a temporary refusal', () => {
    const v = planSmtpDelivery(facts({ ...refusedAtGreeting, code: 421, text: 'busy', banner: '421 busy' }));
    expect(v.rootCause).toMatch(/temporary refusal/);
  });
  it('a connection refused names the relay as down', () => {
    const down: SmtpProbe = { ...primaryOk, ok: false, stage: 'connect', connectMs: null, banner: null, extensions: [], error: 'connect ECONNREFUSED 10.0.0.1:25' };
    const v = planSmtpDelivery(facts(down));
    expect(v.steps).toEqual([SWITCH_STEP]);
    expect(v.rootCause).toMatch(/accepts no connection \(connect ECONNREFUSED/);
  });
  it('a relay that gave no answer is unknown: the incident escalates naming it, and no switch is chosen from it', () => {
    const unreached: SmtpProbe = { ...primaryOk, ok: false, stage: 'connect', connectMs: null, banner: null, extensions: [], error: 'connect ECONNREFUSED 10.0.0.1:25', unreached: true };
    const v = planSmtpDelivery(facts(unreached));
    expect(v).toMatchObject({ status: 'escalated', steps: [] });
    expect(v.escalate).toBe('could not observe the primary relay mx.example:25: connect ECONNREFUSED 10.0.0.1:25 (no answer at connect)');
    expect(v.diagnosis).not.toMatch(/SMTP works/);
    expect(probeChecks(unreached)).toEqual([expect.objectContaining({ check: 'primary relay mx.example:25: connect', ok: false, unknown: true })]);
    // A relay that went silent after the greeting is unknown at that stage too.
    const silent: SmtpProbe = { ...primaryOk, ok: false, stage: 'ehlo', error: 'no reply within 10000 ms', unreached: true };
    expect(planSmtpDelivery(facts(silent)).steps).toEqual([]);
    expect(probeChecks(silent).find((c) => c.check.endsWith('EHLO'))).toMatchObject({ ok: false, unknown: true, detail: 'no reply within 10000 ms' });
  });
  it('STARTTLS not offered and AUTH failed are problems, named as such, and the sandbox is proposed', () => {
    const noTls: SmtpProbe = { ...primaryOk, ok: false, stage: 'starttls', tls: null, auth: null, problem: 'STARTTLS not offered: credentials are not sent in plain text' };
    const v = planSmtpDelivery(facts(noTls));
    expect(v).toMatchObject({ status: 'mitigation-proposed', steps: [SWITCH_STEP] });
    expect(v.diagnosis).toMatch(/^the primary relay mx\.example:25 fails at starttls: STARTTLS not offered: credentials are not sent in plain text;/);
    expect(v.rootCause).toMatch(/offers no trusted TLS/);
    expect(probeChecks(noTls).find((c) => c.check.endsWith('STARTTLS'))).toEqual({ check: 'primary relay mx.example:25: STARTTLS', ok: false, detail: 'STARTTLS not offered: credentials are not sent in plain text' });

    const tls = { protocol: 'TLSv1.3', subject: 'CN=mx.example', issuer: 'CN=Example CA', validTo: '2027-01-01T00:00:00.000Z' };
    const badLogin: SmtpProbe = { ...primaryOk, ok: false, stage: 'auth', tls, auth: null, code: 535, text: '5.7.8 Authentication credentials invalid', problem: 'AUTH failed (535 5.7.8 Authentication credentials invalid)' };
    const w = planSmtpDelivery(facts(badLogin));
    expect(w.steps).toEqual([SWITCH_STEP]);
    expect(w.rootCause).toMatch(/refuses the login \(AUTH failed \(535 5\.7\.8 Authentication credentials invalid\)\): validate the SMTP credentials/);
    const checks = probeChecks(badLogin);
    expect(checks.find((c) => c.check.endsWith('STARTTLS'))).toMatchObject({ ok: true, detail: 'TLSv1.3, certificate CN=mx.example (issuer CN=Example CA) verified, valid until 2027-01-01T00:00:00.000Z' });
    expect(checks.find((c) => c.check.endsWith('AUTH'))).toEqual({ check: 'primary relay mx.example:25: AUTH', ok: false, detail: 'AUTH failed (535 5.7.8 Authentication credentials invalid)' });
    expect(checks.some((c) => c.unknown)).toBe(false);
    // A full probe over TLS with AUTH shows both stages as passed.
    const good = probeChecks({ ...primaryOk, tls, auth: 'PLAIN' });
    expect(good.map((c) => [c.check.replace(/^primary relay mx\.example:25: /, ''), c.ok])).toEqual([
      ['connect', true],
      ['greeting', true],
      ['EHLO', true],
      ['STARTTLS', true],
      ['AUTH', true],
      ['MAIL FROM / RCPT TO <check@example.com>', true],
    ]);
  });
  it('a sandbox that gave no answer is no working relay', () => {
    const v = planSmtpDelivery(facts(refusedAtGreeting, { ...sandboxOk, ok: false, stage: 'connect', connectMs: null, error: 'timeout', unreached: true }));
    expect(v).toMatchObject({ status: 'escalated', steps: [] });
    expect(v.escalate).toMatch(/the sandbox relay could not be reached \(timeout\)/);
  });
  it('a rejected recipient points at suppression (seed 004 step 5)', () => {
    const v = planSmtpDelivery(facts({ ...primaryOk, ok: false, stage: 'rcpt', code: 550, text: '5.7.1 suppressed' }));
    expect(v.rootCause).toMatch(/refuses the recipient \(550 5\.7\.1 suppressed\).*suppression/);
  });
  it('both relays failing escalates: no switch would help', () => {
    const v = planSmtpDelivery(facts(refusedAtGreeting, { ...sandboxOk, ok: false, stage: 'connect', connectMs: null, error: 'timeout' }));
    expect(v).toMatchObject({ status: 'escalated', steps: [] });
    expect(v.escalate).toMatch(/no working relay.*sandbox relay fails as well \(timeout\)/);
  });
  it('a failing sandbox already in use escalates', () => {
    const v = planSmtpDelivery(facts({ ...refusedAtGreeting, relay: 'sandbox' }, null, { ...inUse, relay: 'sandbox' }));
    expect(v).toMatchObject({ status: 'escalated', steps: [] });
    expect(v.escalate).toMatch(/sandbox relay in use fails too/);
  });
});

describe('smtpDelivery checks and report', () => {
  it('a probe refused at the greeting shows connect ok and the refusing greeting, nothing after it', () => {
    const c = probeChecks(refusedAtGreeting);
    expect(c.map((x) => [x.check, x.ok])).toEqual([
      ['primary relay mx.example:25: connect', true],
      ['primary relay mx.example:25: greeting', false],
    ]);
    expect(c[1]?.detail).toBe('554 5.7.1 suspended');
  });
  it('a full probe shows EHLO extensions and the accepted envelope', () => {
    const c = probeChecks(primaryOk);
    expect(c.find((x) => x.check.endsWith('EHLO'))?.detail).toBe('extensions: PIPELINING, SIZE 1000');
    expect(c.find((x) => x.check.includes('RCPT TO <check@example.com>'))).toMatchObject({ ok: true });
  });
  it('the report of a proposed switch names the step, the refusal and warns that the sandbox delivers nothing', () => {
    const f = facts(refusedAtGreeting);
    const r = smtpReport(f, planSmtpDelivery(f), meta);
    expect(r).toContain(`Approve step ${SWITCH_STEP}`);
    expect(r).toContain('| primary relay mx.example:25: greeting | FAIL | 554 5.7.1 suspended |');
    expect(r).toMatch(/delivers none/);
    expect(r).toMatch(/### Verdict\n[^\n]*\n\n[^\n]*refuses every session at the greeting/);
    expect(r).toMatch(/### Reply to the customer \(initial response\)/);
  });
  it('the report of a working relay is a resolution reply', () => {
    const f = facts(primaryOk);
    expect(smtpReport(f, planSmtpDelivery(f), meta)).toMatch(/### Reply to the customer \(resolution\)[\s\S]*No change was needed/);
  });
});
