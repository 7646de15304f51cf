/**
 * The action budget over hours of workflow time, in seconds of wall time: Temporal's time-skipping
 * test server runs the real workflow bundle (incidents, the per-resource guard, the per-target budget
 * keeper) with stubbed activities for INC-05: a Redis that is down until restarted, or full until
 * evicted. The budget is 1 action per hour per target; the keeper is asked through the engine's own
 * update-with-start call (askBudgetKeeper).
 *
 * Needs no stack: only Java and the test server's jars (scripts/install.sh).
 */
import { randomUUID } from 'node:crypto';
import { Context } from '@temporalio/activity';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { askBudgetKeeper } from '../../src/activities/engine/budget';
import { createOpeningActivities } from '../../src/activities/engine/opening';
import type { CodecSecrets } from '../../src/lib/codec';
import {
  approveSignal,
  budgetStateQuery,
  budgetWorkflowId,
  closeSignal,
  guardWorkflowId,
  statusQuery,
  type BudgetRequest,
  type IncidentInput,
  type IncidentPolicy,
  type IncidentRecord,
} from '../../src/workflows/contracts';
import { requestTargetLockOn, sealedClient, startTimeSkipping, testSecrets, testWorker } from '../helpers/time-skipping';

jest.setTimeout(60_000);

const MIN = 60_000;
const HOUR = 60 * MIN;
const MB = 1024 * 1024;
const POLICY: IncidentPolicy = {
  approvers: ['alice', 'bob', 'carol'],
  tiers: [{ name: 'tier-1 on-call', contacts: ['@on-call'], waitMs: 15 * MIN }],
  verifyDeadlineMs: 5 * MIN,
  cooldownMs: 0,
  lockWaitMs: MIN,
  escalatedHoldMs: HOUR,
  settleMs: 0,
  actionBudget: { maxActions: 1, windowMs: HOUR },
};

let env: TestWorkflowEnvironment;
let secrets: CodecSecrets;
let worker: Worker;
let running: Promise<void>;
const taskQueue = `budget-${randomUUID().slice(0, 8)}`;

/** Each target's Redis, as the stubs report it, and what was done to it. */
const redis = new Map<string, { state: 'ok' | 'down' | 'full'; restarts: number; evictions: number }>();
const redisOf = (target: string) => {
  const r = redis.get(target) ?? { state: 'ok' as const, restarts: 0, evictions: 0 };
  redis.set(target, r);
  return r;
};

function activities() {
  // The two reads an incident opens with; it runs them through the engine's own incidentOpening.
  const reads = {
    async incidentPolicy() {
      return { ...POLICY, overrides: [] };
    },
    async maintenanceWindowAt() {
      return { at: new Date().toISOString() };
    },
  };
  return {
    ...reads,
    ...createOpeningActivities(reads),
    async describeTarget(input: { target: string }) {
      return {
        name: input.target,
        components: ['api', 'redis', 'db'],
        rollbackOrder: ['api'],
        cacheKeyPattern: 'alfred:cache:*',
        thresholds: { redisMemoryPct: 90 },
        limits: { cacheRecoverySeconds: 0, maxmemoryRaiseFactor: 1.5 },
        hasPostgres: true,
        hasRedis: true,
      };
    },
    async redisPing(input: { target: string }) {
      return redisOf(input.target).state === 'down'
        ? { ok: false, error: 'ECONNREFUSED', latencyMs: 1 }
        : { ok: true, reply: 'PONG', latencyMs: 1 };
    },
    async containerState(ref: { target: string; component: string }) {
      const up = ref.component !== 'redis' || redisOf(ref.target).state !== 'down';
      return {
        name: `alfred-${ref.component}-1`,
        running: up,
        status: up ? 'running' : 'exited',
        oomKilled: false,
        exitCode: up ? 0 : 137,
        tag: '1.0.0',
      };
    },
    async httpHealth(input: { target: string }) {
      const up = redisOf(input.target).state === 'ok';
      return {
        ok: up,
        status: up ? 200 : 503,
        body: {},
        latencyMs: 3,
        apiRedis: up ? { state: 'healthy', detail: 'healthy' } : { state: 'unhealthy', detail: 'unhealthy' },
      };
    },
    async composeNetwork() {
      return { network: 'alfred_default', available: true, attached: { api: true, redis: true } };
    },
    async redisMemory(input: { target: string }) {
      const full = redisOf(input.target).state === 'full';
      return {
        usedBytes: (full ? 100 : 40) * MB,
        peakBytes: 100 * MB,
        maxmemoryBytes: 100 * MB,
        usedPct: full ? 100 : 40,
        policy: 'noeviction',
      };
    },
    async redisWriteProbe(input: { target: string }) {
      return redisOf(input.target).state === 'full'
        ? { ok: false, error: "OOM command not allowed when used memory > 'maxmemory'." }
        : { ok: true };
    },
    async redisSlowlog() {
      return { entries: [] };
    },
    async restartContainer(ref: { target: string }) {
      const r = redisOf(ref.target);
      r.restarts += 1;
      r.state = 'ok';
      return { detail: 'restarted alfred-redis-1' };
    },
    async unlinkByPattern(input: { target: string }) {
      const r = redisOf(input.target);
      r.evictions += 1;
      r.state = 'ok';
      return { deleted: 1200, done: true };
    },
    requestTargetLock: requestTargetLockOn(env),
    // The engine's own call to the keeper, on the test server's client.
    async reserveAction(input: BudgetRequest & { target: string }) {
      const { target, ...req } = input;
      return askBudgetKeeper(env.client, Context.current().info.taskQueue, target, req);
    },
    async notify() {
      return { delivered: ['test'] };
    },
    async openIncidentChannel(req: { name: string }) {
      return { opened: true, detail: `#${req.name} opened` };
    },
  };
}

