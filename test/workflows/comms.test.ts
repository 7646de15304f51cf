/**
 * Communication during a real drill: status-page updates (seed 002) at the severity's cadence on
 * durable timers, delivered to a Slack-compatible webhook on loopback that fails twice before it
 * accepts; seed 001's initial response and resolution in the record; and a webhook that never
 * accepts does not hold up the mitigation.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { approveSignal } from '../../src/workflows/contracts';
import { drillContainer, startEngine, waitUntil, type Engine } from '../helpers/engine';
import { fillRedis, redisUp, unfillRedis } from '../helpers/drill';

jest.setTimeout(180_000);

interface Hook {
  server: Server;
  url: string;
  texts: string[];
  statuses: number[];
}

async function webhook(statuses: number[]): Promise<Hook> {
  const hook: Hook = { server: createServer(), url: '', texts: [], statuses: [] };
  hook.server.on('request', (req, res) => {
    let data = '';
    req.on('data', (c: Buffer) => (data += c.toString()));
    req.on('end', () => {
      const status = statuses[Math.min(hook.statuses.length, statuses.length - 1)] as number;
      hook.statuses.push(status);
      if (status === 200) hook.texts.push(String((JSON.parse(data) as { text: string }).text));
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => hook.server.listen(0, '127.0.0.1', r));
  hook.url = `http://127.0.0.1:${(hook.server.address() as { port: number }).port}/hooks/token`;
  return hook;
}

let engine: Engine;
let hook: Hook;
const PREFIX = 'alfred:cache:comms-fill:';

beforeAll(async () => {
  hook = await webhook([500, 500, 200]);
  engine = await startEngine({
    // Updates every 2 s on this target: the worker's policy for it.
    extraTargets: ['alfred-cadence'],
    configure: (cfg) => {
      cfg.notify.slack = { webhook: { value: hook.url }, apiUrl: 'https://slack.com/api', username: 'remediation-engine', attempts: 3, timeoutMs: 2000 };
      cfg.policy.overrides = [{ match: { target: 'alfred-cadence' }, updateCadenceMs: { '2': 2000 } }];
    },
  });
});

afterAll(async () => {
  await unfillRedis(PREFIX);
  const c = await drillContainer(engine.docker, 'redis');
  if (!(await c.inspect()).State.Running) await c.start();
  await waitUntil('redis back', redisUp);
  await engine.stop();
  hook.server.close();
});

function statusPostsFor(id: string): { stage?: string; title: string }[] {
  return readFileSync(engine.config.notify.file as string, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { incidentId: string; kind: string; stage?: string; title: string })
    .filter((n) => n.incidentId === id && n.kind === 'status');
}

test('while an approval waits, updates go out at the cadence; the webhook gets them after two failures', async () => {
  await fillRedis(PREFIX);
  const h = await engine.start({
    runbook: 'cacheFailure',
    target: 'alfred-cadence',
    requestedBy: 'dave',
    params: { customerName: 'Kari' },
  });
  await engine.waitFor(h, (s) => s.pending.some((p) => p.stepId === 'evict-cache'));
  // Durable timers: the scheduled updates keep coming while nobody has decided.
  const waiting = await engine.waitFor(h, (s) => (s.comms?.updates ?? 0) >= 3, 30_000);
  expect(waiting.comms?.initialResponse).toContain('Hi Kari,');
  expect(waiting.comms?.initialResponse).toContain('**Severity**: High');

  await h.signal(approveSignal, { incidentId: h.workflowId, stepId: 'evict-cache', approver: 'alice' });
  const rec = await engine.result(h);
  expect(rec.outcome).toBe('resolved');
  expect(rec.comms?.resolution).toMatch(/\*\*Root Cause\*\*: Redis memory exhausted/);
  expect(rec.comms?.resolution).toMatch(/\*\*Solution\*\*: Evict cache keys/);

  const stages = statusPostsFor(h.workflowId).map((n) => n.stage);
  expect(stages[0]).toBe('identified');
  expect(stages.filter((s) => s === 'identified').length).toBeGreaterThanOrEqual(3);
  expect(stages[stages.length - 1]).toBe('resolved');
  // The webhook failed twice (500, 500) and then took every message, the first one included.
  await waitUntil('webhook got the resolution', async () => hook.texts.some((t) => t.includes('[Resolved] Redis / cache failure (alfred-cadence)')));
  expect(hook.statuses.slice(0, 3)).toEqual([500, 500, 200]);
  expect(hook.texts.some((t) => t.includes('[Identified] Redis / cache failure (alfred-cadence)'))).toBe(true);
});

test('a false alarm posts nothing to the status page', async () => {
  const h = await engine.start({ runbook: 'cacheFailure', target: 'alfred' });
  const rec = await engine.result(h);
  expect(rec.outcome).toBe('false-alarm');
  expect(rec.comms).toBeUndefined();
  expect(statusPostsFor(h.workflowId)).toEqual([]);
});

test('a webhook that never accepts does not hold up the mitigation', async () => {
  const dead = await webhook([500]);
  const cfg = engine.config.notify.slack;
  if (cfg) cfg.webhook = { value: dead.url };
  try {
    const c = await drillContainer(engine.docker, 'redis');
    await c.kill();
    await waitUntil('redis down', async () => !(await redisUp()));
    const h = await engine.start({ runbook: 'cacheFailure', target: 'alfred' });
    const done = await engine.waitFor(h, (s) => s.timeline.some((t) => /verification passed/.test(t.event)), 60_000);
    expect(done.actions).toEqual([expect.objectContaining({ stepId: 'restart-redis', state: 'done' })]);
    expect(dead.statuses.length).toBeGreaterThan(0);
    expect(dead.statuses.every((s) => s === 500)).toBe(true);
    await h.terminate('test finished: the notifier would keep retrying for minutes');
  } finally {
    dead.server.close();
  }
});
