/** The INC-14 decision and the PII redaction it relies on: pure functions, tested without the stack. */
import { redactLine, scanLines } from '../../src/activities/postgres/security';
import { planDataBreach, type BreachFacts } from '../../src/workflows/data-breach';
import { healthyDataBreach } from '../fixtures/healthy-facts';

const noPii = healthyDataBreach.pii.counts;

const facts = (over: Partial<BreachFacts> = {}): BreachFacts => ({ ...healthyDataBreach, ...over });

const leaking = (): Partial<BreachFacts> => ({
  pii: {
    ...facts().pii,
    linesWithPii: 3,
    counts: { ...noPii, email: 3, card_number: 3, api_key: 1 },
    distinctEmails: 3,
    samples: ['msg="billing profile loaded" user_email=a***@***.com card_number=****1111'],
    leakedKeys: [{ fingerprint: 'abcdef012345', userId: 6 }],
  },
  compromised: [{ userId: 6, fingerprint: 'abcdef012345' }],
});

describe('dataBreach plan', () => {
  it('no PII and only admins reading data: false alarm, nothing done', () => {
    const p = planDataBreach(facts());
    expect(p).toMatchObject({ falseAlarm: true, steps: [] });
    expect(p.diagnosis).toMatch(/no PII in 120 log lines/);
  });

  it('PII and a leaked key: evidence first, notify, then rotation', () => {
    const p = planDataBreach(facts(leaking()));
    expect(p.steps).toEqual(['preserve-evidence', 'notify-owner-security-legal', 'rotate-compromised-keys']);
    expect(p.severity).toBe(1);
    expect(p.diagnosis).toMatch(/PII in 3 api log lines \(3 email, 3 card_number, 1 api_key\); 1 keys leaked and still valid/);
    expect(p.report).toMatch(/\| card_number \| 3 \|/);
  });

  it('the report drafts seed 002\'s notice to the affected users, and names them', () => {
    const p = planDataBreach(facts({ ...leaking(), identifiedAt: '2026-11-27T04:10:00.000Z' }));
    const notice = (p.report ?? '').slice((p.report ?? '').indexOf('## Notice to affected users'));
    expect(notice).toBe(
      [
        '## Notice to affected users (draft, seed 002 §6)',
        '',
        'To: the users whose keys leaked: user 6; the owners of the 3 email addresses in the preserved logs. Legal decides whether GDPR Article 34 applies; a person sends it.',
        '',
        '> **Important Security Notice**',
        '>',
        '> We identified and resolved a security incident on 2026-11-27 that may have affected your account. Personal data (3 email, 3 card_number, 1 api_key) was written to our application logs. API keys appeared in clear text in those logs.',
        '>',
        "> **What we've done:** preserved the evidence; revoked the exposed API keys and issued new ones; informed our security and legal teams.",
        '> **What you should do:** use the new API key we issued and remove the old one from your clients.',
        '>',
        '> If you have questions, contact security@alfred.ai.',
      ].join('\n'),
    );
  });

  it('an erasure request adds the erasure step, even without exposure', () => {
    expect(planDataBreach(facts({ erasure: { requested: true, userId: 10 } })).steps).toEqual(['preserve-evidence', 'notify-owner-security-legal', 'gdpr-erasure']);
    const unknown = planDataBreach(facts({ ...leaking(), erasure: { requested: true, userId: null } }));
    expect(unknown.steps).not.toContain('gdpr-erasure');
    expect(unknown.rootCause).toMatch(/no user holds/);
  });

  it('data read by a non-admin counts as exposure', () => {
    const p = planDataBreach(facts({ access: { hours: 24, count: 2, byAction: { user_read: 2 }, actors: [7], byNonAdmins: 2 } }));
    expect(p.falseAlarm).toBeUndefined();
    expect(p.steps).toEqual(['preserve-evidence', 'notify-owner-security-legal']);
  });

  it('leaked keys without a key store escalate instead of losing the new keys', () => {
    expect(planDataBreach(facts({ ...leaking(), keyStoreConfigured: false })).escalate).toMatch(/no key store/);
  });
});

describe('PII redaction', () => {
  it('redaction keeps counts and shapes, never the data', () => {
    const line =
      'ts=2026-11-27T03:00:00Z level=debug msg="billing profile loaded" user_email=alice@example.com card_number="4111 1111 1111 1111" authorization="Bearer test-key-5" request_id=123456';
    const r = redactLine(line);
    expect(r.counts).toEqual({ email: 1, card_number: 1, api_key: 1 });
    expect(r.redacted).toContain('a***@***.com');
    expect(r.redacted).toContain('****1111');
    expect(r.redacted).toMatch(/Bearer \[key [0-9a-f]{12}\]/);
    for (const raw of ['alice@example.com', '4111 1111 1111 1111', 'test-key-5']) expect(r.redacted).not.toContain(raw);
    expect(r.redacted).toContain('ts=2026-11-27T03:00:00Z');
    // A number that fails the Luhn check is not a card.
    expect(redactLine('amount=1234567890123').counts).toEqual({});
  });

  it('a scan reports counts, distinct emails and at most five samples', () => {
    const lines = Array.from({ length: 8 }, (_, i) => `user_email=u${i % 3}@example.com card_number=5500-0000-0000-0004`);
    const s = scanLines([...lines, 'path=/health status=200']);
    expect(s).toMatchObject({ linesScanned: 9, linesWithPii: 8, distinctEmails: 3, counts: { email: 8, card_number: 8, api_key: 0 } });
    expect(s.samples).toHaveLength(5);
    expect(s.samples.join('\n')).not.toMatch(/u\d@example\.com|5500-0000/);
  });
});