beforeAll(async () => {
  secrets = testSecrets();
  env = await startTimeSkipping(secrets);
  worker = await testWorker(env, secrets, taskQueue, activities());
  running = worker.run();
});

afterAll(async () => {
  worker?.shutdown();
  await running;
  await env?.teardown();
});

type Incident = WorkflowHandle<(input: IncidentInput) => Promise<IncidentRecord>>;

async function start(target: string): Promise<Incident> {
  const input: IncidentInput = { target, requestedBy: 'dana', severity: 2, dryRun: false };
  return env.client.workflow.start('cacheFailure', {
    taskQueue,
    workflowId: `cacheFailure-${target}-${randomUUID().slice(0, 8)}`,
    args: [input],
  });
}

/** Polls the incident's status (in wall time: the server's clock only runs while the test sleeps). */
async function until(h: Incident, what: string, pred: (r: IncidentRecord) => boolean): Promise<IncidentRecord> {
  const deadline = Date.now() + 20_000;
  let last: IncidentRecord | undefined;
  while (Date.now() < deadline) {
    last = await h.query(statusQuery).catch(() => undefined);
    if (last && pred(last)) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what}: not reached; last state ${JSON.stringify(last, null, 1)?.slice(0, 3000)}`);
}

/**
 * The incident's record once it closed. Watched by query, not `result()`: waiting on a result lets the
 * server skip time as soon as nothing runs, to the keeper's idle end an hour on.
 */
const closed = (h: Incident): Promise<IncidentRecord> => until(h, 'closed', (r) => r.phase === 'CLOSED');
const events = (r: IncidentRecord): string[] => r.timeline.map((t) => t.event);
const stepOf = (r: IncidentRecord, stepId: string) => r.actions.find((a) => a.stepId === stepId);
const keeperOf = (target: string) => env.client.workflow.getHandle(budgetWorkflowId(target));

async function closeAndFinish(h: Incident): Promise<IncidentRecord> {
  await sealedClient(env, secrets, 'alice')
    .workflow.getHandle(h.workflowId)
    .signal(closeSignal, { incidentId: h.workflowId, note: 'restarted by hand' });
  return closed(h);
}

/** The keeper and the redis guard, idle, end by themselves once their hour is skipped. */
async function idleOut(target: string): Promise<void> {
  await keeperOf(target).result();
  await env.client.workflow.getHandle(guardWorkflowId(target, 'redis')).result();
}

test('one action spends the budget: the next incident on the target escalates without acting; an hour later it acts again', async () => {
  const target = 'alfred';
  const r = redisOf(target);
  r.state = 'down';
  const first = await start(target);
  const done = await closed(first);
  expect(done.outcome).toBe('resolved');
  expect(stepOf(done, 'restart-redis')).toMatchObject({ state: 'done' });
  expect(events(done)).toContain(
    "policy from the worker's configuration: approvers alice, bob, carol; tiers tier-1 on-call 900000 ms; cooldown 0 ms; action budget of 1 per 1h on alfred",
  );
  const keeperRun = (await keeperOf(target).describe()).runId;
  const [counted] = (await keeperOf(target).query(budgetStateQuery)).entries;
  expect(counted).toMatchObject({
    incidentId: first.workflowId,
    stepId: 'restart-redis',
    resource: 'redis',
    state: 'performed',
  });

  // Ten minutes later Redis is down again: the budget is spent, so the restart does not run.
  await env.sleep(10 * MIN);
  r.state = 'down';
  const second = await start(target);
  const held = await until(second, 'escalated', (s) => s.phase === 'ESCALATED');
  const spent = `action budget of 1 per 1h on alfred spent: restart-redis on redis at ${counted?.at} (${first.workflowId})`;
  expect(held.escalations).toEqual([spent]);
  expect(stepOf(held, 'restart-redis')).toMatchObject({ state: 'over-budget', detail: `not run: ${spent}` });
  expect(r.restarts).toBe(1);
  expect((await closeAndFinish(second)).outcome).toBe('escalated');

  // An hour after the first restart, the window has rolled past it: the same keeper lets the next one run.
  await env.sleep(51 * MIN);
  const third = await start(target);
  const again = await closed(third);
  expect(again.outcome).toBe('resolved');
  expect(stepOf(again, 'restart-redis')).toMatchObject({ state: 'done' });
  expect(r.restarts).toBe(2);
  expect((await keeperOf(target).describe()).runId).toBe(keeperRun);
  expect((await keeperOf(target).query(budgetStateQuery)).entries.map((e) => e.incidentId)).toEqual([third.workflowId]);
  await idleOut(target);
});

test('a step people approved runs past the spent budget, noted in its timeline, and counts', async () => {
  const target = 'alfred-approved';
  const r = redisOf(target);
  r.state = 'down';
  const first = await start(target);
  expect((await closed(first)).outcome).toBe('resolved');

  await env.sleep(5 * MIN);
  r.state = 'full';
  const second = await start(target);
  await until(second, 'evict-cache waits', (s) => s.pending.some((p) => p.stepId === 'evict-cache'));
  await sealedClient(env, secrets, 'bob')
    .workflow.getHandle(second.workflowId)
    .signal(approveSignal, { incidentId: second.workflowId, stepId: 'evict-cache' });
  const evicted = await closed(second);
  expect(evicted.outcome).toBe('resolved');
  expect(stepOf(evicted, 'evict-cache')).toMatchObject({ state: 'done', approvals: ['bob'] });
  expect(events(evicted)).toContain(
    'evict-cache runs past the action budget of 1 per 1h on alfred-approved (1 in the last 1h): approved by bob',
  );
  expect(r.evictions).toBe(1);
  const entries = (await keeperOf(target).query(budgetStateQuery)).entries;
  expect(entries.map((e) => [e.stepId, e.approvedBy ?? [], e.state])).toEqual([
    ['restart-redis', [], 'performed'],
    ['evict-cache', ['bob'], 'performed'],
  ]);

  // Both count: the next automatic restart names them and does not run.
  await env.sleep(5 * MIN);
  r.state = 'down';
  const third = await start(target);
  const held = await until(third, 'escalated', (s) => s.phase === 'ESCALATED');
  expect(held.escalations[0]).toMatch(
    new RegExp(
      `^action budget of 1 per 1h on alfred-approved spent: restart-redis on redis at \\S+ \\(${first.workflowId}\\); evict-cache on redis at \\S+ \\(${second.workflowId}, approved by bob\\)$`,
    ),
  );
  expect(r.restarts).toBe(1);
  expect((await closeAndFinish(third)).outcome).toBe('escalated');
  await idleOut(target);
});
