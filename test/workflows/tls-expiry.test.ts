/**
 * INC-13 drills on the real drill target: the proxy really serves a certificate about to expire, the
 * daily schedule's check really opens the incident, and after approval the proxy really serves a
 * new certificate (an emergency one, or a renewed one when a renewal command is configured).
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { connect } from 'node:tls';
import { runFault } from '../../drill/src/faults/catalog';
import { applySchedules, tlsCheckScheduleId } from '../../src/lib/schedules';
import { approveSignal, incidentWorkflowId } from '../../src/workflows/contracts';
import type { TlsCheckResult } from '../../src/workflows/tls-expiry-check';
import { REPO, TEST_POLICY, drillContainer, startEngine, waitUntil, type Engine } from '../helpers/engine';

jest.setTimeout(180_000);

let engine: Engine;
const prefix = `test-${process.pid}-`;
const incidentId = incidentWorkflowId('tlsExpiry', 'alfred');

/** What the proxy serves right now, as any client sees it. */
function served(): Promise<{ subject: string; notAfter: Date; fingerprint256: string }> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: 58443, rejectUnauthorized: false }, () => {
      const c = s.getPeerCertificate();
      s.destroy();
      const subject = Object.entries(c.subject)
        .map(([k, v]) => `${k}=${String(v)}`)
        .join(', ');
      resolve({ subject, notAfter: new Date(c.valid_to), fingerprint256: c.fingerprint256 });
    });
    s.once('error', reject);
  });
}

const daysLeft = (d: Date): number => (d.getTime() - Date.now()) / 86_400_000;

function certDir(): string {
  return path.resolve(engine.config.targets.alfred?.tls?.certDir ?? '');
}

function fileFingerprint(): string {
  return new X509Certificate(readFileSync(path.join(certDir(), 'server.crt'))).fingerprint256;
}

async function terminateIncident(): Promise<void> {
  const h = engine.client.workflow.getHandle(incidentId);
  const d = await h.describe().catch(() => undefined);
  if (d?.status.name === 'RUNNING') await h.terminate('test starting');
}

beforeAll(async () => {
  engine = await startEngine();
  await terminateIncident();
  await runFault('expiring-cert', true);
});

afterAll(async () => {
  // Leave the drill as we found it: a 30-day certificate, the proxy serving it, no test schedule.
  await engine.client.schedule
    .getHandle(tlsCheckScheduleId('alfred', prefix))
    .delete()
    .catch(() => undefined);
  await runFault('expiring-cert', true);
  await waitUntil('proxy serves a healthy certificate', async () => daysLeft((await served()).notAfter) > 7);
  await engine.stop();
});

test('a certificate far from expiry is a false alarm: nothing is done', async () => {
  const before = await served();
  const startedAt = (await (await drillContainer(engine.docker, 'proxy')).inspect()).State.StartedAt;
  const h = await engine.start({ runbook: 'tlsExpiry', target: 'alfred' });
  const rec = await engine.result(h);
  expect(rec.outcome).toBe('false-alarm');
  expect(rec.diagnosis).toMatch(/days left \(threshold 7\)/);
  expect(rec.findings.find((f) => f.check.startsWith('TLS handshake'))?.ok).toBe(true);
  expect(rec.findings.find((f) => f.check === 'certificate chain')?.detail).toMatch(/CN=alfred\.local/);
  expect(rec.actions).toEqual([]);
  expect((await served()).fingerprint256).toBe(before.fingerprint256);
  expect((await (await drillContainer(engine.docker, 'proxy')).inspect()).State.StartedAt).toBe(startedAt);
});

