/**
 * INC-05 drills on the real drill target: Redis is really killed / filled, the runbook really
 * restarts / evicts through the Docker API and Redis, and verification really sees PONG.
 */
import Redis from 'ioredis';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { approveSignal, decideUpdate } from '../../src/workflows/contracts';
import { drillContainer, startEngine, waitUntil, type Engine } from '../helpers/engine';
import { API, health, redisUp } from '../helpers/drill';

jest.setTimeout(180_000);

let engine: Engine;
const redisPort = 6379;


beforeAll(async () => {
  engine = await startEngine();
});

afterAll(async () => {
  // Leave the drill as we found it.
  const c = await drillContainer(engine.docker, 'redis');
  if (!(await c.inspect()).State.Running) await c.start();
  await waitUntil('redis back', redisUp);
  await engine.stop();
});

test('a killed redis is restarted automatically and verified with PONG', async () => {
  const c = await drillContainer(engine.docker, 'redis');
  await c.kill();
  await waitUntil('redis down', async () => !(await redisUp()));

  const h = await engine.start({ runbook: 'cacheFailure', target: 'alfred', requestedBy: 'alertmanager', params: { hitRateWindowSeconds: 60 } });
  // Users keep asking the same question: once Redis is back, the cache answers it again.
  let done = false;
  const traffic = (async () => {
    while (!done) {
      await fetch(`${API}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: 'Bearer test-key-1', 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'INC-05 drill: what is the capital of France?' }] }),
      }).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 2000));
    }
  })();
  const rec = await engine.result(h).finally(() => (done = true));
  await traffic;

  expect(rec.outcome).toBe('resolved');
  expect(rec.diagnosis).toMatch(/crashed/);
  expect(rec.findings.find((f) => f.check === 'PING')?.ok).toBe(false);
  expect(rec.actions).toEqual([expect.objectContaining({ stepId: 'restart-redis', state: 'done', risk: 'auto' })]);
  expect(rec.timeline.some((t) => /verification passed: PING PONG/.test(t.event))).toBe(true);
  // Seed 002: the cache hit rate recovering within the window, read from the SLA monitor.
  expect(rec.timeline.some((t) => /verification passed: .*; cache hit rate [\d.]+%.*: recovering/.test(t.event))).toBe(true);
  expect((await c.inspect()).State.Running).toBe(true);
  expect(await redisUp()).toBe(true);
});

test('a healthy redis is a false alarm: nothing is done', async () => {
  const before = (await (await drillContainer(engine.docker, 'redis')).inspect()).State.StartedAt;
  const h = await engine.start({ runbook: 'cacheFailure', target: 'alfred' });
  const rec = await engine.result(h);
  expect(rec.outcome).toBe('false-alarm');
  expect(rec.actions).toEqual([]);
  expect((await (await drillContainer(engine.docker, 'redis')).inspect()).State.StartedAt).toBe(before);
});

test('dry-run diagnoses a killed redis and changes nothing', async () => {
  const c = await drillContainer(engine.docker, 'redis');
  await c.kill();
  await waitUntil('redis down', async () => !(await redisUp()));
  const h = await engine.start({ runbook: 'cacheFailure', target: 'alfred', dryRun: true });
  const rec = await engine.result(h);
  expect(rec.outcome).toBe('dry-run');
  expect(rec.actions).toEqual([expect.objectContaining({ stepId: 'restart-redis', state: 'would-do' })]);
  expect((await c.inspect()).State.Running).toBe(false);
  await c.start();
  await waitUntil('redis back', redisUp);
  await waitUntil('api sees redis', async () => (await health())?.redis === 'healthy');
});

test('redis at maxmemory waits for approval; requester and strangers are refused; an approver proceeds', async () => {
  // Fill Redis to maxmemory with cache keys (noeviction: writes then fail with OOM).
  const r = new Redis({ port: redisPort });
  const blob = 'x'.repeat(64 * 1024);
  try {
    for (let i = 0; i < 2000; i++) {
      try {
        await r.set(`alfred:cache:test-fill:${i}`, blob);
      } catch {
        break;
      }
    }
  } finally {
    r.disconnect();
  }

  const h = await engine.start({ runbook: 'cacheFailure', target: 'alfred', requestedBy: 'dave' });
  const waiting = await engine.waitFor(h, (s) => s.pending.some((p) => p.stepId === 'evict-cache'));
  expect(waiting.diagnosis).toMatch(/maxmemory/);

  // The requester cannot approve their own incident; a stranger is not an approver; unknown steps are refused.
  const refusal = async (approver: string, stepId = 'evict-cache'): Promise<string> => {
    try {
      await h.executeUpdate(decideUpdate, { args: [{ incidentId: h.workflowId, stepId, approver, decision: 'approve' }] });
      return 'accepted';
    } catch (err) {
      expect(err).toBeInstanceOf(WorkflowUpdateFailedError);
      return String((err as WorkflowUpdateFailedError).cause?.message);
    }
  };
  expect(await refusal('dave')).toMatch(/opened this incident and cannot approve/);
  expect(await refusal('mallory')).toMatch(/not an allowed approver/);
  expect(await refusal('alice', 'drop-db')).toMatch(/not waiting for approval/);
  // A signal from a stranger (as from the UI) is refused and not counted.
  await h.signal(approveSignal, { incidentId: h.workflowId, stepId: 'evict-cache', approver: 'mallory' });
  const still = await engine.waitFor(h, (s) => s.timeline.some((t) => /refused approval .* mallory/.test(t.event)));
  expect(still.pending[0]?.approvals).toEqual([]);

  const res = await h.executeUpdate(decideUpdate, { args: [{ incidentId: h.workflowId, stepId: 'evict-cache', approver: 'alice', decision: 'approve', comment: 'ok' }] });
  expect(res.state).toBe('approved');
  const rec = await engine.result(h);
  expect(rec.outcome).toBe('resolved');
  const evict = rec.actions.find((a) => a.stepId === 'evict-cache');
  expect(evict).toMatchObject({ state: 'done', approvals: ['alice'] });
  expect(evict?.detail).toMatch(/unlinked \d+ keys/);
  // Eviction fixed it, so raising maxmemory was re-checked and skipped.
  expect(rec.actions.find((a) => a.stepId === 'raise-maxmemory')?.state).toBe('skipped');
});
