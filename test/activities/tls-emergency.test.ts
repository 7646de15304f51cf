/**
 * The emergency certificate of INC-13, made in the process (no openssl binary): the activity writes
 * the pair into a certificate directory; node:crypto's X509Certificate reads it back (subject, SAN,
 * one day of validity, SHA-256 signature, the key that matches), and a real node:tls server serves it
 * to real clients, the engine's own handshake included.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import Docker from 'dockerode';
import pino from 'pino';
import { ApplicationFailure } from '@temporalio/common';
import { createTlsActivities } from '../../src/activities/tls/tls';
import { ErrorType } from '../../src/activities/engine/errors';
import { testConfig } from '../helpers/engine';

jest.setTimeout(60_000);

const INCIDENT = 'incident-tlsExpiry-emergency-test';
const DAY_MS = 86_400_000;
// sha256WithRSAEncryption (1.2.840.113549.1.1.11) as DER.
const SHA256_WITH_RSA = Buffer.from('06092a864886f70d01010b', 'hex');

const config = testConfig();
const dir = mkdtempSync(path.join(tmpdir(), 'tls-emergency-'));
const alfred = config.targets.alfred;
if (!alfred?.tls) throw new Error('the alfred target has no tls section');
alfred.tls = { ...alfred.tls, certDir: dir };
const acts = createTlsActivities({
  config,
  docker: new Docker({ socketPath: config.docker.socketPath }),
  logger: pino({ level: 'silent' }),
});
let server: tls.Server | undefined;

afterAll(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  rmSync(dir, { recursive: true, force: true });
});

/** A client's view of the server: what it was served and whether it verified. */
function handshake(
  opts: tls.ConnectionOptions,
): Promise<{ authorized: boolean; fingerprint256: string; error?: string }> {
  return new Promise((resolve) => {
    const s = tls.connect(opts, () => {
      const c = s.getPeerCertificate();
      s.destroy();
      resolve({ authorized: s.authorized, fingerprint256: c.fingerprint256 });
    });
    s.once('error', (err: NodeJS.ErrnoException) =>
      resolve({ authorized: false, fingerprint256: '', error: err.code ?? err.message }),
    );
  });
}