test('the daily schedule opens the incident for an expiring certificate; after approval the proxy serves an emergency one', async () => {
  await runFault('expiring-cert', false);
  await waitUntil('proxy serves the expiring certificate', async () => daysLeft((await served()).notAfter) < 2);

  // The schedule, as `remediate schedules apply` creates it (on this test's task queue); applying twice is harmless.
  const applied = await applySchedules(engine.client, engine.config, { taskQueue: engine.taskQueue, prefix, policy: TEST_POLICY });
  expect(applied.map((a) => a.state)).toEqual(['created']);
  expect((await applySchedules(engine.client, engine.config, { taskQueue: engine.taskQueue, prefix, policy: TEST_POLICY }))[0]?.state).toBe('updated');
  const schedule = engine.client.schedule.getHandle(tlsCheckScheduleId('alfred', prefix));
  const desc = await schedule.describe();
  expect(desc.spec.calendars).toEqual([expect.objectContaining({ hour: [{ start: 6, end: 6, step: 1 }], minute: [{ start: 0, end: 0, step: 1 }] })]);
  expect(desc.action).toMatchObject({ type: 'startWorkflow', workflowType: 'tlsExpiryCheck', taskQueue: engine.taskQueue });

  await schedule.trigger();
  let checkId = '';
  await waitUntil('the schedule started its check', async () => {
    const action = (await schedule.describe()).info.recentActions[0]?.action;
    checkId = action?.workflow.workflowId ?? '';
    return checkId !== '';
  });
  const check = (await engine.track(checkId).result()) as unknown as TlsCheckResult;
  expect(check).toMatchObject({ outcome: 'opened', incidentId, threshold: 7 });

  const h = engine.track(incidentId);
  const waiting = await engine.waitFor(h, (r) => r.pending.some((p) => p.stepId === 'issue-emergency-certificate'));
  expect(waiting.requestedBy).toBe('schedule:tls-expiry-check');
  expect(waiting.diagnosis).toMatch(/certificate expires .* days left, threshold 7/);
  expect(waiting.findings.find((f) => f.check.startsWith('TLS handshake'))?.ok).toBe(false);
  await h.signal(approveSignal, { incidentId: h.workflowId, stepId: 'issue-emergency-certificate', approver: 'alice' });
  await engine.waitFor(h, (r) => r.pending.some((p) => p.stepId === 'reload-proxy'));
  await h.signal(approveSignal, { incidentId: h.workflowId, stepId: 'reload-proxy', approver: 'bob' });
  const rec = await engine.result(h);

  expect(rec.outcome).toBe('resolved');
  expect(rec.actions.map((a) => [a.stepId, a.state])).toEqual([
    ['issue-emergency-certificate', 'done'],
    ['reload-proxy', 'done'],
  ]);
  expect(rec.timeline.some((t) => /verification passed: .*emergency certificate of this incident/.test(t.event))).toBe(true);
  const now = await served();
  expect(now.subject).toMatch(new RegExp(`O=remediation-engine emergency, OU=${incidentId}`));
  expect(daysLeft(now.notAfter)).toBeGreaterThan(0.9);
  expect(daysLeft(now.notAfter)).toBeLessThanOrEqual(1);
  expect(now.fingerprint256).toBe(fileFingerprint());
});

test('with a renewal command configured, the certificate is renewed and the proxy reloaded', async () => {
  const renewing = await startEngine({
    configure: (cfg) => {
      const tls = cfg.targets.alfred?.tls;
      if (tls) tls.renewCommand = ['bash', path.join(REPO, 'scripts/drill-tls.sh'), path.resolve(tls.certDir)];
    },
  });
  try {
    await runFault('expiring-cert', false);
    await waitUntil('proxy serves the expiring certificate', async () => daysLeft((await served()).notAfter) < 2);
    const h = await renewing.start({ runbook: 'tlsExpiry', target: 'alfred' });
    await renewing.waitFor(h, (r) => r.pending.some((p) => p.stepId === 'reload-proxy'));
    const mid = await renewing.waitFor(h, (r) => r.actions.some((a) => a.stepId === 'renew-certificate' && a.state === 'done'));
    expect(mid.actions.find((a) => a.stepId === 'renew-certificate')).toMatchObject({ risk: 'auto', approvals: [] });
    await h.signal(approveSignal, { incidentId: h.workflowId, stepId: 'reload-proxy', approver: 'alice' });
    const rec = await renewing.result(h);
    expect(rec.outcome).toBe('resolved');
    expect(rec.actions.map((a) => a.stepId)).toEqual(['renew-certificate', 'reload-proxy']);
    const now = await served();
    expect(now.subject).toBe('CN=alfred.local');
    expect(daysLeft(now.notAfter)).toBeGreaterThan(29);
    expect(now.fingerprint256).toBe(fileFingerprint());
  } finally {
    await renewing.stop();
  }
});
