/**
 * The SMTP probe against real relays over real sockets (test/helpers/smtp-relay.ts, smtp-server on
 * loopback with a certificate made here): STARTTLS with the certificate verified, AUTH PLAIN and
 * LOGIN with the password read from a secret file, and what each failure reads as. The relays record
 * what they saw, so "credentials never sent in plain text" is checked on the relay's side.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import pino from 'pino';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { EngineConfig } from '../../src/config';
import { createSmtpActivities, type SmtpProbe } from '../../src/activities/smtp/smtp';
import { makeSelfSignedCertificate } from '../../src/activities/tls/self-signed';
import { ErrorType } from '../../src/activities/engine/errors';
import { testConfig } from '../helpers/engine';
import { startTestRelay, type TestRelay } from '../helpers/smtp-relay';

jest.setTimeout(60_000);

const USER = 'mailer@alfred.local';
const PASSWORD = 'pw-7f3c9a1e-relay-secret';
type Relay = NonNullable<EngineConfig['targets'][string]['smtp']>['primary'];

const config = testConfig();
const acts = createSmtpActivities({
  config,
  docker: new Docker({ socketPath: config.docker.socketPath }),
  logger: pino({ level: 'silent' }),
});
const env = new MockActivityEnvironment();
let dir: string;
let caFile: string;
let passwordFile: string;
let wrongPasswordFile: string;
let pair: { cert: string; key: string };
const relays: TestRelay[] = [];

async function relay(opts: Parameters<typeof startTestRelay>[0]): Promise<TestRelay> {
  const r = await startTestRelay({ user: USER, password: PASSWORD, ...opts });
  relays.push(r);
  return r;
}

/** Probes `primary` configured as given: the activity the runbook calls, reading the real settings. */
function probe(primary: Relay): Promise<SmtpProbe> {
  const smtp = config.targets.alfred?.smtp;
  if (!smtp) throw new Error('the alfred target has no smtp section');
  smtp.primary = primary;
  return env.run(acts.probeSmtpRelay, { target: 'alfred', relay: 'primary' as const });
}

/** Nothing in the result could give the password away, in clear or as it went on the wire. */
function expectNoSecret(p: SmtpProbe): void {
  const text = JSON.stringify(p);
  for (const s of [
    PASSWORD,
    Buffer.from(PASSWORD).toString('base64'),
    Buffer.from(`\0${USER}\0${PASSWORD}`).toString('base64'),
  ]) {
    expect(text).not.toContain(s);
  }
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'smtp-probe-'));
  pair = await makeSelfSignedCertificate({
    subject: [['CN', 'relay.test.local']],
    altNames: 'IP:127.0.0.1',
    days: 1,
  });
  caFile = path.join(dir, 'relay-ca.pem');
  writeFileSync(caFile, pair.cert);
  passwordFile = path.join(dir, 'smtp-password');
  writeFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
  wrongPasswordFile = path.join(dir, 'smtp-password-wrong');
  writeFileSync(wrongPasswordFile, 'not-the-password\n', { mode: 0o600 });
});

afterAll(async () => {
  await Promise.all(relays.map((r) => r.close()));
  rmSync(dir, { recursive: true, force: true });
});

test('STARTTLS, the certificate verified against the configured CA, then AUTH PLAIN: the probe passes', async () => {
  const r = await relay({ tls: pair, authMethods: ['PLAIN', 'LOGIN'] });
  const p = await probe({
    host: '127.0.0.1',
    port: r.port,
    caFile,
    auth: { user: USER, password: { file: passwordFile } },
  });
  expect(p).toMatchObject({ ok: true, stage: 'done', auth: 'PLAIN', code: null, error: null });
  expect(p.tls).toMatchObject({
    protocol: expect.stringMatching(/^TLSv1\.[23]$/),
    subject: 'CN=relay.test.local',
    issuer: 'CN=relay.test.local',
  });
  // The second EHLO is the one kept: it offers AUTH, which the relay keeps for TLS sessions.
  expect(p.extensions).toEqual(expect.arrayContaining(['AUTH PLAIN LOGIN']));
  expect(r.seen.auths).toEqual([{ method: 'PLAIN', user: USER, secure: true, ok: true }]);
  expect(r.seen.rcptTo).toEqual(['delivery-check@alfred.local']);
  expectNoSecret(p);
});

test('AUTH LOGIN when the relay offers only LOGIN', async () => {
  const r = await relay({ tls: pair, authMethods: ['LOGIN'] });
  const p = await probe({
    host: '127.0.0.1',
    port: r.port,
    caFile,
    auth: { user: USER, password: { file: passwordFile } },
  });
  expect(p).toMatchObject({ ok: true, stage: 'done', auth: 'LOGIN' });
  expect(r.seen.auths).toEqual([{ method: 'LOGIN', user: USER, secure: true, ok: true }]);
  expectNoSecret(p);
});

