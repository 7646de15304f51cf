/**
 * INC-14 drills on the real drill target: the api really writes emails, card numbers and a caller's
 * bearer key into its logs; the runbook preserves evidence, rotates the leaked key through the admin
 * API, erases a user on request and waits for a person's checklist. The whole event history is then
 * searched for the raw personal data: none of it may be there.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { MANIFEST } from '../../src/activities/engine/evidence';
import { approveSignal, guardWorkflowId, type IncidentRecord } from '../../src/workflows/contracts';
import { CHECKLIST_ITEMS, checklistSignal } from '../../src/workflows/data-breach';
import { startEngine, type Engine, type IncidentHandle } from '../helpers/engine';
import { API, drillPg, processFault } from '../helpers/drill';
import { decodedHistory } from '../helpers/codec';

jest.setTimeout(180_000);

let engine: Engine;
/** The drill's test keys: test-key-N belongs to user N + 1. */
const LEAKER = { key: 'test-key-5', userId: 6 };
const ERASED = { key: 'test-key-9', userId: 10 };
const CARDS = ['4111 1111 1111 1111', '5500-0000-0000-0004', '340000000000009'];
let emails: Map<number, string>;
const evidenceDirs: string[] = [];
let cleanSince: string;

const sha256 = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');

async function sql<T extends Record<string, unknown>>(text: string, params: unknown[] = []): Promise<T[]> {
  const client = drillPg();
  await client.connect();
  try {
    return (await client.query<T>(text, params)).rows;
  } finally {
    await client.end();
  }
}

async function whoAmI(key: string): Promise<{ status: number; id?: number }> {
  const res = await fetch(`${API}/v1/users/me`, { headers: { authorization: `Bearer ${key}` } });
  return { status: res.status, ...(res.ok ? { id: Number(((await res.json()) as { id: number }).id) } : {}) };
}

function keyStoreFile(userId: number): string {
  return path.resolve(engine.config.targets.alfred?.security.keyStoreDir ?? '', `user-${userId}.key`);
}

