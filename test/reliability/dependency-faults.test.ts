/**
 * Dependencies failing under the engine: the Docker API unreachable during diagnostics, Redis gone
 * in the middle of a step. Activities retry with backoff, then the incident escalates (stays open)
 * and its record says what failed.
 */
import { decideUpdate } from '../../src/workflows/contracts';
import { drillContainer, startEngine, waitUntil, type Engine } from '../helpers/engine';
import { fillRedis, health, redisUp, unfillRedis } from '../helpers/drill';

jest.setTimeout(180_000);

const FILL = 'alfred:cache:faults-fill:';


let engine: Engine;
let brokenDocker: Engine;

beforeAll(async () => {
  engine = await startEngine();
  brokenDocker = await startEngine({
    configure: (cfg) => {
      cfg.docker.socketPath = '/nonexistent/docker.sock';
    },
  });
});

afterAll(async () => {
  const c = await drillContainer(engine.docker, 'redis');
  if (!(await c.inspect()).State.Running) await c.start();
  await waitUntil('redis up', redisUp);
  await unfillRedis(FILL);
  await waitUntil('api sees redis', async () => (await health())?.redis === 'healthy');
  await brokenDocker.stop();
  await engine.stop();
});

test('Docker API unreachable during diagnostics: retried, then escalated with the cause', async () => {
  const t0 = Date.now();
  const h = await brokenDocker.start({ runbook: 'cacheFailure', target: 'alfred' });
  const rec = await brokenDocker.waitFor(h, (s) => s.phase === 'ESCALATED', 120_000);
  expect(rec.escalations[0]).toMatch(/diagnostics failed: .*(ENOENT|nonexistent)/);
  // Not at once: the activity was retried with backoff first.
  expect(Date.now() - t0).toBeGreaterThan(5000);
  const history = await h.fetchHistory();
  const failed = history.events?.find((e) => e.activityTaskFailedEventAttributes);
  expect(Number(failed?.activityTaskFailedEventAttributes ? 1 : 0)).toBe(1);
  const attempts = history.events
    ?.map((e) => e.activityTaskStartedEventAttributes?.attempt ?? 0)
    .reduce((a, b) => Math.max(a, b), 0);
  expect(attempts).toBeGreaterThanOrEqual(3);
  expect((await h.describe()).status.name).toBe('RUNNING');
});

test('Redis gone in the middle of a step: the step fails, the incident escalates and stays open', async () => {
  await fillRedis(FILL);
  const h = await engine.start({ runbook: 'cacheFailure', target: 'alfred' });
  await engine.waitFor(h, (s) => s.pending.some((p) => p.stepId === 'evict-cache'));
  await (await drillContainer(engine.docker, 'redis')).kill();
  await waitUntil('redis down', async () => !(await redisUp()));
  await h.executeUpdate(decideUpdate, { args: [{ incidentId: h.workflowId, stepId: 'evict-cache', approver: 'alice', decision: 'approve' }] });
  const rec = await engine.waitFor(h, (s) => s.phase === 'ESCALATED', 120_000);
  expect(rec.actions.find((a) => a.stepId === 'evict-cache')).toMatchObject({ state: 'failed' });
  expect(rec.escalations.at(-1)).toMatch(/step evict-cache failed: .*(Connection is closed|ECONNREFUSED|connect|is exited|not running)/i);
  expect((await h.describe()).status.name).toBe('RUNNING');
});
