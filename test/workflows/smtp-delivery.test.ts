/**
 * SMTP delivery on the real drill: the primary relay (a real SMTP server on loopback, started by
 * scripts/stack.sh) is made to refuse every session with 554 (fault `smtp-refuse`); the runbook probes
 * it for real, reports the refusal, waits for approval and really recreates the api container with the
 * sandbox relay as its SMTP host/port; verification probes the sandbox. A healthy primary is a false alarm.
 * A primary reached as a submission relay (STARTTLS, AUTH: test/helpers/smtp-relay.ts) that refuses the
 * engine's login is reported as such, and its password reaches no history.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FaultContext } from '../../drill/src/faults/context';
import { approveSignal } from '../../src/workflows/contracts';
import { SWITCH_STEP } from '../../src/workflows/smtp-delivery';
import { makeSelfSignedCertificate } from '../../src/activities/tls/self-signed';
import { decodedHistory } from '../helpers/codec';
import { injectFault, undoFault } from '../helpers/drill';
import { startTestRelay } from '../helpers/smtp-relay';
import { drillContainer, startEngine, waitUntil, type Engine } from '../helpers/engine';

jest.setTimeout(180_000);

let engine: Engine;

function smtp() {
  const s = engine.config.targets.alfred?.smtp;
  if (!s) throw new Error('the alfred target has no smtp section');
  return s;
}

async function apiEnv(): Promise<{ id: string; env: string[] }> {
  const info = await (await drillContainer(engine.docker, 'api')).inspect();
  return { id: info.Id, env: info.Config.Env ?? [] };
}

/** The api back on the primary relay, as scripts/stack.sh creates it (a no-op when it already is). */
async function apiOnPrimary(): Promise<void> {
  const { primary, hostEnv, portEnv } = smtp();
  const { env } = await apiEnv();
  const port = env.find((kv) => kv.startsWith(`${portEnv}=`));
  if (port === undefined || port === `${portEnv}=${primary.port}`) return;
  const ctx = new FaultContext();
  try {
    await ctx.containers.recreate('api', { env: { [hostEnv]: primary.host, [portEnv]: String(primary.port) } });
  } finally {
    await ctx.close();
  }
  await waitUntil('the drill api healthy on the primary relay', async () => (await fetch(`${engine.config.targets.alfred?.baseUrl}/health`)).ok);
}

beforeAll(async () => {
  engine = await startEngine();
  await undoFault('smtp-refuse');
  await apiOnPrimary();
});

afterAll(async () => {
  await undoFault('smtp-refuse');
  await apiOnPrimary();
  await engine.stop();
});

