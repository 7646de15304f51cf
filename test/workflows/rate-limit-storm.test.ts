/**
 * INC-10 drills on the real drill target: real bursts of chat requests are refused with 429 by the
 * api's Redis-backed limiter, the runbook reads the api's real log lines, and its effects are real:
 * a blocked address gets 403, a raised limit is in the recreated container's environment.
 */
import { runFault } from '../../drill/src/faults/catalog';
import { FaultContext } from '../../drill/src/faults/context';
import { approveSignal, guardWorkflowId } from '../../src/workflows/contracts';
import { drillContainer, startEngine, waitUntil, type Engine } from '../helpers/engine';
import { API, health } from '../helpers/drill';

jest.setTimeout(180_000);

let engine: Engine;
const ABUSER = '203.0.113.7';

/** When a drill here last drew 429s from the api: the refusals' log lines stay in later windows. */
let last429 = 0;

async function chat(ip: string, key: string): Promise<number> {
  const res = await fetch(`${API}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'x-forwarded-for': ip },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'ping' }] }),
    signal: AbortSignal.timeout(10_000),
  });
  await res.text();
  if (res.status === 429) last429 = Date.now();
  return res.status;
}

/**
 * Waits until no 429 of an earlier drill falls inside a runbook window of `seconds` that starts now:
 * the api's log keeps every line of its container, so an earlier drill's refusals would be counted.
 * An api container created after the last 429 has none of them in its log: no wait.
 */
async function outsideWindow(seconds: number): Promise<void> {
  const created = Date.parse((await (await drillContainer(engine.docker, 'api')).inspect()).Created);
  if (created > last429) return;
  const wait = last429 + (seconds + 1) * 1000 - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}

/** `perClient` requests from each client address at once, each client with its own key. */
async function burst(clients: { ip: string; key: string }[], perClient: number): Promise<Record<number, number>> {
  const counts: Record<number, number> = {};
  await Promise.all(
    clients.map(async (c) => {
      for (let i = 0; i < perClient; i++) {
        const s = await chat(c.ip, c.key);
        counts[s] = (counts[s] ?? 0) + 1;
      }
    }),
  );
  return counts;
}

async function apiEnv(): Promise<string[]> {
  return (await (await drillContainer(engine.docker, 'api')).inspect()).Config.Env ?? [];
}

/** The api back on the default limit (a recreate, so its logs start empty), no block, no counters. */
async function restoreLimit(): Promise<void> {
  if (!(await apiEnv()).includes('RATE_LIMIT_PER_MINUTE=60')) {
    const ctx = new FaultContext();
    try {
      await ctx.containers.recreate('api', { env: { RATE_LIMIT_PER_MINUTE: '60' } });
    } finally {
      await ctx.close();
    }
  }
  await waitUntil('api healthy', async () => (await health())?.status === 'ok');
}

beforeAll(async () => {
  engine = await startEngine();
  await runFault('sso-down', true);
  await runFault('rate-limit-storm', true, { ip: ABUSER });
});

afterAll(async () => {
  await runFault('rate-limit-storm', true, { ip: ABUSER });
  await restoreLimit();
  await engine.client.workflow
    .getHandle(guardWorkflowId('alfred', 'governance'))
    .terminate('test finished')
    .catch(() => undefined);
  await engine.stop();
});

test('no 429s beyond the baseline is a false alarm: nothing is done', async () => {
  const h = await engine.start({ runbook: 'rateLimitStorm', target: 'alfred', params: { windowSeconds: 20 } });
  const rec = await engine.result(h);
  expect(rec.outcome).toBe('false-alarm');
  expect(rec.actions).toEqual([]);
  expect(rec.findings.find((f) => f.check === 'RATE_LIMIT_PER_MINUTE of the api')?.detail).toMatch(/^60 per minute/);
});

test('one abusive client: its address is blocked after approval and really refused', async () => {
  await runFault('rate-limit-storm', false, { ip: ABUSER, requests: '200' });
  last429 = Date.now();
  const h = await engine.start({ runbook: 'rateLimitStorm', target: 'alfred', params: { windowSeconds: 30 } });
  const waiting = await engine.waitFor(h, (s) => s.pending.some((p) => p.stepId === 'block-client'));
  expect(waiting.diagnosis).toMatch(new RegExp(`single abusive client: ${ABUSER.replace(/\./g, '\\.')} caused 100% of \\d+ 429s`));
  await h.signal(approveSignal, { incidentId: h.workflowId, stepId: 'block-client', approver: 'alice' });
  const rec = await engine.result(h);

  expect(rec.outcome).toBe('resolved');
  expect(rec.actions).toEqual([expect.objectContaining({ stepId: 'block-client', state: 'done', approvals: ['alice'] })]);
  expect(await chat(ABUSER, 'test-key-1')).toBe(403);
  expect(await chat('198.51.100.77', 'test-key-1')).toBe(200);
  expect(rec.timeline.some((t) => /verification passed: 0 429s/.test(t.event))).toBe(true);
  await runFault('rate-limit-storm', true, { ip: ABUSER });
});

test("one tenant's traffic over many clients: the limit is raised and the api recreated with it", async () => {
  const clients = [1, 2, 3, 4, 5].map((n) => ({ ip: `198.51.100.${10 + n}`, key: `test-key-${n}` }));
  await outsideWindow(10);
  // 130 each: more than the limit in one minute even if the burst straddles a minute boundary.
  const counts = await burst(clients, 130);
  expect(counts[429]).toBeGreaterThan(20);
  const before = (await (await drillContainer(engine.docker, 'api')).inspect()).Id;

  const h = await engine.start({ runbook: 'rateLimitStorm', target: 'alfred', params: { windowSeconds: 10 } });
  const waiting = await engine.waitFor(h, (s) => s.pending.some((p) => p.stepId === 'raise-rate-limit'));
  expect(waiting.diagnosis).toMatch(/legitimate traffic spike: \d+ 429s from 5 clients, 100% with keys of tenant example\.com/);
  await h.signal(approveSignal, { incidentId: h.workflowId, stepId: 'raise-rate-limit', approver: 'bob' });
  const rec = await engine.result(h);

  expect(rec.outcome).toBe('resolved');
  expect(rec.actions).toEqual([expect.objectContaining({ stepId: 'raise-rate-limit', state: 'done', approvals: ['bob'] })]);
  const c = await (await drillContainer(engine.docker, 'api')).inspect();
  expect(c.Id).not.toBe(before);
  expect(c.Config.Env).toContain('RATE_LIMIT_PER_MINUTE=120');
  // Everything else of the container is kept.
  expect(c.Config.Env).toContain('SSO_REQUIRED=false');
  expect(c.Config.Labels?.['com.docker.compose.service']).toBe('api');
  // 72 requests a minute from one client now pass.
  const after = await burst([{ ip: '198.51.100.31', key: 'test-key-6' }], 72);
  expect(after[429]).toBeUndefined();
  await restoreLimit();
});

test('a distributed storm without known keys is escalated and held open', async () => {
  const clients = Array.from({ length: 8 }, (_, i) => ({ ip: `192.0.2.${40 + i}`, key: `unknown-key-${i}` }));
  await outsideWindow(20);
  const counts = await burst(clients, 130);
  expect(counts[429]).toBeGreaterThan(30);
  const h = await engine.start({ runbook: 'rateLimitStorm', target: 'alfred', params: { windowSeconds: 20 } });
  const rec = await engine.waitFor(h, (s) => s.phase === 'ESCALATED');
  expect(rec.diagnosis).toMatch(/distributed: \d+ 429s from 8 clients/);
  expect(rec.escalations.join(' ')).toMatch(/DDoS protection/);
  expect(rec.actions).toEqual([]);
  expect((await apiEnv()).includes('RATE_LIMIT_PER_MINUTE=60')).toBe(true);
});
