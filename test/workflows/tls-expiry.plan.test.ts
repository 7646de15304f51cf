/** The INC-13 decision over its findings: a pure function, tested without the stack. */
import { planTlsExpiry, type TlsFacts } from '../../src/workflows/tls-expiry';
import { healthyTlsExpiry } from '../fixtures/healthy-facts';

const served = (daysLeft: number, extra: Partial<TlsFacts['served']> = {}): TlsFacts['served'] => ({ ...healthyTlsExpiry.served, daysLeft, ...extra });

const facts = (over: Partial<TlsFacts> = {}): TlsFacts => ({ ...healthyTlsExpiry, ...over });

describe('tlsExpiry plan', () => {
  it('enough days left: false alarm', () => {
    const p = planTlsExpiry(facts(), 'alfred');
    expect(p).toMatchObject({ falseAlarm: true, steps: [] });
    expect(p.diagnosis).toMatch(/30 days left \(threshold 7\)/);
  });

  it('expiring without a renewal command: emergency certificate, then reload', () => {
    const f = facts({ served: served(1), file: { exists: true, path: '/tls/server.crt', daysLeft: 1, fingerprint256: 'AA:BB' } });
    const p = planTlsExpiry(f, 'alfred');
    expect(p.steps).toEqual(['issue-emergency-certificate', 'reload-proxy']);
    expect(p.falseAlarm).toBeUndefined();
    expect(p.rootCause).toMatch(/about to expire/);
  });

  it('expired with a renewal command: renew, then reload', () => {
    const f = facts({ served: served(-2), file: { exists: true, path: '/tls/server.crt', daysLeft: -2, fingerprint256: 'AA:BB' }, renewConfigured: true });
    const p = planTlsExpiry(f, 'alfred');
    expect(p.steps).toEqual(['renew-certificate', 'reload-proxy']);
    expect(p.diagnosis).toMatch(/expired at/);
  });

  it('a renewed certificate on disk that is not served: reload only', () => {
    const f = facts({ served: served(1), file: { exists: true, path: '/tls/server.crt', daysLeft: 30, fingerprint256: 'CC:DD' } });
    expect(planTlsExpiry(f, 'alfred')).toMatchObject({ steps: ['reload-proxy'], rootCause: expect.stringMatching(/not reloaded/) });
  });

  it('an emergency certificate still in place with no renewal: escalate rather than issue another', () => {
    const f = facts({ served: served(0.5, { emergencyFor: 'incident-tlsExpiry-alfred' }), file: { exists: true, path: '/tls/server.crt', daysLeft: 0.5, fingerprint256: 'AA:BB' } });
    const p = planTlsExpiry(f, 'alfred');
    expect(p.steps).toEqual([]);
    expect(p.escalate).toMatch(/emergency certificate is still in place/);
  });

  it('no handshake at all: escalate, nothing automatic', () => {
    const f = facts({ served: { ok: false, endpoint: '127.0.0.1:58443', error: 'ECONNREFUSED', chain: [] } });
    const p = planTlsExpiry(f, 'alfred');
    expect(p.steps).toEqual([]);
    expect(p.escalate).toMatch(/does not complete a handshake \(ECONNREFUSED\)/);
  });
});