test('a primary relay that accepts mail: a false alarm, nothing done', async () => {
  const before = await apiEnv();
  const h = await engine.start({ runbook: 'smtpDelivery', target: 'alfred' });
  const rec = await engine.result(h);
  expect(rec.outcome).toBe('false-alarm');
  expect(rec.actions).toEqual([]);
  expect(rec.diagnosis).toMatch(/^SMTP works: the primary relay 127\.0\.0\.1:58025 accepted EHLO, MAIL FROM and RCPT TO/);
  // Real findings from a real conversation: the greeting and the EHLO keywords.
  expect(rec.findings.find((f) => f.check === 'primary relay 127.0.0.1:58025: greeting')).toMatchObject({ ok: true, detail: expect.stringMatching(/^220 primary\.smtp\.alfred\.local/) });
  expect(rec.findings.find((f) => f.check === 'primary relay 127.0.0.1:58025: EHLO')?.detail).toMatch(/SIZE 10485760/);
  expect(rec.findings.find((f) => f.check === 'primary relay 127.0.0.1:58025: connect')?.detail).toMatch(/^connected in \d+ ms$/);
  expect(rec.report).toMatch(/### Reply to the customer \(resolution\)/);
  expect((await apiEnv()).id).toBe(before.id);
});

test('a primary that speaks STARTTLS and refuses the login: "AUTH failed (535 ...)" is the finding, and the password reaches no history', async () => {
  const password = 'smtp-pw-5b1e0c2d-not-in-history';
  const dir = mkdtempSync(path.join(tmpdir(), 'smtp-auth-'));
  const pair = await makeSelfSignedCertificate({ subject: [['CN', 'relay.test.local']], altNames: 'IP:127.0.0.1', days: 1 });
  writeFileSync(path.join(dir, 'ca.pem'), pair.cert);
  writeFileSync(path.join(dir, 'password'), `${password}\n`, { mode: 0o600 });
  const relay = await startTestRelay({ tls: pair, authMethods: ['PLAIN', 'LOGIN'], user: 'mailer', password: 'the-right-one' });
  const primary = { ...smtp().primary };
  // The api still names the primary 127.0.0.1:58025; the engine reaches that relay at the test relay's port.
  smtp().primary = { ...primary, probePort: relay.port, caFile: path.join(dir, 'ca.pem'), auth: { user: 'mailer', password: { file: path.join(dir, 'password') } } };
  try {
    const h = await engine.start({ runbook: 'smtpDelivery', target: 'alfred' });
    const waiting = await engine.waitFor(h, (r) => r.pending.some((p) => p.stepId === SWITCH_STEP));
    const at = `primary relay 127.0.0.1:${relay.port}`;
    expect(waiting.findings.find((f) => f.check === `${at}: STARTTLS`)).toMatchObject({ ok: true, detail: expect.stringMatching(/^TLSv1\.[23], certificate CN=relay\.test\.local .*verified/) });
    expect(waiting.findings.find((f) => f.check === `${at}: AUTH`)).toMatchObject({ ok: false, detail: 'AUTH failed (535 5.7.8 Authentication credentials invalid)' });
    expect(waiting.findings.some((f) => f.unknown)).toBe(false);
    expect(waiting.diagnosis).toMatch(new RegExp(`^the primary relay 127\\.0\\.0\\.1:${relay.port} fails at auth: AUTH failed \\(535 `));
    expect(waiting.report).toMatch(/refuses the login .*validate the SMTP credentials/);
    // The relay saw the diagnosis's login and the precondition's (re-checked before asking), both over
    // TLS; the engine holds no password anywhere Temporal keeps.
    const login = { method: 'PLAIN', user: 'mailer', secure: true, ok: false };
    expect(relay.seen.auths).toEqual([login, login]);
    expect(relay.seen.mailFrom).toEqual([]);
    await h.terminate('test done');
    // Payload data as the text it carries (the history's JSON form keeps it in base64).
    const history = JSON.stringify(await decodedHistory(h), (k, v: unknown) =>
      v instanceof Uint8Array ? Buffer.from(v).toString('utf8') : k === 'data' && typeof v === 'string' ? Buffer.from(v, 'base64').toString('utf8') : v,
    );
    expect(history).toContain('AUTH failed (535');
    for (const s of [password, Buffer.from(password).toString('base64'), Buffer.from(`\0mailer\0${password}`).toString('base64')]) {
      expect(history).not.toContain(s);
    }
  } finally {
    smtp().primary = primary;
    await relay.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a refusing primary is reported with its reply, the api is switched to the sandbox after approval, and verified', async () => {
  await injectFault('smtp-refuse');
  const before = await apiEnv();

  const h = await engine.start({ runbook: 'smtpDelivery', target: 'alfred', requestedBy: 'dave', params: { recipient: 'alice@example.com' } });
  const waiting = await engine.waitFor(h, (r) => r.pending.some((p) => p.stepId === SWITCH_STEP));
  expect(waiting.diagnosis).toMatch(/the primary relay 127\.0\.0\.1:58025 fails at greeting: 554 5\.7\.1 Service unavailable; sending suspended/);
  expect(waiting.diagnosis).toMatch(/the sandbox relay 127\.0\.0\.1:58026 accepts mail/);
  expect(waiting.findings.find((f) => f.check === 'primary relay 127.0.0.1:58025: greeting')).toMatchObject({ ok: false, detail: expect.stringMatching(/^554 /) });
  expect(waiting.findings.find((f) => f.check === 'sandbox relay 127.0.0.1:58026: MAIL FROM / RCPT TO <alice@example.com>')).toMatchObject({ ok: true });
  // The report carries the refusal (code and text) and the reply while it waits.
  expect(waiting.report).toMatch(/\| primary relay 127\.0\.0\.1:58025: greeting \| FAIL \| 554 5\.7\.1 Service unavailable; sending suspended for this account \|/);
  expect(waiting.report).toMatch(/refuses every session at the greeting/);
  expect(waiting.report).toMatch(/### Reply to the customer \(initial response\)/);
  // Nothing changes before the approval.
  expect((await apiEnv()).id).toBe(before.id);

  await h.signal(approveSignal, { incidentId: h.workflowId, stepId: SWITCH_STEP, approver: 'alice' });
  const rec = await engine.result(h);
  expect(rec.outcome).toBe('resolved');
  expect(rec.actions).toEqual([expect.objectContaining({ stepId: SWITCH_STEP, state: 'done', approvals: ['alice'] })]);
  expect(rec.timeline.some((t) => /verification passed: the sandbox relay 127\.0\.0\.1:58026 in use accepts mail/.test(t.event))).toBe(true);
  // The real effect: a new api container whose environment selects the sandbox relay.
  const after = await apiEnv();
  expect(after.id).not.toBe(before.id);
  expect(after.env).toEqual(expect.arrayContaining(['SMTP_HOST=127.0.0.1', 'SMTP_PORT=58026']));
  await waitUntil('the recreated api healthy', async () => (await fetch(`${engine.config.targets.alfred?.baseUrl}/health`)).ok, 30_000);
});
