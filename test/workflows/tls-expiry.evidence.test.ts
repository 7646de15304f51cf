/** INC-13 evidence before conclusions, as pure decisions: a handshake that fails or a file not found shows no certificate. */
import { planTlsExpiry, verifyServed, type TlsFacts } from '../../src/workflows/tls-expiry';
import { healthyTlsExpiry } from '../fixtures/healthy-facts';

const served = (daysLeft: number): TlsFacts['served'] => ({ ...healthyTlsExpiry.served, daysLeft, chain: [] });
const failed: TlsFacts['served'] = { ok: false, endpoint: '127.0.0.1:1', error: 'connect ECONNREFUSED 127.0.0.1:1', chain: [] };
const facts = (over: Partial<TlsFacts> = {}): TlsFacts => ({ ...healthyTlsExpiry, served: served(30), renewConfigured: true, evidenceRule: true, ...over });
const missingFile = { exists: false, path: '/tls/no-such.crt' };

function expectEscalation(f: TlsFacts, what: RegExp): void {
  const p = planTlsExpiry(f, 'alfred');
  expect(p.falseAlarm).toBeUndefined();
  expect(p.steps).toEqual([]);
  expect(p.escalate).toMatch(/could not observe/);
  expect(p.escalate).toMatch(what);
}

describe('INC-13 plan over unobserved signals', () => {
  test('a handshake that fails (tlsEndpoint)', () => {
    expectEscalation(facts({ served: failed }), /certificate served on 127\.0\.0\.1:1: the TLS handshake failed: connect ECONNREFUSED.*tlsEndpoint/);
  });

  test('no certificate file where the settings point (tls.certDir, tls.certFile): no false alarm, and no renewal run automatically on it', () => {
    expectEscalation(facts({ file: missingFile }), /certificate file the proxy reads: no file at \/tls\/no-such\.crt .*tls\.certFile/);
    expectEscalation(facts({ file: missingFile, served: served(2) }), /certificate file the proxy reads/);
  });

  test('positive controls: far from expiry is a false alarm; expiring is renewed', () => {
    expect(planTlsExpiry(facts(), 'alfred')).toMatchObject({ falseAlarm: true, steps: [] });
    const file = { exists: true, path: '/tls/server.crt', daysLeft: 2, fingerprint256: 'AA:BB', notAfter: '2026-12-01T00:00:00.000Z' };
    expect(planTlsExpiry(facts({ served: served(2), file }), 'alfred').steps).toEqual(['renew-certificate', 'reload-proxy']);
  });

  test('incidents begun before the rule decide as they did', () => {
    expect(planTlsExpiry(facts({ file: missingFile, evidenceRule: undefined }), 'alfred').falseAlarm).toBe(true);
  });
});

describe('INC-13 verification', () => {
  test('a handshake that fails is unknown, not a verdict', () => {
    expect(verifyServed(failed, facts(), 'inc-1')).toMatchObject({ ok: false, unknown: expect.stringMatching(/TLS handshake failed/) });
  });
  test('a certificate valid long enough is recovery; one about to expire is a failure', () => {
    expect(verifyServed(served(30), facts(), 'inc-1').ok).toBe(true);
    expect(verifyServed(served(2), facts(), 'inc-1')).toEqual({ ok: false, detail: expect.stringMatching(/2 days/) });
  });
});
