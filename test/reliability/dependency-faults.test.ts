/**
 * Dependencies failing under the engine: the Docker API unreachable during diagnostics, Redis gone
 * while the mitigation itself runs. Activities retry with backoff, then the incident escalates (stays
 * open) and its record says what failed.
 *
 * The Redis fault is timed on the action: the engine's worker holds the mitigation activity
 * (unlinkByPattern) at its start, after the approval and after the precondition passed, until the
 * test has really killed the drill's Redis; then the real activity runs against it. The history
 * shows the order and that the failing event is the action's.
 */
import type { temporal } from '@temporalio/proto';
import { decideUpdate } from '../../src/workflows/contracts';
import { decodedHistory } from '../helpers/codec';
import { drillContainer, startEngine, waitUntil, type Engine } from '../helpers/engine';
import { fillRedis, health, redisUp, unfillRedis } from '../helpers/drill';

jest.setTimeout(180_000);

const FILL = 'alfred:cache:faults-fill:';


let engine: Engine;
let brokenDocker: Engine;
/** Resolved when the mitigation activity has started on the worker; it then waits for `release`. */
let actionStarted: () => void = () => undefined;
const started = new Promise<void>((r) => (actionStarted = r));
let release: () => void = () => undefined;
const released = new Promise<void>((r) => (release = r));

beforeAll(async () => {
  engine = await startEngine({
    wrapActivities: (real) => ({
      async unlinkByPattern(...args: Parameters<typeof real.unlinkByPattern>) {
        actionStarted();
        await released;
        return real.unlinkByPattern(...args);
      },
    }),
  });
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

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

test('Redis killed while the approved mitigation runs: the action fails, the incident escalates and stays open', async () => {
  await fillRedis(FILL);
  const h = await engine.start({ runbook: 'cacheFailure', target: 'alfred' });
  await engine.waitFor(h, (s) => s.pending.some((p) => p.stepId === 'evict-cache'));
  // Approved while Redis is up: the precondition (still at maxmemory) passes, then the action starts.
  await h.executeUpdate(decideUpdate, { args: [{ incidentId: h.workflowId, stepId: 'evict-cache', approver: 'alice', decision: 'approve' }] });
  await started;
  await (await drillContainer(engine.docker, 'redis')).kill();
  await waitUntil('redis down', async () => !(await redisUp()));
  release();
  const rec = await engine.waitFor(h, (s) => s.phase === 'ESCALATED', 120_000);
  expect(rec.actions.find((a) => a.stepId === 'evict-cache')).toMatchObject({ state: 'failed' });
  expect(rec.escalations.at(-1)).toMatch(/step evict-cache failed: .*(Connection is closed|ECONNREFUSED|connect|is exited|not running)/i);
  expect((await h.describe()).status.name).toBe('RUNNING');

  // The history: approval, then the precondition's checks completed, then the action scheduled and
  // failed (after its retries) with the Redis error; no other activity failed.
  const events: HistoryEvent[] = (await decodedHistory(h)).events ?? [];
  const id = (e: HistoryEvent | undefined): number => Number(e?.eventId ?? -1);
  const typeOf = (scheduledId: unknown): string =>
    events.find((e) => String(e.eventId) === String(scheduledId))?.activityTaskScheduledEventAttributes?.activityType?.name ?? '';
  const approval = events.find((e) => e.workflowExecutionUpdateAcceptedEventAttributes);
  const action = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'unlinkByPattern');
  const failed = events.filter((e) => e.activityTaskFailedEventAttributes);
  const checks = events.filter(
    (e) => e.activityTaskCompletedEventAttributes && ['redisMemory', 'redisWriteProbe'].includes(typeOf(e.activityTaskCompletedEventAttributes.scheduledEventId)),
  );
  const checksAfterApproval = checks.filter((e) => id(e) > id(approval) && id(e) < id(action)).map((e) => typeOf(e.activityTaskCompletedEventAttributes?.scheduledEventId));
  expect(id(approval)).toBeGreaterThan(0);
  expect(checksAfterApproval.sort()).toEqual(['redisMemory', 'redisWriteProbe']);
  expect(failed.map((e) => typeOf(e.activityTaskFailedEventAttributes?.scheduledEventId))).toEqual(['unlinkByPattern']);
  const failure = failed[0]?.activityTaskFailedEventAttributes;
  expect(String(failure?.scheduledEventId)).toBe(String(action?.eventId));
  // The failure's message travels encrypted in its encoded attributes (docs/codec.md), read here decoded.
  expect(failure?.failure?.message).toBe('Encoded failure');
  const encoded = failure?.failure?.encodedAttributes;
  const message = (JSON.parse(Buffer.from(encoded?.data ?? new Uint8Array()).toString('utf8')) as { message?: string }).message;
  expect(message).toMatch(/Connection is closed|ECONNREFUSED|connect|is exited|not running/i);
  const attempt = events.find((e) => String(e.activityTaskStartedEventAttributes?.scheduledEventId) === String(action?.eventId))?.activityTaskStartedEventAttributes?.attempt;
  expect(attempt).toBe(3);
});