test('a wrong password: "AUTH failed (535 ...)", a problem at auth, and nothing sent after it', async () => {
  const r = await relay({ tls: pair, authMethods: ['PLAIN', 'LOGIN'] });
  for (const mechanism of ['PLAIN', 'LOGIN'] as const) {
    const p = await probe({
      host: '127.0.0.1',
      port: r.port,
      caFile,
      auth: { user: USER, password: { file: wrongPasswordFile }, mechanism },
    });
    expect(p).toMatchObject({ ok: false, stage: 'auth', code: 535, auth: null });
    expect(p.problem).toMatch(/^AUTH failed \(535 5\.7\.8 .*credentials invalid\)$/i);
    expect(p.unreached).toBeUndefined();
    expect(JSON.stringify(p)).not.toContain('not-the-password');
  }
  expect(r.seen.auths.map((a) => [a.method, a.secure, a.ok])).toEqual([
    ['PLAIN', true, false],
    ['LOGIN', true, false],
  ]);
  expect(r.seen.mailFrom).toEqual([]);
});

test('a relay without STARTTLS when AUTH is configured: "STARTTLS not offered", and the credentials are never sent', async () => {
  const r = await relay({ authMethods: ['PLAIN', 'LOGIN'] });
  const p = await probe({ host: '127.0.0.1', port: r.port, auth: { user: USER, password: { file: passwordFile } } });
  expect(p).toMatchObject({
    ok: false,
    stage: 'starttls',
    tls: null,
    problem: 'STARTTLS not offered: credentials are not sent in plain text',
  });
  // The relay offered AUTH in plain text: the probe declined it.
  expect(p.extensions).toEqual(expect.arrayContaining(['AUTH PLAIN LOGIN']));
  expect(r.seen).toMatchObject({ auths: [], mailFrom: [], tlsSessions: 0 });
  // requireTls without AUTH refuses a plain relay as well.
  const plain = await probe({ host: '127.0.0.1', port: r.port, requireTls: true });
  expect(plain).toMatchObject({ ok: false, stage: 'starttls', problem: 'STARTTLS not offered' });
});

test('a certificate the engine does not trust: "certificate not trusted", and the credentials are never sent', async () => {
  const r = await relay({ tls: pair, authMethods: ['PLAIN', 'LOGIN'] });
  const p = await probe({ host: '127.0.0.1', port: r.port, auth: { user: USER, password: { file: passwordFile } } });
  expect(p).toMatchObject({ ok: false, stage: 'starttls', tls: null });
  expect(p.problem).toMatch(/^certificate not trusted: DEPTH_ZERO_SELF_SIGNED_CERT \(subject CN=relay\.test\.local\)$/);
  // Trusted CA, wrong name: the certificate is not issued for the name the relay is known by.
  const named = await probe({
    host: '127.0.0.1',
    port: r.port,
    caFile,
    tlsName: 'smtp.example.com',
    auth: { user: USER, password: { file: passwordFile } },
  });
  expect(named).toMatchObject({ ok: false, stage: 'starttls' });
  expect(named.problem).toBe(
    'certificate not trusted: ERR_TLS_CERT_ALTNAME_INVALID: not issued for smtp.example.com (subject CN=relay.test.local, names IP Address:127.0.0.1)',
  );
  expect(r.seen).toMatchObject({ auths: [], mailFrom: [] });
});

test('a plain port-25 relay with neither STARTTLS nor AUTH still works as before', async () => {
  const r = await relay({});
  const p = await probe({ host: '127.0.0.1', port: r.port });
  expect(p).toMatchObject({ ok: true, stage: 'done', tls: null, auth: null });
  expect(p.extensions).not.toContain('STARTTLS');
  expect(r.seen.rcptTo).toEqual(['delivery-check@alfred.local']);
});

test('no answer from the relay is unknown (unreached), not a refusal', async () => {
  // A port that was just free: nothing listens there.
  const free = await new Promise<number>((resolve) => {
    const s: Server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
  const p = await probe({ host: '127.0.0.1', port: free });
  expect(p).toMatchObject({ ok: false, stage: 'connect', unreached: true, code: null });
  expect(p.error).toMatch(/ECONNREFUSED/);
  expect(p.problem).toBeUndefined();
});

test('a CA file or a password that cannot be read is a configuration error, named without its content', async () => {
  const expectNotConfigured = async (primary: Relay, message: RegExp): Promise<void> => {
    const err = await probe(primary).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).type).toBe(ErrorType.NotConfigured);
    expect((err as ApplicationFailure).nonRetryable).toBe(true);
    expect((err as ApplicationFailure).message).toMatch(message);
  };
  await expectNotConfigured(
    { host: '127.0.0.1', port: 1, caFile: path.join(dir, 'missing.pem') },
    /^smtp\.primary\.caFile cannot be read \(ENOENT: /,
  );
  await expectNotConfigured(
    { host: '127.0.0.1', port: 1, auth: { user: USER, password: { env: 'NO_SUCH_SMTP_PASSWORD_VAR' } } },
    /^smtp\.primary\.auth\.password is empty \(NO_SUCH_SMTP_PASSWORD_VAR is not set\)$/,
  );
});