test('the emergency pair is written in place, parses as the certificate the seed command makes, and a TLS server serves it', async () => {
  const started = Date.now();
  const r = await acts.issueEmergencyCertificate({
    target: 'alfred',
    incidentId: INCIDENT,
    commonName: 'alfred.local',
    altNames: 'IP:127.0.0.1,DNS:localhost',
    days: 1,
  });
  expect(r.performed).toBe(true);

  // The files the terminator reads, with the modes of old; no half-made pair left beside them.
  expect(readdirSync(dir).sort()).toEqual(['server.crt', 'server.key']);
  expect(statSync(path.join(dir, 'server.key')).mode & 0o777).toBe(0o600);
  expect(statSync(path.join(dir, 'server.crt')).mode & 0o777).toBe(0o644);
  const certPem = readFileSync(path.join(dir, 'server.crt'), 'utf8');
  const keyPem = readFileSync(path.join(dir, 'server.key'), 'utf8');
  expect(keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);

  const x = new X509Certificate(certPem);
  expect(x.subject).toBe(`CN=alfred.local\nO=remediation-engine emergency\nOU=${INCIDENT}`);
  expect(x.issuer).toBe(x.subject);
  expect(x.subjectAltName).toBe('IP Address:127.0.0.1, DNS:localhost');
  const from = Date.parse(x.validFrom);
  const to = Date.parse(x.validTo);
  expect(to - from).toBe(DAY_MS);
  // Validity starts now (to the second the format keeps) and ends a day later.
  expect(from).toBeGreaterThanOrEqual(Math.floor(started / 1000) * 1000 - 1000);
  expect(from).toBeLessThanOrEqual(Date.now());
  expect(x.verify(x.publicKey)).toBe(true);
  expect(x.checkPrivateKey(createPrivateKey(keyPem))).toBe(true);
  expect(x.publicKey.asymmetricKeyType).toBe('rsa');
  expect(x.publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
  expect(x.raw.includes(SHA256_WITH_RSA)).toBe(true);
  expect(r.fingerprint256).toBe(x.fingerprint256);
  expect(r.notAfter).toBe(new Date(to).toISOString());

  // A real TLS server with the files the activity wrote.
  const srv = tls.createServer({ cert: certPem, key: keyPem }, (socket) => socket.end());
  server = srv;
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', () => resolve()));
  const port = (srv.address() as AddressInfo).port;
  // A client that trusts it verifies the chain and each name in the SAN: the address and the host name.
  expect(await handshake({ host: '127.0.0.1', port, ca: certPem })).toEqual({
    authorized: true,
    fingerprint256: x.fingerprint256,
  });
  expect(await handshake({ host: '127.0.0.1', port, ca: certPem, servername: 'localhost' })).toEqual({
    authorized: true,
    fingerprint256: x.fingerprint256,
  });
  // It is self-signed: a client with only the system's CAs refuses it, and a name it does not carry fails.
  expect((await handshake({ host: '127.0.0.1', port })).error).toBe('DEPTH_ZERO_SELF_SIGNED_CERT');
  expect((await handshake({ host: '127.0.0.1', port, ca: certPem, servername: 'other.example' })).error).toBe(
    'ERR_TLS_CERT_ALTNAME_INVALID',
  );

  // The engine's own handshake recognises it as this incident's emergency certificate.
  alfred.tlsEndpoint = `127.0.0.1:${port}`;
  const served = await acts.tlsServedCertificate({ target: 'alfred' });
  expect(served).toMatchObject({
    ok: true,
    emergencyFor: INCIDENT,
    commonName: 'alfred.local',
    altNames: 'IP:127.0.0.1,DNS:localhost',
    fingerprint256: x.fingerprint256,
    authorized: false,
  });
  // daysLeft is kept to two decimals, rounded down.
  expect(served.daysLeft).toBeGreaterThanOrEqual(0.99);
  expect(served.daysLeft).toBeLessThanOrEqual(1);

  // A retry of the step finds its own certificate and leaves it.
  const again = await acts.issueEmergencyCertificate({
    target: 'alfred',
    incidentId: INCIDENT,
    commonName: 'alfred.local',
    altNames: 'IP:127.0.0.1,DNS:localhost',
    days: 1,
  });
  expect(again).toEqual({ performed: false, notAfter: r.notAfter, fingerprint256: x.fingerprint256 });
  expect(readFileSync(path.join(dir, 'server.crt'), 'utf8')).toBe(certPem);
});

test('names and lifetimes that cannot go into a certificate are refused before anything is written', async () => {
  const refused = async (
    input: { commonName?: string; altNames?: string; days?: number },
    message: RegExp,
  ): Promise<void> => {
    const err = await acts
      .issueEmergencyCertificate({
        target: 'alfred',
        incidentId: 'incident-other',
        commonName: 'alfred.local',
        days: 1,
        ...input,
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).type).toBe(ErrorType.BadInput);
    expect((err as ApplicationFailure).message).toMatch(message);
  };
  const before = readFileSync(path.join(dir, 'server.crt'), 'utf8');
  await refused({ altNames: 'IP:999.1.1.1' }, /altNames: "IP:999\.1\.1\.1" is not a subjectAltName entry/);
  await refused({ altNames: 'URI:http://x' }, /altNames: "URI:http:\/\/x" is not a subjectAltName entry/);
  await refused({ commonName: 'a/b' }, /common name must be a host name/);
  await refused({ days: 0 }, /days must be a whole number from 1 to 365/);
  expect(readFileSync(path.join(dir, 'server.crt'), 'utf8')).toBe(before);
});