/** Every string and decoded (decrypted) payload in the workflow's event history. */
async function historyText(h: IncidentHandle): Promise<string> {
  const parts: string[] = [];
  const walk = (v: unknown): void => {
    if (v instanceof Uint8Array) parts.push(Buffer.from(v).toString('utf8'));
    else if (typeof v === 'string') parts.push(v);
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(await decodedHistory(h));
  return parts.join('\n');
}

beforeAll(async () => {
  engine = await startEngine();
  await processFault('pii-in-logs', false);
  const rows = await sql<{ id: number; email: string }>('SELECT id, email FROM users WHERE id = ANY($1::int[])', [[2, 3, 4, LEAKER.userId, ERASED.userId]]);
  emails = new Map(rows.map((r) => [Number(r.id), r.email]));
  const me = await whoAmI(LEAKER.key);
  if (me.status !== 200) throw new Error(`the drill is not healthy: ${LEAKER.key} gets ${me.status} from /v1/users/me (a fault left on?)`);
  // Lines the pii-in-logs fault wrote earlier stay in the logs: the clean window starts now.
  await new Promise((r) => setTimeout(r, 1100));
  cleanSince = new Date().toISOString();
});

afterAll(async () => {
  // Leave the drill as we found it: fault off, the test keys and the erased user back, no raw PII on disk.
  await processFault('pii-in-logs', false);
  await sql('UPDATE users SET api_key_hash = $2 WHERE id = $1', [LEAKER.userId, sha256(LEAKER.key)]);
  const email = emails.get(ERASED.userId);
  if (email) await sql('UPDATE users SET email = $2, api_key_hash = $3 WHERE id = $1', [ERASED.userId, email, sha256(ERASED.key)]);
  rmSync(keyStoreFile(LEAKER.userId), { force: true });
  for (const dir of evidenceDirs) rmSync(dir, { recursive: true, force: true });
  for (const resource of ['evidence', 'notifications', 'api-keys', 'users']) {
    await engine.client.workflow
      .getHandle(guardWorkflowId('alfred', resource))
      .terminate('test finished')
      .catch(() => undefined);
  }
  await engine.stop();
});

test('logs without PII and data read by admins only are a false alarm: nothing is done', async () => {
  const h = await engine.start({ runbook: 'dataBreach', target: 'alfred', params: { since: cleanSince } });
  const rec = await engine.result(h);
  expect(rec.outcome).toBe('false-alarm');
  expect(rec.diagnosis).toMatch(/no PII in \d+ log lines/);
  expect(rec.findings.find((f) => f.check.startsWith('PII in api logs'))).toMatchObject({ ok: true });
  expect(rec.actions).toEqual([]);
  expect(existsSync(path.resolve(engine.config.evidence.dir, `${h.workflowId}.${(await h.describe()).runId}`))).toBe(false);
  expect((await whoAmI(LEAKER.key)).id).toBe(LEAKER.userId);
});

test('PII and a key in the logs: evidence, notification, rotation, erasure, then a person confirms the checklist', async () => {
  const since = new Date(Date.now() - 1000).toISOString();
  await processFault('pii-in-logs', true);
  const chat = await fetch(`${API}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${LEAKER.key}`, 'content-type': 'application/json', 'x-forwarded-for': '198.51.100.77' },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'ping' }] }),
  });
  expect(chat.status).toBe(200);

  const erasureEmail = emails.get(ERASED.userId) as string;
  const h = await engine.start({ runbook: 'dataBreach', target: 'alfred', requestedBy: 'dave', params: { since, erasureUserEmail: erasureEmail } });
  const waiting = await engine.waitFor(h, (r) => r.pending.some((p) => p.stepId === 'rotate-compromised-keys'));

  // Counts and redacted samples only.
  const pii = waiting.findings.find((f) => f.check.startsWith('PII in api logs'));
  expect(pii?.ok).toBe(false);
  expect(pii?.detail).toMatch(/\d+ email, \d+ card_number, 1 api_key/);
  const samples = waiting.findings.filter((f) => f.check.startsWith('redacted sample'));
  expect(samples.length).toBeGreaterThan(0);
  expect(samples.some((s) => /\*\*\*@\*\*\*\.com/.test(s.detail) && /\*\*\*\*\d{4}/.test(s.detail))).toBe(true);
  expect(waiting.findings.find((f) => f.check === 'keys in clear text')?.detail).toMatch(new RegExp(`${sha256(LEAKER.key).slice(0, 12)} → user ${LEAKER.userId}`));
  expect(waiting.report).toMatch(/\| email \| \d+ \|/);
  // Seed 002's notice to the affected users, drafted with today's date, for a person to send.
  expect(waiting.report).toContain(`> We identified and resolved a security incident on ${waiting.openedAt.slice(0, 10)} that may have affected your account.`);
  expect(waiting.report).toContain(`To: the users whose keys leaked: user ${LEAKER.userId}`);
  expect(waiting.actions.slice(0, 2)).toEqual([
    expect.objectContaining({ stepId: 'preserve-evidence', state: 'done' }),
    expect.objectContaining({ stepId: 'notify-owner-security-legal', state: 'done' }),
  ]);
  // The leaked key still works until the rotation is approved.
  expect((await whoAmI(LEAKER.key)).status).toBe(200);

  await h.signal(approveSignal, { incidentId: h.workflowId, stepId: 'rotate-compromised-keys', approver: 'alice' });
  await engine.waitFor(h, (r) => r.pending.some((p) => p.stepId === 'gdpr-erasure'));
  await h.signal(approveSignal, { incidentId: h.workflowId, stepId: 'gdpr-erasure', approver: 'bob' });
  await engine.waitFor(h, (r) => r.timeline.some((t) => /waiting for the checklist/.test(t.event)));

  // It does not close by itself, nor for the requester, nor for an incomplete checklist.
  const all = Object.fromEntries(CHECKLIST_ITEMS.map((i) => [i, true])) as Record<(typeof CHECKLIST_ITEMS)[number], boolean>;
  await h.signal(checklistSignal, { by: 'dave', items: all });
  await h.signal(checklistSignal, { by: 'alice', items: { ...all, usersNotified: false } });
  const open = await engine.waitFor(h, (r) => r.timeline.filter((t) => /refused checklist/.test(t.event)).length === 2);
  expect(open.outcome).toBeUndefined();
  expect(open.timeline.some((t) => /refused checklist from alice: not confirmed: usersNotified/.test(t.event))).toBe(true);
  await h.signal(checklistSignal, { by: 'carol', items: all, note: 'logger fixed, users told' });
  const rec: IncidentRecord = await engine.result(h);

  expect(rec.outcome).toBe('resolved');
  expect(rec.actions.map((a) => [a.stepId, a.state])).toEqual([
    ['preserve-evidence', 'done'],
    ['notify-owner-security-legal', 'done'],
    ['rotate-compromised-keys', 'done'],
    ['gdpr-erasure', 'done'],
  ]);
  expect(rec.timeline.some((t) => /verification passed: leaked keys refused; checklist confirmed by carol/.test(t.event))).toBe(true);

  // Evidence: files whose sha256 matches the manifest, with the raw lines kept for investigators.
  const dir = /in (\/\S+)$/.exec(rec.actions[0]?.detail ?? '')?.[1] as string;
  evidenceDirs.push(dir);
  const manifest = readFileSync(path.join(dir, MANIFEST), 'utf8').trim().split('\n');
  expect(manifest.map((l) => l.split('  ')[1]).sort()).toEqual(['api-logs.txt', 'audit-logs-24h.jsonl']);
  for (const line of manifest) {
    const [hash, name] = line.split('  ') as [string, string];
    expect(sha256(readFileSync(path.join(dir, name)))).toBe(hash);
  }
  expect(readFileSync(path.join(dir, 'api-logs.txt'), 'utf8')).toContain(`Bearer ${LEAKER.key}`);

  // The rotated key works (read from the key store, as the engine would), the leaked one is refused.
  const stored = readFileSync(keyStoreFile(LEAKER.userId), 'utf8').trim();
  expect(await whoAmI(stored)).toEqual({ status: 200, id: LEAKER.userId });
  expect((await whoAmI(LEAKER.key)).status).toBe(401);
  // The erasure anonymised the user named in the request.
  const [erased] = await sql<{ email: string }>('SELECT email FROM users WHERE id = $1', [ERASED.userId]);
  expect(erased?.email).not.toBe(erasureEmail);
  expect((await whoAmI(ERASED.key)).status).toBe(401);
  // Owner, security and legal were told.
  const sent = readFileSync(engine.config.notify.file as string, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { incidentId: string; title: string; contacts?: string[] });
  expect(sent.find((n) => n.incidentId === h.workflowId && n.title === 'SEV-1 data exposure on alfred')?.contacts).toEqual(['@sergey-bar', '@security-lead', '@legal']);

  // No raw personal data or key anywhere in the workflow's history.
  const text = await historyText(h);
  expect(text).toContain('***@***.com');
  const leaked = [2, 3, 4, LEAKER.userId].map((id) => emails.get(id) as string);
  for (const secret of [...leaked, ...CARDS, LEAKER.key, stored]) expect(text).not.toContain(secret);
});
