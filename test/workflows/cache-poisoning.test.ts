/**
 * INC-15 drills on the real drill target: wrong answers are really planted in the gateway's Redis
 * cache with a loose similarity threshold; the runbook really tightens the threshold through the
 * governance API, flushes the cache after approval, and verification really asks the known query.
 */
import Redis from 'ioredis';
import { runFault } from '../../drill/src/faults/catalog';
import { cacheKey } from '../../drill/src/faults/replica-formats';
import { approveSignal } from '../../src/workflows/contracts';
import { startEngine, type Engine } from '../helpers/engine';
import { API, adminKey } from '../helpers/drill';

jest.setTimeout(180_000);

let engine: Engine;
const redis = new Redis({ port: 6379, lazyConnect: true });

async function settings(): Promise<{ cache_similarity_threshold: number }> {
  const res = await fetch(`${API}/v1/governance/settings`, { headers: { authorization: `Bearer ${adminKey()}` } });
  return ((await res.json()) as { settings: { cache_similarity_threshold: number } }).settings;
}

async function ask(prompt: string): Promise<{ answer: string; cached: boolean }> {
  const res = await fetch(`${API}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: 'Bearer test-key-1', 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: prompt }] }),
  });
  const body = (await res.json()) as { cached: boolean; choices: { message: { content: string } }[] };
  return { answer: body.choices[0]?.message.content ?? '', cached: body.cached };
}

beforeAll(async () => {
  await redis.connect();
  await runFault('poison-cache', true);
  engine = await startEngine();
});

afterAll(async () => {
  // Leave the drill as we found it: no planted entries, the default threshold.
  await runFault('poison-cache', true);
  redis.disconnect();
  await engine.stop();
});

test('a cache with correct answers is a false alarm: nothing is changed', async () => {
  const keysBefore = await redis.dbsize();
  const h = await engine.start({ runbook: 'cachePoisoning', target: 'alfred', requestedBy: 'alertmanager' });
  const rec = await engine.result(h);
  expect(rec.outcome).toBe('false-alarm');
  expect(rec.diagnosis).toMatch(/cache answers are correct/);
  expect(rec.actions).toEqual([]);
  expect(rec.findings.find((f) => f.check === 'known query')).toMatchObject({ ok: true });
  expect((await settings()).cache_similarity_threshold).toBe(0.9);
  // Only the probe's own answer may have been added.
  expect(await redis.dbsize()).toBeGreaterThanOrEqual(keysBefore);
});

test('poisoned answers: threshold tightened automatically, cache flushed after approval, known query correct', async () => {
  await runFault('poison-cache', false);
  // Users hit the poisoned entries: the hit rate climbs.
  for (let i = 0; i < 5; i++) expect(await ask('What is 2+2?')).toEqual({ answer: '5', cached: true });

  const h = await engine.start({ runbook: 'cachePoisoning', target: 'alfred', requestedBy: 'alertmanager' });
  const waiting = await engine.waitFor(h, (r) => r.pending.some((p) => p.stepId === 'flush-cache'));
  expect(waiting.diagnosis).toMatch(/cache poisoned: "What is 2\+2\?" is answered "5"/);
  expect(waiting.rootCause).toMatch(/loose similarity threshold \(0\.5\)/);
  const suspicious = waiting.findings.find((f) => f.check === 'suspicious cache entries');
  expect(suspicious).toMatchObject({ ok: false });
  expect(suspicious?.detail).toMatch(/alfred:cache:[0-9a-f]{12}…: "What is 2\+2\?" → "5"/);
  expect(waiting.findings.find((f) => f.check === 'cache hit rate')?.detail).toMatch(/% over the last window/);
  // The auto step already ran: the threshold is strict before anyone approves the flush.
  expect(waiting.actions.find((a) => a.stepId === 'tighten-threshold')).toMatchObject({ state: 'done', risk: 'auto' });
  expect((await settings()).cache_similarity_threshold).toBe(0.98);
  expect(await redis.get(cacheKey('What is 2+2?'))).not.toBeNull();

  await h.signal(approveSignal, { incidentId: h.workflowId, stepId: 'flush-cache', approver: 'alice' });
  const rec = await engine.result(h);
  expect(rec.outcome).toBe('resolved');
  expect(rec.actions.find((a) => a.stepId === 'flush-cache')).toMatchObject({ state: 'done', approvals: ['alice'] });
  expect(rec.timeline.some((t) => /verification passed: known query → HTTP 200 "4" \(correct\), 0 wrong cache entries/.test(t.event))).toBe(true);
  // The planted entries are gone and a user now gets the right answer.
  for (const prompt of ['What is 3+3?', 'What is the capital of France?']) expect(await redis.get(cacheKey(prompt))).toBeNull();
  expect((await ask('What is 2+2?')).answer).toBe('4');
});
