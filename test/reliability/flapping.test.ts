/**
 * A flapping alert while Redis stays down: the alert is fired and resolved 50 times in well under a
 * minute, and Redis is down for the whole window — whenever the engine brings it back, the test
 * kills it again as soon as it answers. The engine restarts it once, sees it is still broken and
 * escalates; repeats join the open incident instead of opening new ones, and the cooldown keeps any
 * later incident from restarting it again. Restarts are counted from Podman's event log, not from
 * the engine's own account.
 */
import type Docker from 'dockerode';
import { incidentWorkflowId, statusQuery, type IncidentRecord } from '../../src/workflows/contracts';
import { drillContainer, startEngine, waitUntil, type Engine } from '../helpers/engine';
import { health, redisUp } from '../helpers/drill';
import { containerEvents } from '../helpers/podman-events';
import { startTestReceiver, type TestReceiver } from '../receiver/helpers';

jest.setTimeout(180_000);

let t: TestReceiver;
let engine: Engine;

beforeAll(async () => {
  t = await startTestReceiver();
  // The worker's policy: resolved incidents stay open 20 s for repeats (flap protection), the same
  // restart within 10 minutes is refused (cooldown), and a restart that does not bring Redis back
  // escalates after 15 s.
  engine = await startEngine({
    taskQueue: t.taskQueue,
    extraTargets: [t.target],
    configure: (c) => {
      c.policy.settleMs = 20_000;
      c.policy.cooldownMs = 600_000;
      c.policy.verifyDeadlineMs = 15_000;
    },
  });
});

afterAll(async () => {
  const c = await drillContainer(engine.docker, 'redis');
  if (!(await c.inspect()).State.Running) await c.start();
  await waitUntil('redis up', redisUp);
  await waitUntil('api sees redis', async () => (await health())?.redis === 'healthy');
  await engine.stop();
  await t.stop();
});

/** Kills Redis again each time it answers, until stopped; resolves with how often it did. */
function keepRedisDown(docker: Docker): { stop(): Promise<number> } {
  let running = true;
  let kills = 0;
  const loop = (async () => {
    while (running) {
      if (await redisUp()) {
        // The engine's restart has returned by now (it checks the container runs right after starting it).
        await new Promise((r) => setTimeout(r, 300));
        await (await drillContainer(docker, 'redis')).kill().catch(() => undefined);
        kills += 1;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return kills;
    },
  };
}

test('50 fire/resolve cycles while Redis stays down: one restart, then escalation, never a loop', async () => {
  const c = await drillContainer(engine.docker, 'redis');
  await c.kill();
  await waitUntil('redis down', async () => !(await redisUp()));
  const t0 = Date.now();
  const keeper = keepRedisDown(engine.docker);

  const actions: string[] = [];
  for (let i = 0; i < 50; i++) {
    for (const status of ['firing', 'resolved'] as const) {
      const res = await t.post('generic', { alertname: 'CacheFailure', status, target: t.target });
      expect(res.status).toBeLessThan(300);
      actions.push(...(res.json.results ?? []).map((r) => (r as { action: string }).action));
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  const window = Date.now() - t0;
  expect(window).toBeLessThan(60_000);
  const id = incidentWorkflowId('cacheFailure', t.target);
  // Still broken: the incident escalates (the restart did not hold), and stays open.
  const escalated = await engine.waitFor(engine.track(id), (s) => s.phase === 'ESCALATED', 60_000);
  const keeperKills = await keeper.stop();
  // Redis was down for the whole window: down at its end, and every start was followed by a death.
  expect(await redisUp()).toBe(false);
  const starts = containerEvents('alfred-redis', 'start', t0);
  const deaths = containerEvents('alfred-redis', 'died', t0);
  expect(starts.filter((s) => !deaths.some((d) => d >= s))).toEqual([]);

  const records: IncidentRecord[] = [];
  for await (const wf of engine.client.workflow.list({ query: `WorkflowId = '${id}'` })) {
    records.push(await engine.client.workflow.getHandle(id, wf.runId).query(statusQuery));
  }
  const restarts = records.flatMap((r) => r.actions).filter((a) => a.stepId === 'restart-redis' && a.state === 'done');
  console.log(
    `flapping: 100 alerts in ${(window / 1000).toFixed(1)} s with Redis down throughout (the test killed it ${keeperKills}× after the engine's restart), ` +
      `${records.length} incident run(s), Podman saw ${starts.length} start(s); actions ${JSON.stringify(countBy(actions))}`,
  );
  // Exactly one remediation, by the Docker host's count and by the engine's.
  expect(starts).toHaveLength(1);
  expect(restarts).toHaveLength(1);
  expect(keeperKills).toBeGreaterThanOrEqual(1);
  expect(escalated.escalations.join(' ')).toMatch(/redis|PING|PONG|verif/i);
  // Repeats were folded into the open incident rather than each starting one.
  expect(actions.filter((a) => a === 'deduplicated').length).toBeGreaterThan(40);
  expect(actions.filter((a) => a === 'started').length).toBeLessThanOrEqual(2);
  expect(records.length).toBeLessThanOrEqual(2);
});

function countBy(xs: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) out[x] = (out[x] ?? 0) + 1;
  return out;
}
