/**
 * INC-09 drills on the real drill target: the audit chain is really broken in PostgreSQL (tampered
 * content, missing hashes, a raced link); the runbook classifies the break from the rows, preserves
 * evidence without touching a row, re-hashes after two approvals, or explains and escalates.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { runFault } from '../../drill/src/faults/catalog';
import { FaultContext } from '../../drill/src/faults/context';
import { approveSignal, closeSignal } from '../../src/workflows/contracts';
import { startEngine, type Engine } from '../helpers/engine';

jest.setTimeout(180_000);

let engine: Engine;
const drill = new FaultContext();

/** Every audit row as stored, up to the highest id seen now. */
async function snapshot(): Promise<string> {
  const { rows } = await (await drill.pg()).query(
    'SELECT id::text AS id, actor_user_id, action, target_type, target_id, details, created_at, previous_hash, hash FROM audit_logs ORDER BY audit_logs.id',
  );
  return JSON.stringify(rows);
}

async function verify(): Promise<{ valid: boolean; first_break_at: string | null; break_kind: string | null }> {
  return drill.api.admin('POST', '/v1/admin/audit-logs/verify');
}

beforeAll(async () => {
  await runFault('break-audit-chain', true);
  engine = await startEngine({
    // A verification deadline longer than any test, as the worker's policy for this target.
    extraTargets: ['alfred-slow-verify'],
    configure: (c) => {
      c.policy.overrides = [{ match: { target: 'alfred-slow-verify' }, verifyDeadlineMs: 600_000 }];
    },
  });
});

afterAll(async () => {
  // Leave the drill as we found it: every kind of break undone, the chain valid.
  await runFault('break-audit-chain', true);
  await drill.close();
  await engine.stop();
});

test('a valid chain is a false alarm: nothing is done', async () => {
  const before = await snapshot();
  const h = await engine.start({ runbook: 'auditChainBreak', target: 'alfred' });
  const rec = await engine.result(h);
  expect(rec.outcome).toBe('false-alarm');
  expect(rec.actions).toEqual([]);
  expect(await snapshot()).toBe(before);
});

test('tampering: evidence exported with a matching sha256 manifest, security notified, no audit row changed', async () => {
  await runFault('break-audit-chain', false, { kind: 'tamper' });
  const broken = await verify();
  expect(broken).toMatchObject({ valid: false, break_kind: 'content_mismatch' });
  const before = await snapshot();

  // A verification deadline longer than the test: the hand-off to security must not wait for it.
  // During a compliance audit (seed 002: "SEV-1 if during compliance audit").
  const h = await engine.start({ runbook: 'auditChainBreak', target: 'alfred-slow-verify', params: { complianceAudit: true } });
  const rec = await engine.waitFor(h, (r) => r.phase === 'ESCALATED');
  expect(rec.severity).toBe(1);
  expect(rec.timeline.map((t) => t.event)).toContain('severity raised from SEV-2 to SEV-1');
  expect(rec.timeline.some((t) => /verification/.test(t.event))).toBe(false);
  expect(rec.diagnosis).toMatch(new RegExp(`break at entry ${broken.first_break_at} .*content no longer matches its hash \\(tampering\\)`));
  expect(rec.report).toMatch(/\| \*\*\d+\*\* \|/);
  expect(rec.actions).toEqual([expect.objectContaining({ stepId: 'preserve-evidence', state: 'done', risk: 'auto' })]);
  expect(rec.timeline.some((t) => /notified @security-lead, @sergey-bar: Audit chain tampering/.test(t.event))).toBe(true);
  expect(rec.escalations.join(' ')).toMatch(/entries are evidence and are not changed; evidence intact/);

  // The evidence: every file the manifest names exists and hashes to what it says.
  const dir = path.resolve(engine.config.evidence.dir, h.workflowId);
  const manifest = readFileSync(path.join(dir, 'manifest.sha256'), 'utf8').trim().split('\n');
  expect(manifest.map((l) => l.split('  ')[1])).toEqual(['audit_logs.jsonl', 'chain-verify.json']);
  for (const line of manifest) {
    const [sum, name] = line.split('  ') as [string, string];
    expect(existsSync(path.join(dir, name))).toBe(true);
    expect(createHash('sha256').update(readFileSync(path.join(dir, name))).digest('hex')).toBe(sum);
  }
  const exported = readFileSync(path.join(dir, 'audit_logs.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { id: string; details: Record<string, unknown> });
  expect(exported.find((r) => r.id === broken.first_break_at)?.details).toMatchObject({ approved_by: 'mallory' });
  // Nothing in the audit table changed.
  expect(await snapshot()).toBe(before);

  await h.signal(closeSignal, { incidentId: h.workflowId, by: 'alice', note: 'handed to security' });
  expect((await engine.result(h)).outcome).toBe('escalated');
  await runFault('break-audit-chain', true, { kind: 'tamper' });
});

test('missing hashes: recomputed forward from the break after two approvals; chain verify valid', async () => {
  await runFault('break-audit-chain', false, { kind: 'missing-hash' });
  const broken = await verify();
  expect(broken).toMatchObject({ valid: false, break_kind: 'missing_hash' });

  const h = await engine.start({ runbook: 'auditChainBreak', target: 'alfred' });
  await engine.waitFor(h, (r) => r.pending.some((p) => p.stepId === 'rehash-chain'));
  await h.signal(approveSignal, { incidentId: h.workflowId, stepId: 'rehash-chain', approver: 'alice' });
  const waiting = await engine.waitFor(h, (r) => r.pending.some((p) => p.stepId === 'rehash-chain' && p.approvals.length === 1));
  expect(waiting.diagnosis).toMatch(/5 entries written without hashes \(migration error\)/);
  expect((await verify()).valid).toBe(false);
  await h.signal(approveSignal, { incidentId: h.workflowId, stepId: 'rehash-chain', approver: 'bob' });
  const rec = await engine.result(h);

  expect(rec.outcome).toBe('resolved');
  expect(rec.actions).toEqual([expect.objectContaining({ stepId: 'rehash-chain', state: 'done', approvals: ['alice', 'bob'] })]);
  expect(rec.actions[0]?.detail).toMatch(/recomputed hashes of 5 entries/);
  expect(await verify()).toMatchObject({ valid: true, first_break_at: null });
  const { rows } = await (await drill.pg()).query<{ n: string }>('SELECT count(*)::text AS n FROM audit_logs WHERE hash IS NULL OR previous_hash IS NULL');
  expect(rows[0]?.n).toBe('0');
});

test('a raced link is explained and escalated without changing a row', async () => {
  await runFault('break-audit-chain', false, { kind: 'race' });
  expect(await verify()).toMatchObject({ valid: false, break_kind: 'previous_hash_race' });
  const before = await snapshot();
  const h = await engine.start({ runbook: 'auditChainBreak', target: 'alfred' });
  const rec = await engine.waitFor(h, (r) => r.phase === 'ESCALATED');
  expect(rec.diagnosis).toMatch(/two writers computed their hash from the same chain head \(race\)/);
  expect(rec.escalations.join(' ')).toMatch(/re-linking rewrites every later hash/);
  expect(rec.actions).toEqual([]);
  expect(await snapshot()).toBe(before);
  await h.signal(closeSignal, { incidentId: h.workflowId, by: 'alice' });
  expect((await engine.result(h)).outcome).toBe('escalated');
  await runFault('break-audit-chain', true, { kind: 'race' });
});
